"""DnCNN as a restorebench method: ``denoise/dncnn`` (blind) and ``?model=specific`` (DnCNN-S).

Checkpoints live in ``tasks/denoise/checkpoints/``:

* ``dncnn_blind_gray.safetensors`` / ``dncnn_blind_rgb.safetensors``: blind models trained
  on sigma ~ U[0, 55] (DnCNN-B / CDnCNN-B protocol) on Train400 / BSDS400;
* ``dncnn_s{SIGMA}_{gray|rgb}.safetensors``: DnCNN-S models for one sigma each
  (``restorebench train 'denoise/dncnn?model=specific&sigma=25&channels=gray'``).

At inference the checkpoint is chosen per input: the one whose channels match (1 -> gray,
3 -> rgb) and, for ``model=specific``, the trained sigma nearest the input's true sigma
(:func:`restorebench.tasks.denoise.levels.noise_level`; estimated when the degradation is not
``gaussian``). When only the other kind exists the network adapts
(:class:`~restorebench.tasks.denoise.models.ChannelAdaptingDnCNN`): a gray input goes through a colour
model as three equal channels and the output channels are averaged; a colour input goes
through a gray model channel by channel. Inputs are the noisy float images as degraded
(unclipped); outputs are HWC float32, unclipped.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restorebench import Degraded, UserError, register
from restorebench.neural.inference import NeuralMethod, NeuralParams

__all__ = ["DnCNNMethod", "DnCNNParams"]

CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")
BLIND_SIGMA_MAX = 55.0  # blind models see sigma ~ U[0, 55] (DnCNN-B)

# The committed checkpoints are a lighter DnCNN than the paper's 17 x 64 (DnCNN-S) or
# 20 x 64 (DnCNN-B) so that each trains in under 30 minutes on 2 CPU cores; the class
# builds and loads the full models too (see `restorebench convert`). The colour model is
# shallower and wider (12 x 48, 29 min): at 15 x 32 (11 min) it was 0.3-0.4 dB worse on
# every colour photo; the gray model is 15 x 32 (13 min).
_LIGHT = {
    "gray": {"depth": 15, "features": 32, "batch_norm": True},
    "rgb": {"depth": 12, "features": 48, "batch_norm": True},
}
_TRAINING = {"batch_size": 32, "steps": 4000, "lr": 1e-3, "lr_milestones": (0.7, 0.9)}
_SPECIFIC_NAME = re.compile(r"dncnn_s(\d+(?:\.\d+)?)_(gray|rgb)\.safetensors$")
_CONV_KEY = re.compile(r"dncnn\.(\d+)\.weight")


class DnCNNParams(NeuralParams):
    """``model``: blind (one network for sigma 0-55) or specific (DnCNN-S, nearest sigma).

    ``channels`` and ``sigma`` say which checkpoint ``restorebench train`` trains
    (``channels`` defaults to gray, ``sigma`` is needed for ``model=specific``). At
    inference ``channels`` restricts the choice to that model (adapting other inputs)
    and ``sigma`` pins the DnCNN-S model instead of reading the true sigma.
    """

    model: Literal["blind", "specific"] = "blind"
    channels: Literal["gray", "rgb"] | None = None
    sigma: float | None = Field(None, gt=0, le=255, allow_inf_nan=False)


class _NonBlindIfSpecific:
    """``uses_true_level``: True on an instance that reads the true sigma; False on the class.

    A plain ``property`` would be a truthy object when read from the class (as
    ``restorebench list methods`` does), listing the method as non-blind.
    """

    def __get__(self, obj: Any, owner: type | None = None) -> bool:
        if obj is None:
            return False
        return obj.params.model == "specific" and obj.params.sigma is None


@register
class DnCNNMethod(NeuralMethod):
    """DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017), residual learning.

    Blind by default; ``?model=specific`` picks the DnCNN-S checkpoint of the nearest
    trained sigma from the true noise level (non-blind). See ``tasks/denoise/README.md``.
    """

    task = "denoise"
    name = "dncnn"
    version = "1"
    architecture: ClassVar[str] = "dncnn"
    description: ClassVar[str] = "DnCNN residual CNN (Zhang et al. 2017); blind, or ?model=specific"
    Params = DnCNNParams
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR
    uses_true_level = _NonBlindIfSpecific()  # type: ignore[assignment]

    # ------------------------------------------------------------ network and checkpoints

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.denoise.models import ChannelAdaptingDnCNN

        net = ChannelAdaptingDnCNN(**config)
        net.train_bfloat16 = _native_bfloat16()
        return net

    def _wanted_channels(self) -> list[str]:
        return [self.params.channels] if self.params.channels else ["gray", "rgb"]

    def _candidates(self) -> list[Path]:
        """The committed checkpoints of this variant (existing or not), gray before rgb."""
        folder = self.checkpoint_dir or CHECKPOINT_DIR
        if self.params.model == "blind":
            return [folder / f"dncnn_blind_{c}.safetensors" for c in self._wanted_channels()]
        found = [p for p in sorted(folder.glob("dncnn_s*_*.safetensors")) if _SPECIFIC_NAME.search(p.name)]
        found = [p for p in found if _SPECIFIC_NAME.search(p.name).group(2) in self._wanted_channels()]
        if self.params.sigma is not None and found:
            nearest = min(abs(_specific_sigma(p) - self.params.sigma) for p in found)
            found = [p for p in found if abs(_specific_sigma(p) - self.params.sigma) == nearest]
        return found

    def default_checkpoints(self) -> list[Path]:
        """The committed checkpoints that exist (all expected ones when none does)."""
        candidates = self._candidates()
        existing = [p for p in candidates if p.is_file()]
        if existing:
            return existing
        if candidates:
            return candidates
        sigma = f"{self.params.sigma:g}" if self.params.sigma else "25"
        folder = self.checkpoint_dir or CHECKPOINT_DIR
        raise UserError(
            f"{self.qualified_name}: no DnCNN-S checkpoint (dncnn_sSIGMA_gray|rgb.safetensors) in {folder}",
            hint=f"train one with `restorebench train 'denoise/dncnn?model=specific&sigma={sigma}&channels=gray'`",
        )

    def checkpoint_for(self, item: Degraded) -> Path:
        paths = self.checkpoints()
        if len(paths) == 1:
            return paths[0]
        want = 1 if item.image.shape[-1] == 1 else 3
        same = [p for p in paths if _checkpoint_channels(str(p)) == want] or paths
        if self.params.model == "specific" and self.params.sigma is None:
            from restorebench.tasks.denoise.levels import noise_level

            sigma = noise_level(item).sigma
            return min(same, key=lambda p: (abs(_specific_sigma(p) - sigma), str(p)))
        return same[0]

    # ------------------------------------------------------------ training

    def _train_channels(self) -> Literal["gray", "rgb"]:
        return self.params.channels or "gray"

    def training_output(self) -> Path:
        folder = self.checkpoint_dir or CHECKPOINT_DIR
        channels = self._train_channels()
        if self.params.model == "blind":
            return folder / f"dncnn_blind_{channels}.safetensors"
        return folder / f"dncnn_s{self._train_sigma():g}_{channels}.safetensors"

    def _train_sigma(self) -> float:
        if self.params.sigma is None:
            raise UserError(
                f"{self.qualified_name}?model=specific needs the sigma to train for",
                hint="e.g. restorebench train 'denoise/dncnn?model=specific&sigma=25&channels=gray'",
            )
        return float(self.params.sigma)

    def recipe(self) -> Any:
        """Patches 40x40 of clean images, Gaussian noise added on the fly, MSE to the clean patch.

        Blind: sigma ~ U[0, 55] per patch; specific: the given sigma. The network's output
        is ``noisy - R(noisy)``, so the MSE to the clean patch equals the paper's residual
        loss ``1/2N ||R(y) - (y - x)||^2`` up to a constant factor. Adam, lr 1e-3, x0.1 at
        70% and 90% of the steps; batch 32 (paper: 128).
        """
        from restorebench.neural.training import Recipe

        channels = self._train_channels()
        if self.params.model == "blind":
            pair, what = noisy_pair(0.0, BLIND_SIGMA_MAX), f"blind, sigma ~ U[0, {BLIND_SIGMA_MAX:g}]"
        else:
            sigma = self._train_sigma()
            pair, what = noisy_pair(sigma, sigma), f"specific, sigma {sigma:g}"
        config = {**_LIGHT[channels], "channels": 1 if channels == "gray" else 3}
        return Recipe(
            architecture=self.architecture,
            config=config,
            make_pair=pair,
            patch_size=40,
            channels=channels,
            loss="mse",
            val_every=500,
            val_patches=64,
            **_TRAINING,
            notes=(
                f"DnCNN {what}; {config['depth']} layers x {config['features']} features (paper: 17 x 64, "
                "batch 128); trained on Train400 (gray) / BSDS400 (colour) in the committed checkpoints"
            ),
        )

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """Depth (the number of ``dncnn.N.weight`` convolutions), features and channels (the
        first one's shape), batch norm (``running_mean`` present) and, with batch norm, the
        last convolution's bias: what a checkpoint's config must agree with."""
        convs = sorted(
            (int(m.group(1)), shape)
            for key, shape in shapes.items()
            if (m := _CONV_KEY.fullmatch(key)) is not None and len(shape) == 4
        )
        if not convs:
            return {}
        batch_norm = any(key.startswith("dncnn.") and key.endswith(".running_mean") for key in shapes)
        said = {"depth": len(convs), "features": convs[0][1][0], "channels": convs[0][1][1], "batch_norm": batch_norm}
        if batch_norm:
            said["last_bias"] = f"dncnn.{convs[-1][0]}.bias" in shapes
        return said

    # ------------------------------------------------------------ released weights

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The official PyTorch port, KAIR's ``model.N`` layout, or the MatConvNet release.

        See :func:`restorebench.tasks.denoise.models.convert_state_dict` and
        :func:`~restorebench.tasks.denoise.models.convert_matconvnet` (tables in the README).
        """
        from restorebench.tasks.denoise.models import convert_matconvnet, convert_state_dict

        if weights.layers is not None:
            return convert_matconvnet(weights.layers)
        if weights.state_dict is not None:
            return convert_state_dict(weights.state_dict)
        raise UserError(
            f"{self.qualified_name}: released DnCNN weights come as a PyTorch state dict or a "
            f"MatConvNet net.layers file, not {weights.source_format}"
        )


def noisy_pair(sigma_min: float, sigma_max: float) -> Any:
    """A ``make_pair`` adding N(0, sigma/255) to a clean HWC patch, sigma ~ U[min, max] per patch."""

    def pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        sigma = sigma_min if sigma_max == sigma_min else rng.uniform(sigma_min, sigma_max)
        target = np.ascontiguousarray(clean.transpose(2, 0, 1), dtype=np.float32)
        noise = rng.standard_normal(target.shape, dtype=np.float32) * np.float32(sigma / 255.0)
        return target + noise, target

    pair.__qualname__ = f"noisy_pair(sigma_min={sigma_min:g}, sigma_max={sigma_max:g})"
    return pair


@lru_cache(maxsize=1)
def _native_bfloat16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (oneDNN; AVX512-BF16 or AMX)."""
    try:
        import torch

        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _specific_sigma(path: Path) -> float:
    match = _SPECIFIC_NAME.search(Path(path).name)
    if match is None:
        raise UserError(f"{path}: a DnCNN-S checkpoint is named dncnn_sSIGMA_gray|rgb.safetensors")
    return float(match.group(1))


@lru_cache(maxsize=64)
def _checkpoint_channels(path: str) -> int:
    """The image channels of a checkpoint, from its metadata (or its first weight)."""
    from restorebench.neural.checkpoints import load_checkpoint

    state, meta = load_checkpoint(path)
    channels = meta.get("config", {}).get("channels")
    if channels is None:
        first = next((v for k, v in state.items() if k.endswith("0.weight")), None)
        channels = int(first.shape[1]) if first is not None else 1
    return int(channels)
