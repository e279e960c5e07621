"""Colorization statistics, on the 8-bit output against the original colour image.

The ab error of a pixel is the Euclidean distance between the output's and the original's
(a, b) (CIE Lab of sRGB, D65); its colour class is the original's nearest of the 313 ab bins.

- ``auc`` (set-level): Zhang et al. (ECCV 2016), Table 1: the fraction of **all pixels of the
  set** whose ab error is at most t, averaged over t = 0, 1, ..., 150 (in [0, 1]).
- ``auc_rebal`` (set-level): the class-balanced AuC of the same table: each pixel weighted by
  ``1 / p(q)``, q its colour class and p the distribution of the evaluated set's own
  ground-truth pixels over the 313 bins, smoothed as the training prior is (Gaussian, sigma 5
  in ab units), so that every colour class present carries (about) equal total weight: a gray
  output, right on the many neutral pixels and wrong on every colour, scores low.
  ``auc_rebal?prior=FILE`` weights by a fixed distribution instead (313 values, ``.npy`` or
  text, e.g. the paper's ImageNet prior; used as given, normalised to sum 1).
- ``colorfulness`` (descriptive): Hasler and Suesstrunk (2003), ``sigma_rgyb + 0.3 mu_rgyb``
  on the 0-255 scale with ``rg = R - G``, ``yb = (R + G) / 2 - B``; ``colorfulness_gap``:
  output minus original, closer to 0 is better (negative: washed out; positive: over-saturated).
- ``saturation`` (descriptive): the output's mean HSV saturation.
- ``ab_hist_iou``: the intersection of the output's and the original's 2-D ab histograms
  (bins of 10 over [-110, 110]^2, each normalised to sum 1): 1 for the same colour mass.

Both AuCs keep, per image, two numbers per colour class q (:func:`class_statistics`): its
pixel count ``n_q`` and ``s_q``, the sum over its pixels of the number of thresholds t in
0..150 with error <= t. With weights ``w_q`` (1 for ``auc``, ``1 / p(q)`` for ``auc_rebal``),
summed over the set's images::

    AuC = sum_q w_q s_q / (151 sum_q w_q n_q)

Per image (the results' per-image table) each is the same formula over that image alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from restorebench import Degraded, Metric, UserError, register
from restorebench.tasks.colorize.color import Q, ab_bins, nearest_bin, rgb_to_lab, smoothed_distribution

THRESHOLDS = np.arange(0, 151)  # ab units
HIST_EDGES = np.arange(-110, 111, 10)
AUC_VERSION = "2"  # 1: the per-image mean (auc) and the training prior's lambda-mixed weights (auc_rebal)


def _rgb(img: np.ndarray) -> np.ndarray:
    if img.shape[2] != 3:
        raise ValueError(f"colorization scores RGB images, got {img.shape[2]} channel(s)")
    return img


def ab_error(restored: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel ab distance between output and original, and the original's ab."""
    truth = rgb_to_lab(_rgb(clean))[..., 1:]
    guess = rgb_to_lab(_rgb(restored))[..., 1:]
    return np.sqrt(((guess - truth) ** 2).sum(-1)).ravel(), truth.reshape(-1, 2)


def thresholds_within(errors: np.ndarray) -> np.ndarray:
    """For each error, how many thresholds t in 0..150 it is within (``error <= t``): ``151 - ceil(e)``, at least 0."""
    return np.clip(len(THRESHOLDS) - np.ceil(errors), 0, None)


def auc_of(errors: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean over the thresholds of the (weighted) fraction of pixels whose error is at most t."""
    w = np.ones_like(errors, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    return float((w * thresholds_within(errors)).sum() / (len(THRESHOLDS) * w.sum()))


_LAST: list[Any] = []  # (restored, clean, statistics) of the last call: auc and auc_rebal score the same pair


def class_statistics(restored: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Per colour class of the original: ``[n_0 .. n_312, s_0 .. s_312]`` (see the module doc)."""
    if _LAST and _LAST[0] is restored and _LAST[1] is clean:
        return _LAST[2]
    errors, truth = ab_error(restored, clean)
    classes = nearest_bin(truth).ravel()
    counts = np.bincount(classes, minlength=Q).astype(np.float64)
    within = np.bincount(classes, weights=thresholds_within(errors), minlength=Q)
    stats = np.concatenate([counts, within])
    _LAST[:] = [restored, clean, stats]
    return stats


def _totals(stats: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The set's ``n_q`` and ``s_q``: the images' rows summed, each counted ``weights`` times."""
    total = np.asarray(weights, dtype=np.float64) @ np.asarray(stats, dtype=np.float64)
    return total[:Q], total[Q:]


def pooled_auc(stats: np.ndarray, weights: np.ndarray) -> float:
    counts, within = _totals(stats, weights)
    return float(within.sum() / (len(THRESHOLDS) * counts.sum()))


def balanced_auc(stats: np.ndarray, weights: np.ndarray, prior: np.ndarray | None = None) -> float:
    """Class-balanced AuC: pixels weighted by ``1 / p(q)``, p the set's own smoothed class
    distribution, or ``prior`` when given."""
    counts, within = _totals(stats, weights)
    p = smoothed_distribution(counts) if prior is None else prior
    present = counts > 0
    if prior is not None and (p[present] <= 0).any():
        q = int(np.flatnonzero(present & (p <= 0))[0])
        a, b = ab_bins()[q]
        raise ValueError(f"the prior gives probability 0 to colour bin (a={a:g}, b={b:g}), which the set's pixels use")
    w = 1.0 / p[present]
    return float((w * within[present]).sum() / (len(THRESHOLDS) * (w * counts[present]).sum()))


def read_prior(path: str | Path) -> np.ndarray:
    """A fixed class distribution from a file: 313 non-negative numbers (``.npy``, or text
    separated by spaces, commas or newlines), normalised to sum 1."""
    path = Path(path).expanduser()
    try:
        values = np.load(path) if path.suffix == ".npy" else np.array(path.read_text().replace(",", " ").split(), float)
    except (OSError, ValueError) as exc:
        raise UserError(f"auc_rebal?prior={path}: cannot read the prior ({exc})") from None
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size != Q or not np.isfinite(values).all() or (values < 0).any() or values.sum() <= 0:
        raise UserError(
            f"auc_rebal?prior={path}: a prior is {Q} finite, non-negative numbers (one per ab bin, in the order of "
            f"restorebench.tasks.colorize.color.ab_bins()), got {values.size} values"
        )
    return values / values.sum()


def _with_prior(metric: Metric, params: Mapping[str, Any]) -> Metric:
    unknown = sorted(set(params) - {"prior"})
    if unknown:
        raise UserError(f"metric auc_rebal: unknown parameter(s) {', '.join(unknown)}; valid parameters: prior")
    prior = read_prior(str(params["prior"]))
    digest = hashlib.sha256(prior.tobytes()).hexdigest()[:16]

    def reduce(stats: np.ndarray, weights: np.ndarray) -> float:
        return balanced_auc(stats, weights, prior)

    return replace(
        metric,
        reduce=reduce,
        version=f"{metric.version}+prior.sha256:{digest}",
        aggregation=f"pooled over the set's pixels, each weighted by 1 / p(class), p the fixed prior {params['prior']}",
    )


def _per_class(restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> np.ndarray:
    return class_statistics(restored, clean)


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


POOLED = "pooled over every pixel of the set (Zhang et al. 2016, Table 1)"
register(
    Metric(
        "auc",
        _per_class,
        AUC_VERSION,
        "higher",
        "AuC of the ab-error CDF over thresholds 0-150, in [0, 1], over the set's pixels (Zhang et al. 2016)",
        reduce=pooled_auc,
        aggregation=POOLED,
        additive=True,
    )
)
register(
    Metric(
        "auc_rebal",
        _per_class,
        AUC_VERSION,
        "higher",
        "class-balanced AuC: pixels weighted by 1 / p(colour class), p the set's own smoothed class distribution",
        reduce=balanced_auc,
        aggregation="pooled over the set's pixels, each weighted by 1 / p(class), p the set's smoothed class distribution",
        configure=_with_prior,
        parameters="prior=FILE",
        additive=True,
    )
)
for _name, _fn, _direction, _target, _text, _reference in (
    ("colorfulness", colorfulness, "none", None, "Hasler-Suesstrunk colourfulness of the output (0-255 scale)", False),
    ("colorfulness_gap", colorfulness_gap, "target", 0.0, "colourfulness of the output minus the original's", True),
    ("saturation", saturation, "none", None, "mean HSV saturation of the output, in [0, 1]", False),
    ("ab_hist_iou", ab_hist_iou, "higher", None, "intersection of the output's and the original's ab histograms", True),
):
    register(Metric(_name, _fn, "1", _direction, _text, target=_target, reference=_reference))
