"""The colorization task's learned methods and their training recipes.

``colorize/eccv16``: Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016. Takes the
``gray`` degradation's lightness, returns RGB with that lightness and the decoded ab
(``decode=annealed`` at T = 0.38 by default, or ``mean``, ``mode``). ``variant=full`` is the
release's network (32.2 M parameters): the authors' PyTorch weights
(``colorization_release_v2-9b330a0b.pth``) convert with ``restorebench convert``;
``variant=light`` (quarter widths) is the committed checkpoint, trained here.

``colorize/deoldify``: DeOldify's generator with DeOldify's inference filter, as
``deoldify/filters.py`` does it: the gray image (8-bit) stretched to a square of
``render_factor * 16`` pixels (PIL bilinear), made gray RGB (PIL ``LA`` -> ``RGB``),
ImageNet-normalised; the generator; its output un-normalised, clipped, truncated to 8 bits
and stretched back (PIL bilinear); then the post-process that keeps the input's luminance
and takes only the chroma (OpenCV's YUV). ``variant=artistic`` (ResNet-34) and ``stable``
(ResNet-101) are the released generators: convert ``ColorizeArtistic_gen.pth`` /
``ColorizeStable_gen.pth`` with ``restorebench convert`` and pass ``?checkpoint=``; none
ship with restorebench. ``variant=light`` (a narrow ResNet body trained here from scratch) is
the committed checkpoint, a stand-in.

DeOldify light's recipe: DeOldify's released generators were pretrained with a VGG-16 feature
loss on ImageNet and NoGAN-fine-tuned; neither ImageNet weights nor the days of GPU time exist
here. The light variant learns, on BSDS400 + T91 patches, to map DeOldify's input (gray RGB,
ImageNet-normalised) to the colour patch with L1 on the normalised values (fastai's do_y
normalisation) plus an L1 between activations of a frozen feature network of the project's
own (:class:`~restorebench.tasks.colorize.models.FeatureEncoder`, whose weights came from the
inpainting task's first light PConv checkpoint); a stand-in for VGG-16, documented as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restorebench import Degraded, NeuralMethod, NeuralParams, UserError, register
from restorebench.neural.imagenet import IMAGENET_MEAN, IMAGENET_STD
from restorebench.tasks.colorize.color import ANNEALED_T, Q, gray_rgb, keep_luminance

CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")
ECCV16_VARIANTS: dict[str, dict[str, Any]] = {
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

        net = ECCV16(**{**ECCV16_VARIANTS[self.params.variant], **config})
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
            config=dict(ECCV16_VARIANTS[self.params.variant]),
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
            notes=f"ECCV16 {self.params.variant}: widths {ECCV16_VARIANTS[self.params.variant]['widths']}; "
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


# ---------------------------------------------------------------- DeOldify


# the released generators' configurations (and the light one trained here); torch-free, so
# loading the plugin does not import torch
DEOLDIFY_VARIANTS: dict[str, dict[str, Any]] = {
    "artistic": {
        "unet": "deep",
        "block": "basic",
        "depths": [3, 4, 6, 3],
        "widths": [64, 128, 256, 512],
        "nf_factor": 1.5,
    },
    "stable": {
        "unet": "wide",
        "block": "bottleneck",
        "depths": [3, 4, 23, 3],
        "widths": [64, 128, 256, 512],
        "nf_factor": 2.0,
    },
    "light": {"unet": "deep", "block": "basic", "depths": [1, 1, 1, 1], "widths": [16, 32, 64, 128], "nf_factor": 1.0},
}

RENDER_FACTORS = {"artistic": 35, "stable": 35, "light": 10}  # DeOldify's photo defaults; light: its training scale
MAX_UPSCALE = 8  # a render more than 8 times the image's longer side is refused


class DeOldifyParams(NeuralParams):
    variant: Literal["light", "artistic", "stable"] = "light"
    render_factor: int | None = Field(None, ge=7, le=100, description="render size / 16; None: the variant's default")
    post_process: bool = True  # keep the input's luminance, take the network's chroma


@register
class DeOldifyMethod(NeuralMethod):
    """DeOldify (J. Antic): a NoGAN-trained U-Net colorizer, its released generator layouts."""

    task = "colorize"
    name = "deoldify"
    version = "1"
    architecture: ClassVar[str] = "deoldify"
    description: ClassVar[str] = "DeOldify generator (Antic), artistic/stable layouts; light stand-in trained here"
    Params = DeOldifyParams
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR

    @property
    def render_size(self) -> int:
        factor = self.params.render_factor or RENDER_FACTORS[self.params.variant]
        return factor * 16

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.colorize.models import DeOldifyGenerator

        return DeOldifyGenerator(**{**DEOLDIFY_VARIANTS[self.params.variant], **config})

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / f"deoldify_{self.params.variant}.safetensors"]

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """The ResNet body's blocks per stage (``layers.0.4`` ... ``layers.0.7``), their widths
        (each stage's first ``conv1``) and the block kind (``conv3``: bottleneck)."""
        stages = [
            sorted({int(k.split(".")[3]) for k in shapes if k.startswith(f"layers.0.{4 + i}.")}) for i in range(4)
        ]
        firsts = [shapes.get(f"layers.0.{4 + i}.0.conv1.weight") for i in range(4)]
        if not all(stages) or any(f is None or len(f) != 4 for f in firsts):
            return {}
        return {
            "depths": [len(blocks) for blocks in stages],
            "widths": [f[0] for f in firsts],  # type: ignore[index]
            "block": "bottleneck" if "layers.0.4.0.conv3.weight" in shapes else "basic",
        }

    def checkpoints(self) -> list[Path]:
        if self.params.variant != "light" and not self.params.checkpoint:
            v = self.params.variant
            raise UserError(
                f"{self.qualified_name}?variant={v}: the released weights are not shipped with restorebench",
                hint=f"convert yours: restorebench convert Colorize{v.title()}_gen.pth --method "
                f"'colorize/deoldify?variant={v}' --out deoldify_{v}.safetensors, then add &checkpoint=deoldify_{v}.safetensors",
            )
        return super().checkpoints()

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        from PIL import Image

        from restorebench.tasks.colorize.degradations import lightness

        h, w = item.image.shape[:2]
        size = self.render_size
        if size > MAX_UPSCALE * max(h, w):
            raise ValueError(
                f"render_factor {size // 16} renders {size} px, more than {MAX_UPSCALE}x this {w}x{h} image; "
                f"use render_factor <= {max(7, MAX_UPSCALE * max(h, w) // 16)}"
            )
        gray = gray_rgb(lightness(item))
        square = Image.fromarray(gray).resize((size, size), resample=Image.BILINEAR).convert("LA").convert("RGB")
        x = (np.asarray(square, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(x.transpose(2, 0, 1)), gray

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        from PIL import Image

        gray = context
        h, w = gray.shape[:2]
        rgb = np.clip(output.transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN, 0.0, 1.0)
        colour = np.asarray(Image.fromarray((rgb * 255).astype(np.uint8)).resize((w, h), resample=Image.BILINEAR))
        if self.params.post_process:
            colour = keep_luminance(gray, colour)
        return colour.astype(np.float32) / 255.0

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A released generator (the ``model`` entry of a fastai ``Learner.save`` file) or a plain
        state dict with the same keys: kept as is; the variant is told by its body's keys."""
        if weights.state_dict is None:
            raise UserError(f"{self.qualified_name}: DeOldify weights are a state dict, not {weights.source_format}")
        found = variant_of(weights.state_dict)
        if found is not None and found != self.params.variant:
            raise UserError(
                f"these are the {found} generator's weights, not the {self.params.variant} one's",
                hint=f"convert them with --method 'colorize/deoldify?variant={found}'",
            )
        return dict(weights.state_dict), dict(DEOLDIFY_VARIANTS[self.params.variant])

    def recipe(self) -> Any:
        if self.params.variant != "light":
            raise UserError(
                f"{self.qualified_name}: only variant=light is trained here (the released ones took days of GPUs)"
            )
        return deoldify_recipe(self.architecture, dict(DEOLDIFY_VARIANTS["light"]))


def variant_of(state: dict[str, Any]) -> str | None:
    """Which released generator a state dict is, by its body: ResNet-101 (bottleneck ``conv3``
    keys, 23 blocks in layer3) is stable, ResNet-34 (3/4/6/3 basic blocks) artistic."""
    if "layers.0.6.22.conv3.weight" in state:
        return "stable"
    if "layers.0.6.5.conv2.weight" in state and "layers.0.6.0.conv3.weight" not in state:
        return "artistic"
    return None


# ---------------------------------------------------------------- DeOldify light's recipe


FEATURE_WEIGHT = 0.5


def deoldify_recipe(architecture: str, config: dict[str, Any]) -> Any:
    """128x128 patches, batches of 8, Adam lr 5e-4 (x0.1 at 70 % and 90 %), 3000 steps."""
    from restorebench.neural.training import Recipe

    return Recipe(
        architecture=architecture,
        config=config,
        make_pair=gray_colour_pair,
        patch_size=128,
        batch_size=8,
        steps=3000,
        lr=5e-4,
        objective=feature_objective,
        predict=predict_rgb,
        lr_milestones=(0.7, 0.9),
        grad_clip=1.0,
        val_every=500,
        val_patches=32,
        needs_colour=True,
        notes="DeOldify light: L1 (normalised) + 0.5 x L1 of features of a plain inpaint/pconv light encoder "
        "(colorize/checkpoints/feature_encoder.safetensors, models.FeatureEncoder); no VGG-16, "
        "no ImageNet encoder, no NoGAN: a stand-in for the released generators",
    )


def gray_colour_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(DeOldify's input: 8-bit gray RGB, normalised, 3 x P x P; the colour patch in [0, 1], 3 x P x P)."""
    from PIL import Image

    patch = np.round(np.clip(clean, 0, 1) * 255).astype(np.uint8)
    gray = np.asarray(Image.fromarray(patch).convert("LA").convert("RGB"), dtype=np.float32) / 255.0
    x = (gray - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)), np.ascontiguousarray(clean.transpose(2, 0, 1))


def _denormalise(out: Any) -> Any:
    import torch

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return out * std + mean


def predict_rgb(network: Any, x: Any) -> Any:
    """The network's output as RGB in [0, 1] (what validation scores)."""
    return _denormalise(network(x)).clamp(0, 1)


FEATURE_CHECKPOINT = CHECKPOINT_DIR / "feature_encoder.safetensors"
_FEATURES: list[Any] = []


def feature_encoder() -> Any:
    """The recipe's frozen feature network (:class:`~restorebench.tasks.colorize.models.FeatureEncoder`), loaded once."""
    if not _FEATURES:
        from restorebench.neural.checkpoints import load_checkpoint
        from restorebench.tasks.colorize.models import FeatureEncoder

        state, meta = load_checkpoint(FEATURE_CHECKPOINT)
        encoder = FeatureEncoder(**{k: meta["config"][k] for k in ("widths", "kernels")})
        encoder.load_state_dict(state, strict=True)
        _FEATURES.append(encoder.eval())
    return _FEATURES[0]


def feature_objective(network: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
    """L1 on ImageNet-normalised values + FEATURE_WEIGHT x L1 of the feature network's activations."""
    import torch

    out = network(x)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    l1 = (out - (y - mean) / std).abs().mean()
    rgb = (out * std + mean).clamp(0, 1)
    with torch.no_grad():
        real = feature_encoder()(y)
    feature = sum((f - g).abs().mean() for f, g in zip(feature_encoder()(rgb), real))
    return l1 + FEATURE_WEIGHT * feature, {"l1": float(l1.detach()), "feature": float(feature.detach())}
