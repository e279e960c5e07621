"""The inpainting task's metrics: L1 on the whole image, and PSNR, SSIM, L1 inside the holes.

The holes are those of the unit's mask (``Degraded.extras["mask"]``, 0 = hole), on the
8-bit-quantised output like every other score.

- ``l1``: mean absolute error over every pixel and channel, [0, 1] scale (lower is better).
- ``hole_l1``: the same over the hole pixels only.
- ``hole_psnr``: ``10 log10(1 / MSE)`` with the MSE over the hole pixels (and channels).
- ``hole_ssim``: the SSIM map of :func:`restorebench.score.metrics.ssim_map` (11x11
  Gaussian window, valid region, mean over channels) averaged over the windows centred on
  a hole pixel. With a mask that is all hole it equals ``ssim``.
"""

from __future__ import annotations

import math

import numpy as np

from restorebench import Degraded, Metric, register
from restorebench.score.metrics import ssim_map

WINDOW_RADIUS = 5  # of the 11x11 SSIM window: map entry (i, j) is centred on pixel (i + 5, j + 5)


def _holes(degraded: Degraded, shape: tuple[int, ...]) -> np.ndarray:
    mask = degraded.extras.get("mask")
    if mask is None:
        raise ValueError("hole metrics need the mask of an inpainting degradation (Degraded.extras['mask'])")
    holes = np.asarray(mask) < 0.5
    if holes.shape != shape[:2]:
        raise ValueError(f"the mask is {holes.shape}, the image {shape[:2]}")
    if not holes.any():
        raise ValueError("the mask has no hole: hole metrics are undefined")
    return holes


def l1(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    return float(np.mean(np.abs(restored.astype(np.float64) - clean.astype(np.float64))))


def hole_l1(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    holes = _holes(degraded, clean.shape)
    return float(np.mean(np.abs(restored[holes].astype(np.float64) - clean[holes].astype(np.float64))))


def hole_psnr(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    holes = _holes(degraded, clean.shape)
    mse = float(np.mean((restored[holes].astype(np.float64) - clean[holes].astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


def hole_ssim(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    holes = _holes(degraded, clean.shape)
    smap = ssim_map(restored, clean, data_range=1.0)
    r = WINDOW_RADIUS
    centres = holes[r : r + smap.shape[0], r : r + smap.shape[1]]
    if not centres.any():
        raise ValueError("no hole lies inside the SSIM window's valid region (holes only at the border)")
    return float(smap[centres].mean())


for _name, _fn, _direction, _unit, _text in (
    ("l1", l1, "lower", "", "mean absolute error, whole image, [0, 1] scale, 8-bit outputs"),
    ("hole_l1", hole_l1, "lower", "", "mean absolute error inside the holes (mask == 0), [0, 1] scale"),
    ("hole_psnr", hole_psnr, "higher", "dB", "PSNR of the hole pixels only (MSE over the holes), data range 1"),
    (
        "hole_ssim",
        hole_ssim,
        "higher",
        "",
        "SSIM map (11x11 Gaussian, valid region) averaged over windows centred in a hole",
    ),
):
    register(Metric(_name, _fn, "1", _direction, _text, unit=_unit))
