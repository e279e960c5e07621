"""Verdicts of the regression gate: the paired bootstrap, each row's delta and gain in the
metric's direction, and the :class:`Comparison` that renders them (Markdown, JSON).

See :mod:`restorebench.commands.compare` for how rows are paired.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from restorebench.core.metric import Metric
from restorebench.results.groups import GROUP, metric_of, stats_matrix

if TYPE_CHECKING:
    from pandas import DataFrame

ROW = [*GROUP, "metric"]  # one row of a comparison
DEFAULT_TOLERANCE = 0.05
SYMBOLS = {
    "better": "✅ better",
    "same": "➖ same",
    "worse": "❌ worse",
    "failed": "💥 failed",
    "descriptive": "ℹ️ not gated",
}
VERDICTS = ("failed", "worse", "same", "better", "descriptive")


def paired_bootstrap_ci(deltas: np.ndarray, *, resamples: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of paired deltas.

    One ``(resamples, n)`` index matrix is drawn from ``np.random.default_rng(seed)``;
    the bounds are clipped to ``[min, max]`` of the deltas (where every resampled mean
    lies), so a constant array gives exactly ``(d, d)``. One delta gives ``(d, d)``.

    Example
    -------
    >>> paired_bootstrap_ci(np.array([0.5, 0.5]), resamples=100, seed=0)
    (0.5, 0.5)
    """
    d = np.asarray(deltas, dtype=np.float64).ravel()
    if d.size == 0 or not np.isfinite(d).all():
        raise ValueError("deltas must be a non-empty array of finite numbers")
    if resamples < 1 or not 0 < level < 1:
        raise ValueError(f"need resamples >= 1 and 0 < level < 1, got {resamples} and {level}")
    if d.size == 1:
        return float(d[0]), float(d[0])
    means = np.concatenate([d[index].mean(axis=1) for index in bootstrap_draws(d.size, resamples, seed)])
    alpha = (1 - level) / 2
    low, high = np.clip(np.quantile(means, [alpha, 1 - alpha]), d.min(), d.max())
    return float(low), float(high)


DRAWS_AT_ONCE = 1 << 20  # image indices drawn per block: a group of 50,000 images resamples in blocks of 20


def bootstrap_draws(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """The ``(resamples, n)`` image indices every row's bootstrap draws (one seed for all rows),
    in blocks of rows so that a large group never holds them all: the same numbers as one
    ``default_rng(seed).integers(0, n, size=(resamples, n))``, which draws them in order."""
    rng = np.random.default_rng(seed)
    block = max(1, DRAWS_AT_ONCE // n)
    for start in range(0, resamples, block):
        yield rng.integers(0, n, size=(min(block, resamples - start), n))


def bootstrap_index(n: int, resamples: int, seed: int) -> np.ndarray:
    """All of :func:`bootstrap_draws` at once (small groups, tests)."""
    return np.concatenate(list(bootstrap_draws(n, resamples, seed)))


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    alpha = (1 - level) / 2
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass
class Comparison:
    """Per-method deltas of CAND against BASE, the mismatches, and the verdict.

    ``rows``: one row per (task, dataset, degradation, method, metric) with ``n``,
    ``base``, ``cand`` (means), ``delta``, ``ci_low``, ``ci_high``, ``verdict``, the
    method versions and the failed units of each side.
    """

    rows: DataFrame
    mismatches: list[str]
    regressions: int
    metrics: tuple[str, ...] = ("psnr",)
    tolerance: float = DEFAULT_TOLERANCE
    resamples: int = 2000
    seed: int = 0
    labels: tuple[str, str] = ("BASE", "CAND")

    def summary(self) -> dict[str, int]:
        counts = self.rows["verdict"].value_counts()
        return {v: int(counts.get(v, 0)) for v in VERDICTS}

    def to_markdown(self) -> str:
        """A CI comment: verdict title, the table of deltas, then the mismatches."""
        from restorebench.report.leaderboard import markdown_table

        s = self.summary()
        head = f"❌ {self.regressions} regression(s)" if self.regressions else "✅ no regression"
        lines = [
            f"## restorebench compare: {head} ({s['failed']} failed, {s['worse']} worse, {s['same']} same, "
            f"{s['better']} better)",
            "",
            f"BASE `{self.labels[0]}` vs CAND `{self.labels[1]}`; metrics {', '.join(self.metrics)}; "
            f"tolerance {self.tolerance:g} in each metric's units; base and cand: the group's value over the paired "
            "images (a mean, or a set-level metric's reduction); delta = CAND - BASE with its 95 % paired bootstrap "
            f"CI ({self.resamples} resamples, seed {self.seed}). The verdict reads each metric's direction (↑ higher, "
            "↓ lower, →x closer to x is better); descriptive statistics are shown, never gated. "
            "`failed`: units ok in BASE that failed in CAND (a regression).",
            "",
            markdown_table(
                display(self.rows),
                [
                    "task",
                    "dataset",
                    "degradation",
                    "method",
                    "metric",
                    "n",
                    "base",
                    "cand",
                    "delta",
                    "95 % CI",
                    "verdict",
                    "failed (BASE/CAND)",
                ],
            ),
            "",
            "### Mismatches",
            "",
        ]
        lines += [f"- ⚠️ {m}" for m in self.mismatches] or ["None: every result was paired."]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        """The rows, mismatches and ``regressions`` count as a JSON document."""
        doc = {
            "base": self.labels[0],
            "cand": self.labels[1],
            "metrics": list(self.metrics),
            "tolerance": self.tolerance,
            "resamples": self.resamples,
            "seed": self.seed,
            "level": 0.95,
            "regressions": self.regressions,
            "summary": self.summary(),
            "rows": json.loads(self.rows.to_json(orient="records")),
            "mismatches": self.mismatches,
        }
        return json.dumps(doc, indent=2, ensure_ascii=False)


@dataclass
class Paired:
    """One comparison row's images, paired: their values on each side (the same order), a
    set-level metric's statistics (rows, or None), and each side's method versions."""

    base: np.ndarray
    cand: np.ndarray
    stats_base: Any = None
    stats_cand: Any = None
    versions: tuple[str, str] = ("", "")

    def __len__(self) -> int:
        return len(self.base)


def judge(key: tuple, g: Paired, metric: Metric, tolerance: float, resamples: int, seed: int) -> dict:
    """One row of the comparison: the group values, delta with its CI, gain and the verdict."""
    base, cand, delta, (low, high), (gain, gain_low, gain_high) = _bootstrap(g, metric, resamples, seed)
    if not metric.ranked:
        verdict = "descriptive"
    elif gain < -tolerance and gain_high < 0:
        verdict = "worse"
    elif gain > tolerance and gain_low > 0:
        verdict = "better"
    else:
        verdict = "same"
    versions = g.versions
    return {
        **dict(zip(ROW, key)),
        "n": len(g),
        "base": base,
        "cand": cand,
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "gain": gain,
        "gain_low": gain_low,
        "gain_high": gain_high,
        "verdict": verdict,
        "direction": metric.direction_text(),
        "unit": metric.unit,
        "base_version": versions[0],
        "cand_version": versions[1],
    }


def _bootstrap(g: Paired, metric: Metric, resamples: int, seed: int) -> tuple:
    """One row's group values, delta with its CI, and gain (the improvement in the metric's
    direction) with its CI, all over the same resampled images."""
    base_stats, cand_stats = (stats_matrix(s) if s is not None else None for s in (g.stats_base, g.stats_cand))
    if metric.set_level and base_stats is not None and cand_stats is not None:
        base, cand = metric.group_value(base_stats), metric.group_value(cand_stats)
        draws = bootstrap_draws(len(g), resamples, seed) if len(g) > 1 else [np.zeros((1, 1), np.int64)]
        b, c = [], []
        for index in draws:
            for w in _weights(index):
                b.append(metric.group_value(base_stats, w))
                c.append(metric.group_value(cand_stats, w))
        b, c = np.array(b), np.array(c)
        return base, cand, cand - base, percentile_ci(c - b), _gain(metric, base, cand, b, c)
    b_img, c_img = np.asarray(g.base, dtype=np.float64), np.asarray(g.cand, dtype=np.float64)
    deltas = c_img - b_img
    base, cand, delta = float(b_img.mean()), float(c_img.mean()), float(deltas.mean())
    ci = paired_bootstrap_ci(deltas, resamples=resamples, seed=seed)
    if not metric.ranked:
        return base, cand, delta, ci, (float("nan"),) * 3
    # per image, how much closer to better CAND is (+-delta; for a target metric, how much
    # nearer the target), averaged as the leaderboard ranks: bootstrapped like the deltas
    gains = metric.goodness(c_img) - metric.goodness(b_img)
    return base, cand, delta, ci, (float(gains.mean()), *paired_bootstrap_ci(gains, resamples=resamples, seed=seed))


def _weights(index: np.ndarray) -> np.ndarray:
    """How many times each image is drawn in each resample: ``(resamples, n)`` counts."""
    counts = np.zeros(index.shape, dtype=np.float64)
    np.add.at(counts, (np.arange(index.shape[0])[:, None], index), 1.0)
    return counts


def _gain(metric: Metric, base: float, cand: float, b: np.ndarray, c: np.ndarray) -> tuple[float, float, float]:
    """The improvement CAND brings in the metric's direction, with its bootstrap CI."""
    if not metric.ranked:
        return float("nan"), float("nan"), float("nan")
    low, high = percentile_ci(metric.goodness(c) - metric.goodness(b))
    return metric.goodness(cand) - metric.goodness(base), low, high


ROW_COLUMNS = [
    "n",
    "base",
    "cand",
    "delta",
    "ci_low",
    "ci_high",
    "gain",
    "gain_low",
    "gain_high",
    "verdict",
    "direction",
    "unit",
    "base_version",
    "cand_version",
    "newly_failed",
]


def display(rows: DataFrame) -> DataFrame:
    """The table's cells as text: 4 decimals for scores in [0, 1] (SSIM), else 2 (dB)."""
    out = rows.copy()
    digits = np.where(rows[["base", "cand"]].abs().max(axis=1) <= 1.5, 4, 2)
    fmt = [lambda v, d=d: f"{v:.{d}f}" for d in digits]
    sfmt = [lambda v, d=d: f"{v:+.{d + 1}f}" for d in digits]
    out["base"] = [f(v) for f, v in zip(fmt, rows["base"])]
    out["cand"] = [f(v) for f, v in zip(fmt, rows["cand"])]
    out["delta"] = [f(v) for f, v in zip(sfmt, rows["delta"])]
    out["95 % CI"] = [f"[{f(lo)}, {f(hi)}]" for f, lo, hi in zip(sfmt, rows["ci_low"], rows["ci_high"])]
    out["verdict"] = rows["verdict"].map(SYMBOLS)
    out["failed (BASE/CAND)"] = [f"{b}/{c}" for b, c in zip(rows["base_failed"], rows["cand_failed"])]
    for column in ("base", "cand", "delta", "95 % CI"):
        out[column] = out[column].replace({"nan": "-", "+nan": "-", "[+nan, +nan]": "-"})
    out["metric"] = [metric_of(m).heading() for m in rows["metric"]]
    changed = (rows["base_version"] != rows["cand_version"]) & (rows["cand_version"] != "-")
    out["method"] = np.where(
        changed, rows["method"] + " (v" + rows["base_version"] + " → v" + rows["cand_version"] + ")", rows["method"]
    )
    return out
