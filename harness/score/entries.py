"""The engine's metric entries (psnr, ssim, psnr_y, ssim_y) and scoring one output with named metrics.

A metric's name and version fix its colour space, crop border, data range and rounding;
results under different versions are never compared (see :mod:`restorebench.commands.compare`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from restorebench.core.interfaces import Degraded, Metric, ScoreFn
from restorebench.core.registry import METRICS, register
from restorebench.score import metrics


def _register(name: str, version: str, higher_is_better: bool, description: str) -> Callable[[ScoreFn], ScoreFn]:
    def deco(fn: ScoreFn) -> ScoreFn:
        register(Metric(name, fn, version, higher_is_better, description))
        return fn

    return deco


@_register("psnr", "1", True, "PSNR on RGB (or gray), 8-bit outputs, data range 1, crop border from the task")
def _psnr(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.psnr(restored, clean, data_range=1.0, crop_border=d.crop_border)


@_register("ssim", "1", True, "SSIM on RGB (mean over channels), Gaussian 11x11 sigma 1.5, valid region")
def _ssim(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.ssim(restored, clean, data_range=1.0, crop_border=d.crop_border)


@_register("psnr_y", "1", True, "PSNR on BT.601 Y (MATLAB rgb2ycbcr, not rounded), crop border from the task")
def _psnr_y(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.psnr(restored, clean, crop_border=d.crop_border, y_channel=True)


@_register(
    "psnr_y_matlab", "1", True, "PSNR on Y rounded as MATLAB rgb2ycbcr on uint8 (the classic tables), crop border"
)
def _psnr_y_matlab(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.psnr_y_matlab(restored, clean, crop_border=d.crop_border)


@_register("ssim_y", "1", True, "SSIM on BT.601 Y, crop border from the task")
def _ssim_y(restored: np.ndarray, clean: np.ndarray, d: Degraded) -> float:
    return metrics.ssim(restored, clean, crop_border=d.crop_border, y_channel=True)


def score(
    restored: np.ndarray,
    clean: np.ndarray,
    degraded: Degraded,
    names: Sequence[str],
    *,
    quantize: bool = True,
) -> tuple[dict[str, float], dict[str, str]]:
    """Score ``restored`` against ``clean`` with each named metric, each on its own.

    Returns the values and, for each metric that could not be computed (e.g. SSIM of an
    image smaller than its window), why; one failing metric never costs the others.
    Outputs are clipped and rounded to the 8-bit grid first when ``quantize`` (the
    convention of published numbers), so a method cannot gain from sub-level values.
    """
    if restored.shape != clean.shape:
        raise ValueError(f"method returned shape {restored.shape}, expected the clean image's {clean.shape}")
    out = metrics.quantize_8bit(restored) if quantize else np.asarray(restored, dtype=np.float32)
    values: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in names:
        try:
            values[name] = METRICS.get(name)(out, clean, degraded)
        except Exception as exc:  # recorded with the metric's row, the unit's other scores stay
            errors[name] = f"{type(exc).__name__}: {exc}"
    return values, errors


ORACLE_PREFIX = "oracle_"


def score_samples(
    samples: np.ndarray,
    clean: np.ndarray,
    degraded: Degraded,
    names: Sequence[str],
    *,
    quantize: bool = True,
) -> tuple[dict[str, float], dict[str, str]]:
    """Score each of a method's samples (``N x H x W x C``): a metric's value is the mean
    over the samples, ``oracle_<metric>`` the best sample's (max, or min when lower is
    better), an upper bound that needs the ground truth to pick, never a result."""
    per: dict[str, list[float]] = {}
    errors: dict[str, str] = {}
    for sample in samples:
        values, failed = score(sample, clean, degraded, names, quantize=quantize)
        errors.update(failed)
        for name, value in values.items():
            per.setdefault(name, []).append(value)
    out: dict[str, float] = {}
    for name, values in per.items():
        if name in errors:
            continue
        out[name] = float(np.mean(values))
        best = max if METRICS.get(name).higher_is_better else min
        out[ORACLE_PREFIX + name] = float(best(values))
    return out, errors


def metric_versions(names: Sequence[str]) -> dict[str, str]:
    """``{metric: version}`` for the unit id and the results table."""
    return {name: METRICS.get(name).version for name in names}
