"""Neural low-light methods: ``lowlight/sid_unet`` (raw inputs) and ``lowlight/deepupe`` (sRGB inputs).

``lowlight/sid_unet`` -- the U-Net of Chen et al., "Learning to See in the Dark", CVPR
2018 (:class:`restorebench.tasks.lowlight.models.SIDUNet`), on raw inputs (degradations ``lowlight``
and ``sid``). As in SID's code the network input is the packed raw times the exposure
ratio, clipped at 1 (``np.minimum(packed * ratio, 1.0)``; the method is told the ratio,
``uses_true_level``); unlike SID's ``pack_raw`` the packed values are not clipped at 0
below (``pack_bayer`` keeps the negative noise, which carries information in the
shadows). The output is sRGB at twice the packed size (``scale = 2``), clipped to
[0, 1]. ``?variant=light`` (default; committed ``checkpoints/sid_unet_light.safetensors``,
base 32, depth 4) or ``?variant=full`` (SID's 32-64-128-256-512,
``checkpoints/sid_unet_full.safetensors``: not committed; train it or convert released
weights with ``restorebench convert``).

``lowlight/deepupe`` -- a light DeepUPE (Wang et al., "Underexposed Photo Enhancement
using Deep Illumination Estimation", CVPR 2019; :class:`restorebench.tasks.lowlight.models.DeepUPELight`)
on sRGB inputs (degradation ``underexpose``): ``F = I / S`` with the illumination ``S``
predicted by the network; blind (it does not read the ratio). Committed
``checkpoints/deepupe_light.safetensors``.

Both recipes make their training pairs with the task's own degradations, patch by patch
(:func:`sid_training_pair`, :func:`deepupe_training_pair`). The committed checkpoints
were trained with ``--data folder:../shared/data/train/BSDS400`` (see the README).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from restorebench import Degraded, UserError, register
from restorebench.neural.inference import NeuralMethod, NeuralParams
from restorebench.tasks.lowlight.degradations import LowLight, Underexpose, require_raw, require_srgb

__all__ = [
    "DEEPUPE_RATIOS",
    "SID_RATIOS",
    "SID_VARIANTS",
    "DeepUPEMethod",
    "SIDUNetMethod",
    "SIDUNetParams",
    "deepupe_training_pair",
    "sid_training_pair",
]

CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")

SID_VARIANTS: dict[str, dict[str, Any]] = {
    "light": {"base": 32, "depth": 4, "in_channels": 4, "out_channels": 3, "block": 2, "up_bias": True},
    "full": {"base": 32, "depth": 5, "in_channels": 4, "out_channels": 3, "block": 2, "up_bias": False},
}
SID_RATIOS = (100.0, 250.0, 300.0)  # the ratios of SID's Sony set (train_Sony.py)
DEEPUPE_RATIOS = (3.0, 12.0)  # underexposure ratio, log-uniform per patch
DEEPUPE_CONFIG = {"features": 32, "eps": 1e-3}


# ================================================================ SID U-Net


class SIDUNetParams(NeuralParams):
    """``variant``: ``light`` (the committed checkpoint) or ``full`` (SID's network)."""

    variant: Literal["light", "full"] = "light"


@register
class SIDUNetMethod(NeuralMethod):
    """SID's U-Net: packed raw x ratio (clipped at 1) -> sRGB at twice the packed size.

    ``prepare``: ``min(packed * ratio, 1)`` as ``4 x h x w``; the network pads to a
    multiple of ``2**(depth - 1)`` and crops back (inside ``forward``), so every size
    works; ``finish``: ``3 x 2h x 2w`` -> ``2h x 2w x 3`` clipped to [0, 1]. Refuses sRGB
    inputs with a ``ValueError`` naming ``lowlight/deepupe``.
    """

    task = "lowlight"
    name = "sid_unet"
    version = "1"
    architecture: ClassVar[str] = "sid_unet"
    description: ClassVar[str] = "SID U-Net (Chen et al. 2018) on the packed raw x ratio; light variant, BSDS400"
    Params = SIDUNetParams
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR
    uses_true_level = True
    scale: ClassVar[int] = 2

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.lowlight.models import SIDUNet

        try:
            return SIDUNet(**{**SID_VARIANTS[self.params.variant], **config})
        except (TypeError, ValueError) as exc:
            raise UserError(f"{self.qualified_name}: checkpoint config {config} does not fit SIDUNet ({exc})") from None

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / f"sid_unet_{self.params.variant}.safetensors"]

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """Base and input channels (``conv1_1``), depth (one more than the ``upvL`` layers) and
        whether those have a bias: the config must agree before the U-Net is built (its
        widths grow as ``base * 2**level``, so a wrong depth would cost before any layer)."""
        first = shapes.get("conv1_1.weight")
        if first is None or len(first) != 4:
            return {}
        ups = [key for key in shapes if key.startswith("upv") and key.endswith(".weight")]
        said: dict[str, Any] = {"base": first[0], "depth": len(ups) + 1, "in_channels": first[1]}
        if ups:
            said["up_bias"] = any(key.startswith("upv") and key.endswith(".bias") for key in shapes)
        return said

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        packed = require_raw(item, self.qualified_name, "lowlight/deepupe", raw_file=False)  # needs the ratio only
        x = np.minimum(packed.astype(np.float32) * np.float32(item.params["ratio"]), np.float32(1.0))
        return np.ascontiguousarray(x.transpose(2, 0, 1)), None

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        return np.clip(output.transpose(1, 2, 0), 0.0, 1.0)

    def recipe(self) -> Any:
        """SID's training on synthetic ``lowlight`` pairs, patch by patch, L1 loss.

        Each clean patch (``patch_size`` full-resolution pixels, even offsets are not
        needed: the patch itself is unprocessed into an RGGB raw) goes through the
        ``lowlight`` degradation itself (:func:`sid_training_pair`): unprocessing, the
        Poisson-Gaussian short exposure, DNG + rawpy for both exposures, and the rawpy
        render of the long exposure as the target; ratio drawn from 100, 250, 300 per
        patch. Batches of 6, Adam, lr 1e-3 (SID: batch 1 of 512x512 packed crops, lr 1e-4
        for 2000 epochs, then 1e-5), x0.1 at 70% and 90% of the steps, gradients clipped
        at norm 1 (without clipping this network diverged at lr 1e-3; with it, 1e-3 beat
        3e-4 after 1500 steps by 0.3-0.4 dB on validation and on dead leaves); 40000 steps, about
        80 min on 2 CPU cores (at 12000 steps validation was still rising).
        The committed checkpoint trains on BSDS400 plus 256 synthetic dead-leaves images
        (saturated colours and hard edges that natural photos rarely have).
        """
        from restorebench.neural.training import Recipe

        config = dict(SID_VARIANTS[self.params.variant])
        return Recipe(
            architecture=self.architecture,
            config=config,
            make_pair=sid_training_pair,
            patch_size=96,
            batch_size=6,
            steps=40000,
            lr=1e-3,
            channels="rgb",
            loss="l1",
            lr_milestones=(0.7, 0.9),
            grad_clip=1.0,
            val_every=500,
            val_patches=32,
            notes=(
                f"SID U-Net ({self.params.variant}: base {config['base']}, depth {config['depth']}); pairs made by "
                "the 'lowlight' degradation on each 96x96 clean patch (ratio from 100/250/300, noise level "
                "sampled as Brooks et al.), input min(packed * ratio, 1), target rawpy render of the long "
                "exposure; L1 as SID"
            ),
        )

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """SID weights as a state dict: ours / PyTorch ports, or the TF checkpoint's names.

        See :func:`restorebench.tasks.lowlight.official.sid_from_official` for the mapping table.
        """
        from restorebench.tasks.lowlight.official import sid_from_official

        if weights.state_dict is None:
            raise UserError(
                f"{self.qualified_name}: SID weights come as a state dict (.pth/.safetensors) or a "
                f"TensorFlow checkpoint (model.ckpt), not {weights.source_format}"
            )
        return sid_from_official(weights.state_dict)


def sid_training_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(``min(packed * ratio, 1)`` 4 x P/2 x P/2, rendered long exposure 3 x P x P) of a P x P patch.

    The ``lowlight`` degradation on the patch, ratio drawn uniformly from
    :data:`SID_RATIOS` (then the degradation's draws: camera, gains, noise, Poisson,
    Gaussian). rawpy renders a 128x128 DNG in about 4 ms here, so rendering each patch
    is cheaper than a training step; near the patch border LibRaw's AHD sees less
    context than in a whole-image render (a few pixels).
    """
    ratio = float(SID_RATIOS[int(rng.integers(len(SID_RATIOS)))])
    degraded = LowLight(LowLight.Params(ratio=ratio)).apply(clean, rng)
    x = np.minimum(degraded.image * np.float32(ratio), np.float32(1.0)).transpose(2, 0, 1)
    y = degraded.reference.transpose(2, 0, 1)  # type: ignore[union-attr]
    return np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.float32)


# ================================================================ DeepUPE


@register
class DeepUPEMethod(NeuralMethod):
    """A light DeepUPE: ``F = I / S``, the illumination ``S`` predicted from the sRGB input.

    Blind; for ``underexpose`` inputs (any sRGB input; a gray one goes through as three
    equal channels and the output channels are averaged). Refuses raw inputs with a
    ``ValueError`` naming ``lowlight/sid_unet``.
    """

    task = "lowlight"
    name = "deepupe"
    version = "1"
    architecture: ClassVar[str] = "deepupe_light"
    description: ClassVar[str] = "DeepUPE-style illumination net, F = I / S (Wang et al. 2019), light variant, BSDS400"
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.lowlight.models import DeepUPELight

        try:
            return DeepUPELight(**{**DEEPUPE_CONFIG, **config})
        except (TypeError, ValueError) as exc:
            raise UserError(
                f"{self.qualified_name}: checkpoint config {config} does not fit DeepUPELight ({exc})"
            ) from None

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / "deepupe_light.safetensors"]

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """``features``: the second encoder convolution's width."""
        second = shapes.get("down.1.weight")
        return {"features": second[0]} if second is not None and len(second) == 4 else {}

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        image = require_srgb(item, self.qualified_name, "lowlight/sid_unet")
        channels = image.shape[2]
        if channels == 1:
            image = np.repeat(image, 3, axis=2)
        return np.ascontiguousarray(image.transpose(2, 0, 1)), channels

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        out = np.clip(output.transpose(1, 2, 0), 0.0, 1.0)
        return out.mean(axis=2, keepdims=True) if context == 1 else out

    def recipe(self) -> Any:
        """The paper's composite loss on ``underexpose`` pairs of clean patches.

        Input the darkened patch, target the clean patch; ratio log-uniform in [3, 12], no
        noise (the degradation's default). Objective
        :func:`~restorebench.tasks.lowlight.models.deepupe_objective`: ``mse(I / S, target) + 5e-4 *
        smoothness + 5e-3 * colour`` (:data:`restorebench.tasks.lowlight.models.DEEPUPE_WEIGHTS`).
        Adam lr 1e-3, gradients clipped at norm 1 (the smoothness weights reach 1e4 on
        flat patches).
        """
        from restorebench.neural.training import Recipe
        from restorebench.tasks.lowlight.models import DEEPUPE_WEIGHTS, deepupe_objective

        w = DEEPUPE_WEIGHTS
        return Recipe(
            architecture=self.architecture,
            config=dict(DEEPUPE_CONFIG),
            make_pair=deepupe_training_pair,
            patch_size=96,
            batch_size=8,
            steps=3000,
            lr=1e-3,
            channels="rgb",
            loss="mse",
            objective=deepupe_objective,
            grad_clip=1.0,
            lr_milestones=(0.7, 0.9),
            val_every=500,
            val_patches=64,
            notes=(
                "DeepUPE-style, light (no VGG encoder, no bilateral grid); pairs made by the 'underexpose' "
                f"degradation, ratio log-uniform in [{DEEPUPE_RATIOS[0]:g}, {DEEPUPE_RATIOS[1]:g}], noise 0; loss "
                f"= mse(I/S, target) + {w['smoothness']:g} * smoothness(S; log luminance of I) + "
                f"{w['colour']:g} * colour angle"
            ),
        )


def deepupe_training_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(darkened 3 x P x P, clean 3 x P x P): the ``underexpose`` degradation of a clean patch,
    ratio log-uniform in :data:`DEEPUPE_RATIOS`."""
    lo, hi = np.log(DEEPUPE_RATIOS[0]), np.log(DEEPUPE_RATIOS[1])
    ratio = float(np.exp(rng.uniform(lo, hi)))
    dark = Underexpose(Underexpose.Params(ratio=ratio)).apply(clean, rng).image
    x = np.ascontiguousarray(dark.transpose(2, 0, 1), np.float32)
    return x, np.ascontiguousarray(clean.transpose(2, 0, 1), np.float32)
