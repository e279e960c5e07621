"""The neural inpainting methods: ``inpaint/pconv`` (partial-convolution U-Net) and ``inpaint/vae``.

Both take ``[image with holes, mask]`` (the degradation's input and ``extras["mask"]``),
run on any image size (the networks pad to their stride by mirroring the input, and crop back) and
paste the known pixels back. ``inpaint/vae?samples=N`` draws N completions per image
(seeded by the input, so reruns are bit-identical): the harness scores each and reports
their mean as the metric and the best one as ``oracle_<metric>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restorebench import Degraded, NeuralMethod, NeuralParams, register
from restorebench.tasks.inpaint.baselines import mask_of, paste
from restorebench.tasks.inpaint.masks import PAPER_BINS, RatioBin, free_form_mask

CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")
PCONV_VARIANTS: dict[str, dict[str, Any]] = {
    "full": {"widths": [64, 128, 256, 512, 512, 512, 512, 512], "kernels": [7, 5, 5, 3, 3, 3, 3, 3]},
    "light": {
        "widths": [32, 64, 128, 128, 128, 128, 128],
        "kernels": [7, 5, 5, 3, 3, 3, 3],
        "base": "biharmonic+telea",
        "blend": True,
    },
}
VAE_CONFIG: dict[str, Any] = {"widths": [32, 64, 96, 128, 128, 128], "kernels": [7, 5, 5, 3, 3, 3], "latent": 8}
TRAINING_SCALES = (1.0, 2.5)  # masks drawn as for images 1 to 2.5 times the patch's size


class InpaintNeuralParams(NeuralParams):
    vgg16: str | None = None  # training only: a local VGG-16 weights file for the perceptual and style losses


class _NeuralInpaint(NeuralMethod):
    task = "inpaint"
    uses_mask: ClassVar[bool] = True
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR
    unlabelled_params: ClassVar[frozenset[str]] = NeuralMethod.unlabelled_params | {"vgg16", "finetune"}

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        """``[image * mask, mask]``; a gray image goes through the RGB network as three equal channels."""
        mask = mask_of(item)
        image = item.image if item.image.shape[2] == 3 else np.repeat(item.image, 3, axis=2)
        x = np.concatenate([image * mask, mask], axis=2)
        return np.ascontiguousarray(x.transpose(2, 0, 1)), mask

    _prefix: ClassVar[str] = ""  # where the PConv U-Net's keys start

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """The encoder's widths and kernels (``encN.conv.conv.weight``, N = 1, 2, ...)."""
        encoders = []
        while (shape := shapes.get(f"{self._prefix}enc{len(encoders) + 1}.conv.conv.weight")) is not None:
            encoders.append(shape)
        if not encoders or any(len(s) != 4 for s in encoders):
            return {}
        return {"widths": [s[0] for s in encoders], "kernels": [s[-1] for s in encoders]}

    def probe_input(self, network: Any, channels: int | None) -> Any:
        """``[image with holes, mask]``: 3 colour channels and a mask with a square hole."""
        import torch

        x = torch.rand((1, 4, 64, 64), generator=torch.Generator().manual_seed(0))
        x[:, 3] = 1.0
        x[:, :, 16:40, 20:44] = 0.0
        return x

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        fill = np.clip(output.transpose(1, 2, 0), 0.0, 1.0)
        if item.image.shape[2] == 1:
            fill = fill.mean(axis=2, keepdims=True)
        return paste(item.image, context, fill)

    def _features(self) -> Any:
        if not self.params.vgg16:
            return None
        from restorebench.neural.vgg import load_vgg16

        return load_vgg16(self.params.vgg16)

    def _masked_recipe(self, config: dict[str, Any], *, steps: int, objective: Any, notes: str, **more: Any) -> Any:
        """What both networks' recipes share: 256x256 patches with free-form masks, batches
        of 4, Adam 5e-4 (x0.1 at 70 % and 90 %), gradient clip 1, validation every 500 steps
        (``more`` overrides any of them)."""
        from dataclasses import replace

        from restorebench.neural.training import Recipe

        shared = Recipe(
            architecture=self.architecture,
            config=config,
            make_pair=masked_pair,
            patch_size=256,
            batch_size=4,
            steps=steps,
            lr=5e-4,
            objective=objective,
            lr_milestones=(0.7, 0.9),
            grad_clip=1.0,
            val_every=500,
            val_patches=24,
            notes=notes,
        )
        return replace(shared, **more)


class PConvParams(InpaintNeuralParams):
    """``variant``: ``light`` (the committed checkpoint: 7 levels, narrower, and a correction
    to a per-pixel blend of scikit-image's biharmonic fill and OpenCV's Telea fill, which it
    takes as more inputs) or ``full`` (the paper's 8 levels, 32.9 M parameters, the holes
    alone as in the paper)."""

    variant: Literal["light", "full"] = "light"
    # training only: the paper's second phase (lr 5e-5, the encoder's batch norm frozen), from --init
    finetune: bool = False


@register
class PConvMethod(_NeuralInpaint):
    """Liu et al., ECCV 2018: the partial-convolution U-Net."""

    name = "pconv"
    version = "2"  # 2: the padding to the stride mirrors the image (it was holes)
    architecture: ClassVar[str] = "pconv_unet"
    description: ClassVar[str] = (
        "partial-convolution U-Net (Liu et al. 2018); light: refines a blend of biharmonic and Telea, BSDS400"
    )
    Params = PConvParams

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.inpaint.models import PConvUNet

        return PConvUNet(**(config or PCONV_VARIANTS[self.params.variant]))

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / f"pconv_{self.params.variant}.safetensors"]

    def recipe(self) -> Any:
        """The paper's loss (valid + 6 hole + 0.1 TV; + 0.05 perceptual + 120 style with a
        VGG-16 file, ``?vgg16=PATH``) on 256x256 patches with free-form masks of every bin
        (0.01-0.6) and of scales 1-2.5; batches of 4, Adam lr 5e-4 (x0.1 at 70 % and 90 %).
        The paper trains at 512x512, batch 6, lr 2e-4 then fine-tunes with the encoder's
        batch norm frozen at 5e-5, on Places2 / ImageNet / CelebA, for days on a GPU.
        ``?finetune=true``: that second phase (lr 5e-5 throughout, 2000 steps; start it from a
        trained checkpoint with ``--init``)."""
        from restorebench.tasks.inpaint.models import freeze_encoder_batch_norm

        features = self._features()
        phase = (
            dict(steps=2000, lr=5e-5, lr_milestones=(), prepare=freeze_encoder_batch_norm)
            if self.params.finetune
            else dict(steps=6000)
        )
        return self._masked_recipe(
            dict(PCONV_VARIANTS[self.params.variant]),
            objective=_objective(features),
            notes=f"PConv U-Net {self.params.variant}; masks: free-form, bins 0.01-0.6 uniform, scales 1-2.5; "
            + ("VGG-16 perceptual and style terms" if features is not None else "no VGG-16 terms (none given)")
            + ("; fine-tuning phase: encoder batch norm frozen" if self.params.finetune else ""),
            **phase,
        )


class VAEParams(InpaintNeuralParams):
    samples: int = Field(3, ge=1, le=64, description="completions drawn per image")
    seed: int = 0  # with the input's content, the seed of the latent draws


@register
class VAEMethod(_NeuralInpaint):
    """A conditional VAE on the PConv U-Net; ``samples`` completions per image."""

    name = "vae"
    version = "2"  # 2: the padding to the stride mirrors the image (it was holes)
    architecture: ClassVar[str] = "inpaint_vae"
    _prefix: ClassVar[str] = "generator."
    description: ClassVar[str] = "conditional VAE (ELBO: PConv losses + KL); samples per image, light, BSDS400"
    Params = VAEParams

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.inpaint.models import InpaintVAE

        return InpaintVAE(**{**VAE_CONFIG, **config})

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / "vae_light.safetensors"]

    def restore(self, batch: list[Degraded]) -> list[np.ndarray]:
        """``samples`` completions of each image (``N x H x W x C``), each ``z`` drawn from a
        generator seeded by ``seed`` and the input's bytes."""
        import torch

        path = self.checkpoints()[0]
        net = self._network(path)
        outputs = []
        with torch.inference_mode():
            for item in batch:
                x, mask = self.prepare(item)
                xt = torch.from_numpy(x[None]).to(self._device)
                generator = torch.Generator().manual_seed(_input_seed(x, self.params.seed))
                draws = [net.sample(xt, generator)[0].float().cpu().numpy() for _ in range(self.params.samples)]
                outputs.append(np.stack([self.finish(d, mask, item) for d in draws]))
        return outputs

    def recipe(self) -> Any:
        """The ELBO: PConv's reconstruction terms on the output decoded from a posterior draw,
        plus 0.01 x KL(q || N(0, I)) per latent element, with free bits: each latent channel's KL
        counts as at least :data:`FREE_BITS` nats per element (Kingma et al. 2016), so the
        posterior keeps carrying what the decoder can use instead of collapsing to the prior (with
        the plain KL the first checkpoint's KL fell to ~1e-4 and its samples were all alike);
        the rest as ``inpaint/pconv``'s recipe."""
        features = self._features()
        return self._masked_recipe(
            dict(VAE_CONFIG),
            steps=4000,
            objective=_vae_objective(features),
            notes=f"conditional VAE, latent 8 channels at 1/64; KL weight 0.01, free bits {FREE_BITS}; masks as inpaint/pconv"
            + ("; VGG-16 terms" if features is not None else "; no VGG-16 terms (none given)"),
        )


KL_WEIGHT = 0.01
FREE_BITS = 0.25  # nats per latent element and channel below which the KL costs nothing


def _input_seed(x: np.ndarray, seed: int) -> int:
    digest = hashlib.sha256(np.ascontiguousarray(x).tobytes() + str(seed).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFFFFFFFFFFFFFF


def masked_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(``[patch * mask, mask]`` 4 x P x P, patch 3 x P x P): a free-form mask of a bin drawn
    uniformly from the paper's six, at a scale drawn from :data:`TRAINING_SCALES`."""
    low, high = PAPER_BINS[int(rng.integers(len(PAPER_BINS)))]
    h, w = clean.shape[:2]
    mask = free_form_mask(h, w, RatioBin(low, high), rng, scale=float(rng.uniform(*TRAINING_SCALES)))[..., None]
    x = np.concatenate([clean * mask, mask], axis=2)
    return np.ascontiguousarray(x.transpose(2, 0, 1)), np.ascontiguousarray(clean.transpose(2, 0, 1))


def _objective(features: Any):
    from restorebench.tasks.inpaint.models import inpainting_loss

    def pconv_objective(network: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
        return inpainting_loss(network(x), y, x[:, -1:], features)

    return pconv_objective


def _vae_objective(features: Any):
    from restorebench.tasks.inpaint.models import inpainting_loss

    def vae_objective(network: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
        output, kl = network.elbo_terms(x, y)
        loss, terms = inpainting_loss(output, y, x[:, -1:], features)
        kl_term = kl.clamp(min=FREE_BITS).mean()
        return loss + KL_WEIGHT * kl_term, {**terms, "kl": float(kl.detach().mean())}

    return vae_objective
