"""``colorize/eccv16``: Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016.

Takes the ``gray`` degradation's lightness, returns RGB with that lightness and the
decoded ab (``decode=annealed`` at T = 0.38 by default, or ``mean``, ``mode``).
``variant=full`` is the release's network (32.2 M parameters): the authors' PyTorch
weights (``colorization_release_v2-9b330a0b.pth``) convert with ``restorebench convert``;
``variant=light`` (quarter widths) is the committed checkpoint, trained here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restorebench import Degraded, NeuralMethod, NeuralParams, UserError, register
from restorebench.tasks.colorize.color import ANNEALED_T, Q

CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")
VARIANTS: dict[str, dict[str, Any]] = {
    "full": {"widths": [64, 128, 256, 512, 512, 512, 512, 256]},
    "light": {"widths": [16, 32, 64, 128, 128, 128, 128, 64]},
}
RELEASE_SCALE = 2.606  # the release's deploy scales the logits by 1 / 0.38 before the softmax


class ECCV16Params(NeuralParams):
    variant: Literal["light", "full"] = "light"
    decode: Literal["annealed", "mean", "mode"] = "annealed"
    temperature: float = Field(ANNEALED_T, gt=0, le=10, description="of the annealed mean")
    release_scale: float = Field(RELEASE_SCALE, gt=0, description="convert only: the scale folded into conv8_313")


@register
class ECCV16Method(NeuralMethod):
    """Zhang et al.'s colorization network: 313-bin classification, rebalanced, annealed mean."""

    task = "colorize"
    name = "eccv16"
    version = "1"
    architecture: ClassVar[str] = "eccv16"
    description: ClassVar[str] = "ECCV16 colorization (Zhang et al. 2016), 313 bins, annealed mean; light, BSDS400+T91"
    Params = ECCV16Params
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR
    unlabelled_params: ClassVar[frozenset[str]] = NeuralMethod.unlabelled_params | {"release_scale"}

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.colorize.models import ECCV16

        net = ECCV16(**{**VARIANTS[self.params.variant], **config})
        net.decode, net.temperature = self.params.decode, self.params.temperature
        return net

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """The eight widths (``model1`` ... ``model8``) and the bins (``model8.6``)."""
        keys = [f"model{i}.0.weight" for i in range(1, 9)] + ["model8.6.weight"]
        if any(k not in shapes or len(shapes[k]) != 4 for k in keys):
            return {}
        widths = [shapes[f"model{i}.0.weight"][0] for i in range(1, 8)] + [shapes["model8.0.weight"][1]]
        return {"widths": widths, "bins": shapes["model8.6.weight"][0]}

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / f"eccv16_{self.params.variant}.safetensors"]

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        if item.image.shape[2] != 1:
            raise UserError(f"{self.qualified_name} colorizes the gray degradation's 1-channel lightness")
        return np.ascontiguousarray(item.image.transpose(2, 0, 1)), None

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        return np.clip(output.transpose(1, 2, 0), 0.0, 1.0)

    def recipe(self) -> Any:
        """The paper's loss (rebalanced cross-entropy over the 313 bins, soft-encoded targets,
        weights from the BSDS400 + T91 prior) on 128x128 patches, batches of 8, Adam lr 5e-4
        (x0.1 at 70 % and 90 %), gradients clipped at 1. The paper: ImageNet's 1.3 M images at
        176x176 (256 crops), batch 40, Adam 3e-5, 450 k steps on a GPU."""
        from restorebench.neural.training import Recipe

        return Recipe(
            architecture=self.architecture,
            config=dict(VARIANTS[self.params.variant]),
            make_pair=lightness_pair,
            patch_size=128,
            batch_size=8,
            steps=4000,
            lr=5e-4,
            objective=rebalanced_objective,
            lr_milestones=(0.7, 0.9),
            grad_clip=1.0,
            val_every=500,
            val_patches=32,
            needs_colour=True,
            notes=f"ECCV16 {self.params.variant}: widths {VARIANTS[self.params.variant]['widths']}; "
            "rebalanced soft-encoded cross-entropy (prior.json); validation: PSNR of the annealed-mean RGB",
        )

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The authors' release: the same keys (``model1.0.weight`` ... ``model_out.weight``).
        Its logits carry the deploy's annealing scale (2.606 = 1 / 0.38, folded into
        ``model8.6``): it is divided out (``release_scale``) so that ``decode`` and
        ``temperature`` mean what they say. Its ``model_out`` holds its own bin centres."""
        import torch

        if weights.state_dict is None:
            raise UserError(f"{self.qualified_name}: the release is a state dict (.pth), not {weights.source_format}")
        state = {k: torch.as_tensor(np.asarray(v)) for k, v in weights.state_dict.items()}
        head = state.get("model8.6.weight")
        if head is None or head.shape[0] != Q:
            found = "no model8.6.weight" if head is None else f"{head.shape[0]} bins"
            raise UserError(
                f"{self.qualified_name}: ECCV16 weights end in {Q} bin logits (model8.6); this file has {found}"
            )
        widths = [int(state[f"model{i}.0.weight"].shape[0]) for i in range(1, 8)] + [
            int(state["model8.0.weight"].shape[1])
        ]
        state["model8.6.weight"] = state["model8.6.weight"] / self.params.release_scale
        state["model8.6.bias"] = state["model8.6.bias"] / self.params.release_scale
        return state, {"widths": widths}


def lightness_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(L / 100 as 1 x P x P, the RGB patch 3 x P x P): the loss encodes the target's ab itself."""
    from restorebench.tasks.colorize.color import rgb_to_lab

    lightness = (rgb_to_lab(clean)[..., :1] / 100.0).astype(np.float32)
    return np.ascontiguousarray(lightness.transpose(2, 0, 1)), np.ascontiguousarray(clean.transpose(2, 0, 1))


_LOSS_TENSORS: dict[str, Any] = {}


def rebalanced_objective(network: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
    """The rebalanced cross-entropy of the network's logits against the target patch's colours."""
    import torch

    from restorebench.tasks.colorize.color import ab_bins
    from restorebench.tasks.colorize.models import rebalanced_cross_entropy
    from restorebench.tasks.colorize.prior import weights

    if not _LOSS_TENSORS:
        _LOSS_TENSORS["centres"] = torch.from_numpy(ab_bins()).float()
        _LOSS_TENSORS["weights"] = torch.from_numpy(weights()).float()
    loss = rebalanced_cross_entropy(network.logits(x), y, _LOSS_TENSORS["centres"], _LOSS_TENSORS["weights"])
    return loss, {}
