"""What the classical denoisers share: the method base class, parameter fields, noise-level rules."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from restorebench import Degraded, Method
from restorebench.tasks.denoise.levels import NoiseLevel, impulse_sigma, noise_level

MIN_SIGMA = 0.5  # floor (0-255 units) for sigma-proportional rules: an estimated sigma may be ~0


def size_field() -> Any:
    return Field(None, ge=1, le=99, description="window side in pixels; None: auto")


def sigma_field(what: str = "noise std in 0-255 units") -> Any:
    return Field(None, gt=0, allow_inf_nan=False, description=f"{what}; None: auto")


class Classical(Method):
    """Shared plumbing: task and kind, and ``resolve()`` filling ``None`` parameters from ``auto()``."""

    task = "denoise"
    kind = "classical"
    version = "1"

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        """The automatic value of every ``None``-default parameter for a noise level."""
        return {}

    def resolve(self, item: Degraded) -> dict[str, Any]:
        """The parameters used on ``item``: the explicit ones, ``auto()`` for those left ``None``."""
        values = self.params.model_dump()
        if any(v is None for v in values.values()):
            auto = self.auto(noise_level(item))
            values = {k: auto[k] if v is None else v for k, v in values.items()}
        return values


def image_of(item: Degraded) -> np.ndarray:
    img = np.ascontiguousarray(item.image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"expected an HxWx1 or HxWx3 image, got shape {img.shape}")
    return img


def like(out: np.ndarray, img: np.ndarray) -> np.ndarray:
    """``out`` as float32 shaped like ``img`` (OpenCV drops a single channel axis)."""
    return np.asarray(out, dtype=np.float32).reshape(img.shape)


def sigma_for(level: NoiseLevel, impulse_factor: float) -> float:
    """The Gaussian sigma a method works with; impulse noise maps to ``factor * impulse_sigma``."""
    sigma = impulse_factor * impulse_sigma(level.density) if level.impulse else level.sigma
    return max(sigma, MIN_SIGMA)


# ---------------------------------------------------------------- local filters
