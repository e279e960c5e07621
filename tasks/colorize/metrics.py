"""Colorization statistics, per image, on the 8-bit output against the original colour image.

- ``auc``: the area under the cumulative distribution of the per-pixel ab error (Euclidean
  distance in ab units, Lab of sRGB D65) over the thresholds 0, 1, ..., 150, normalised to
  [0, 1] (Zhang et al., ECCV 2016, Table 1: the fraction of pixels within t, averaged over t).
- ``auc_rebal``: the same with each pixel weighted by the class-rebalancing weight of its
  ground-truth bin (the training prior of :mod:`restorebench.tasks.colorize.prior`), which
  lifts rare colours: a gray output scores low there.
- ``colorfulness``: Hasler and Suesstrunk (2003), ``sigma_rgyb + 0.3 mu_rgyb`` on the 0-255
  scale with ``rg = R - G``, ``yb = (R + G) / 2 - B``; ``colorfulness_gap``: output minus
  original (0 is faithful; negative is washed out).
- ``saturation``: the output's mean HSV saturation.
- ``ab_hist_iou``: the intersection of the output's and the original's 2-D ab histograms
  (bins of 10 over [-110, 110]^2, each normalised to sum 1): 1 for the same colour mass.
"""

from __future__ import annotations

import numpy as np

from restorebench import Degraded, Metric, register
from restorebench.tasks.colorize.color import nearest_bin, rgb_to_lab

THRESHOLDS = np.arange(0, 151)  # ab units
HIST_EDGES = np.arange(-110, 111, 10)


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.shape[2] != 3:
        raise ValueError(f"colorization scores RGB images, got {img.shape[2]} channel(s)")
    return img


def ab_error(restored: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ab distance between output and original, and the original's ab."""
    truth = rgb_to_lab(_rgb(clean))[..., 1:]
    guess = rgb_to_lab(_rgb(restored))[..., 1:]
    return np.sqrt(((guess - truth) ** 2).sum(-1)).ravel(), truth.reshape(-1, 2)


def auc_of(errors: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean over the thresholds of the (weighted) fraction of pixels whose error is at most t."""
    w = np.ones_like(errors) if weights is None else weights
    order = np.argsort(errors)
    cumulative = np.cumsum(w[order]) / w.sum()
    within = np.searchsorted(errors[order], THRESHOLDS, side="right")
    fractions = np.where(within > 0, cumulative[np.maximum(within - 1, 0)], 0.0)
    return float(fractions.mean())


def auc(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    return auc_of(ab_error(restored, clean)[0])


def auc_rebal(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    from restorebench.tasks.colorize.prior import weights

    errors, truth = ab_error(restored, clean)
    return auc_of(errors, weights()[nearest_bin(truth)])


def colorfulness_of(rgb: np.ndarray) -> float:
    x = _rgb(rgb).astype(np.float64) * 255.0
    rg = x[..., 0] - x[..., 1]
    yb = 0.5 * (x[..., 0] + x[..., 1]) - x[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def colorfulness(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    return colorfulness_of(restored)


def colorfulness_gap(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    return colorfulness_of(restored) - colorfulness_of(clean)


def saturation(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    x = _rgb(restored).astype(np.float64)
    top, bottom = x.max(axis=2), x.min(axis=2)
    return float(np.where(top > 0, (top - bottom) / np.where(top > 0, top, 1.0), 0.0).mean())


def _ab_histogram(rgb: np.ndarray) -> np.ndarray:
    ab = rgb_to_lab(_rgb(rgb))[..., 1:].reshape(-1, 2)
    hist, _, _ = np.histogram2d(
        np.clip(ab[:, 0], -110, 110), np.clip(ab[:, 1], -110, 110), bins=[HIST_EDGES, HIST_EDGES]
    )
    return hist / hist.sum()


def ab_hist_iou(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> float:
    return float(np.minimum(_ab_histogram(restored), _ab_histogram(clean)).sum())


for _name, _fn, _text in (
    ("auc", auc, "AuC of the per-pixel ab-error CDF over thresholds 0-150, in [0, 1] (Zhang et al. 2016)"),
    ("auc_rebal", auc_rebal, "AuC with pixels weighted by the class-rebalancing weight of their true colour bin"),
    ("colorfulness", colorfulness, "Hasler-Suesstrunk colourfulness of the output (0-255 scale)"),
    ("colorfulness_gap", colorfulness_gap, "colourfulness of the output minus the original's (0: faithful)"),
    ("saturation", saturation, "mean HSV saturation of the output"),
    ("ab_hist_iou", ab_hist_iou, "intersection of the output's and the original's ab histograms (bins of 10)"),
):
    register(Metric(_name, _fn, "1", True, _text))
