"""The noise level a denoiser's automatic parameters are chosen from.

Gaussian noise: the true ``sigma`` of a ``gaussian`` degradation, or the one a pre-degraded
pair stands for (``given?sigma=25``) (non-blind, as in the BM3D / NL-means / DnCNN-S
protocols), or the one a user says of real noisy photos (``as_is?sigma=15``). Salt-and-pepper:
the true ``density`` of a ``saltpepper`` degradation (or ``given?density=``). Anything else: ``sigma`` estimated from the noisy
input with scikit-image's wavelet-MAD estimator (Donoho & Johnstone), blind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from restorebench import Degraded
from restorebench.imaging import noise_sigma

__all__ = ["NoiseLevel", "noise_level", "estimate_sigma", "interp", "step", "impulse_sigma"]


@dataclass(frozen=True)
class NoiseLevel:
    """What a method knows about the noise of one input.

    ``sigma`` is a Gaussian std in 0-255 units (0 for impulse noise); ``density`` is
    the fraction of impulse-corrupted pixels, or None for Gaussian-like noise.
    ``known`` says whether the level came from the degradation (non-blind) or was
    estimated from the image.
    """

    sigma: float = 0.0
    density: float | None = None
    known: bool = True

    @property
    def impulse(self) -> bool:
        return self.density is not None


def noise_level(item: Degraded) -> NoiseLevel:
    """The true level of a ``gaussian`` / ``saltpepper`` input, else an estimate.

    Example
    -------
    >>> import numpy as np
    >>> noise_level(Degraded(np.zeros((4, 4, 1), np.float32), "gaussian", {"sigma": 25}))
    NoiseLevel(sigma=25.0, density=None, known=True)
    """
    params = item.params or {}
    if item.degradation in ("gaussian", "given", "as_is") and "sigma" in params:
        return NoiseLevel(sigma=float(params["sigma"]))
    if item.degradation in ("saltpepper", "given") and "density" in params:
        return NoiseLevel(density=float(params["density"]))
    return NoiseLevel(sigma=estimate_sigma(item.image), known=False)


def estimate_sigma(image: np.ndarray) -> float:
    """Gaussian noise std of ``image`` (HxWxC in [0, 1]) in 0-255 units, averaged over channels."""
    return noise_sigma(np.asarray(image, dtype=np.float64)) * 255.0


def interp(x: float, table: Sequence[tuple[float, float]]) -> float:
    """Piecewise-linear lookup in a ``(x, y)`` table sorted by x, clamped at both ends."""
    xs, ys = zip(*table)
    return float(np.interp(x, xs, ys))


def step(x: float, table: Sequence[tuple[float, Any]]) -> Any:
    """The value of the last ``(threshold, value)`` entry with ``threshold <= x`` (else the first)."""
    value = table[0][1]
    for threshold, v in table:
        if x >= threshold:
            value = v
    return value


def impulse_sigma(density: float) -> float:
    """Std (0-255 units) of salt-and-pepper noise on a mid-grey image: 127.5 sqrt(density).

    The Gaussian-noise methods scale this by a tuned factor when given impulse noise.
    """
    return 127.5 * float(np.sqrt(density))
