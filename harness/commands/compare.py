"""The regression gate: pair two runs' per-image scores and decide whether a method got worse.

Units are paired by (task, dataset, image, degradation, method, metric), never by unit
id: the method's version, code or checkpoint is exactly what may differ between BASE and
CAND. Only rows that are ``ok`` on both sides and scored under the same metric version
are compared; everything else is listed as a mismatch, never silently dropped.

For each (task, dataset, degradation, method, metric) the group's value on each side is
the leaderboard's (the mean over the paired images, or a set-level metric's reduction of
their statistics); ``delta`` = CAND - BASE gets a 95 % percentile bootstrap CI (images
resampled with replacement, ``np.random.default_rng(seed)``, the same seed for every row so
a row's CI does not depend on the others; a set-level metric resamples the images'
statistics). The verdict reads the metric's declared direction through its ``gain``, the
improvement in the metric's own units, as the leaderboard ranks: the mean over paired images
of each image's improvement (its delta for higher-is-better, minus it for lower-is-better, how
much nearer the target for a target metric such as ``colorfulness_gap``), or for a set-level
metric the improvement of the set's value; ``worse`` when gain < -tolerance and the gain's CI lies below 0;
``better`` when gain > tolerance and its CI lies above 0; ``same`` otherwise. A descriptive
statistic (``saturation``) is shown with its delta and never gated (``descriptive``). The
tolerance is in the metric's own units (dB for PSNR); its default, 0.05, is below what
anyone reads off a leaderboard.

A result that is ok in BASE and whose unit failed in CAND makes its row ``failed``, a
regression like ``worse`` (a model that crashes never passes the gate); a method that
failed on every image in CAND gets a ``failed`` row of its own. Each row counts the
failed units of both sides.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restorebench.commands.mismatches import BLOCK, ROW, failed_units, failures, one_sided, protocol
from restorebench.core.errors import UserError, choices
from restorebench.core.metric import Metric
from restorebench.results.groups import GROUP, metric_of, scored, stats_matrix

if TYPE_CHECKING:
    from pandas import DataFrame

DEFAULT_TOLERANCE = 0.05
PAIR = [*BLOCK, "image", "method", "metric"]
SYMBOLS = {
    "better": "✅ better",
    "same": "➖ same",
    "worse": "❌ worse",
    "failed": "💥 failed",
    "descriptive": "ℹ️ not gated",
}
VERDICTS = ("failed", "worse", "same", "better", "descriptive")
_RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")


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
    means = d[bootstrap_index(d.size, resamples, seed)].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.clip(np.quantile(means, [alpha, 1 - alpha]), d.min(), d.max())
    return float(low), float(high)


def bootstrap_index(n: int, resamples: int, seed: int) -> np.ndarray:
    """The ``(resamples, n)`` image indices every row's bootstrap draws (one seed for all rows)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


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
                _display(self.rows),
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


def compare(
    base: DataFrame,
    cand: DataFrame,
    *,
    metrics: Sequence[str] = ("psnr",),
    tolerance: float = DEFAULT_TOLERANCE,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare CAND's per-image results with BASE's (two results tables).

    Raises :class:`UserError` when a metric is unknown or nothing can be paired.

    Example
    -------
    >>> from restorebench.run.store import read_results
    >>> result = compare(read_results("runs/main").frame(), read_results("runs/pr").frame(), metrics=["psnr"])
    >>> result.regressions  # rows whose verdict is "worse"
    0
    """
    import pandas as pd

    from restorebench.core.registry import METRICS

    names = tuple(dict.fromkeys(m.strip() for text in metrics for m in text.split(",") if m.strip()))
    for name in names:
        if metric_of(name).version == "?":
            raise UserError(f"unknown metric {name!r} for compare; valid choices: {choices(METRICS.names())}")
    if not names or not math.isfinite(tolerance) or tolerance < 0 or resamples < 1:
        raise UserError(
            f"compare needs at least one metric, a finite --tolerance >= 0 (got {tolerance:g}) and --resamples >= 1",
            hint="e.g. --tolerance 0.05 (in the metric's units)",
        )
    sides = [_check(frame, label) for frame, label in ((base, "BASE"), (cand, "CAND"))]
    sides = [scored(f) for f in sides]
    present = set(sides[0]["metric"]) | set(sides[1]["metric"])
    absent = [n for n in names if n not in present]
    if absent:
        raise UserError(
            f"metric {', '.join(map(repr, absent))} is in neither BASE nor CAND; their metrics: {choices(present)}",
            hint="compare a metric the runs scored (--metric NAME)",
        )
    sides = [f[f["metric"].isin(names)] for f in sides]
    oks = [f[(f["status"] == "ok") & f["value"].notna()].drop_duplicates(PAIR, keep="last") for f in sides]
    cols = [*PAIR, "value", "stats", "metric_version", "method_version"]
    oks = [f if "stats" in f.columns else f.assign(stats=None) for f in oks]
    merged = oks[0][cols].merge(oks[1][cols], on=PAIR, how="outer", suffixes=("_base", "_cand"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    same_protocol = both["metric_version_base"] == both["metric_version_cand"]
    mismatches = failures(sides) + protocol(both[~same_protocol])
    for flag, other, label, other_label in (("left_only", 1, "BASE", "CAND"), ("right_only", 0, "CAND", "BASE")):
        mismatches += one_sided(merged[merged["_merge"] == flag], sides[other], label, other_label)
    paired = both[same_protocol]
    broken = _newly_failed(oks[0], sides[1])
    if paired.empty and broken.empty:
        detail = "; ".join(mismatches[:5]) or "one side has no ok rows for these metrics"
        raise UserError(
            f"nothing to compare: no result is ok on both sides under the same protocol ({detail})",
            hint=f"check that BASE and CAND ran the same task, dataset, degradation and method for {', '.join(names)}",
        )
    rows = [_row(key, g, metric_of(key[-1]), tolerance, resamples, seed) for key, g in paired.groupby(ROW, sort=True)]
    table = _with_failures(pd.DataFrame(rows, columns=[*ROW, *_ROW_COLUMNS]), broken)
    fails = [failed_units(f).rename(c) for f, c in ((sides[0], "base_failed"), (sides[1], "cand_failed"))]
    table = table.join(pd.concat(fails, axis=1), on=GROUP).fillna({"base_failed": 0, "cand_failed": 0})
    table[["base_failed", "cand_failed"]] = table[["base_failed", "cand_failed"]].astype(int)
    table = table.sort_values(ROW, kind="stable").reset_index(drop=True)
    regressions = int(table["verdict"].isin(["worse", "failed"]).sum())
    return Comparison(table, mismatches, regressions, names, float(tolerance), int(resamples), int(seed))


def load_side(ref: str, tracking_uri: str | None) -> DataFrame:
    """A results table from a run directory, a results ``.parquet`` or an MLflow run id.

    A run id (32 hex digits, optionally ``runs:/<id>``) names a parent run of
    ``restorebench run``; its ``results.parquet`` artifact is downloaded from
    ``restorebench.track.runs.resolve_uri(tracking_uri)``.

    Example
    -------
    >>> base = load_side("runs/main", None)
    >>> cand = load_side("runs:/0123456789abcdef0123456789abcdef", "sqlite:///mlflow.db")
    """
    from restorebench.data.storage import is_uri
    from restorebench.run.mirror import local_copy
    from restorebench.run.store import read_results

    if is_uri(ref):
        return read_results(local_copy(ref)).frame()
    path = Path(ref)
    if path.exists():
        return read_results(path).frame()
    match = _RUN_ID.match(ref.strip())
    if match is None:
        raise UserError(f"{ref}: not a run directory, a results .parquet file or an MLflow run id (32 hex digits)")
    from restorebench.track.fetch import fetch_results

    return fetch_results(match.group(1), tracking_uri)


def writable_file(path: Path, option: str) -> None:
    """Refuse, before any work, a path that cannot be written as a file (a folder, no parent)."""
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder", hint=f"give a file, e.g. {path / 'compare.md'}")
    if not path.parent.is_dir():
        raise UserError(f"{option} {path}: its folder {path.parent} does not exist")


def compare_refs(base: str, cand: str, *, tracking_uri: str | None = None, **options) -> Comparison:
    """:func:`load_side` both references, then :func:`compare` them (what the CLI calls)."""
    result = compare(load_side(base, tracking_uri), load_side(cand, tracking_uri), **options)
    result.labels = (base, cand)
    return result


# ---------------------------------------------------------------- helpers


def _check(frame: DataFrame, label: str) -> DataFrame:
    missing = [
        c for c in (*PAIR, "value", "status", "metric_version", "method_version", "unit_id") if c not in frame.columns
    ]
    if missing:
        raise UserError(f"{label} is not a restorebench results table (missing columns: {', '.join(missing)})")
    return frame


def _row(key: tuple, g: DataFrame, metric: Metric, tolerance: float, resamples: int, seed: int) -> dict:
    base, cand, delta, (low, high), (gain, gain_low, gain_high) = _bootstrap(g, metric, resamples, seed)
    if not metric.ranked:
        verdict = "descriptive"
    elif gain < -tolerance and gain_high < 0:
        verdict = "worse"
    elif gain > tolerance and gain_low > 0:
        verdict = "better"
    else:
        verdict = "same"
    versions = [", ".join(sorted(map(str, g[c].unique()))) for c in ("method_version_base", "method_version_cand")]
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


def _bootstrap(g: DataFrame, metric: Metric, resamples: int, seed: int) -> tuple:
    """One row's group values, delta with its CI, and gain (the improvement in the metric's
    direction) with its CI, all over the same resampled images."""
    base_stats, cand_stats = (stats_matrix(g[f"stats_{side}"]) for side in ("base", "cand"))
    if metric.set_level and base_stats is not None and cand_stats is not None:
        base, cand = metric.group_value(base_stats), metric.group_value(cand_stats)
        weights = _weights(bootstrap_index(len(g), resamples, seed)) if len(g) > 1 else np.ones((1, 1))
        b = np.array([metric.group_value(base_stats, w) for w in weights])
        c = np.array([metric.group_value(cand_stats, w) for w in weights])
        return base, cand, cand - base, percentile_ci(c - b), _gain(metric, base, cand, b, c)
    b_img, c_img = g["value_base"].to_numpy(float), g["value_cand"].to_numpy(float)
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


_ROW_COLUMNS = [
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


def _newly_failed(base_ok: DataFrame, cand: DataFrame) -> DataFrame:
    """Results ok in BASE whose unit failed in CAND (a crash is a regression), one row per image and metric."""
    failed = cand[cand["status"] != "ok"].drop_duplicates(PAIR)[[*PAIR, "error"]]
    return base_ok[[*PAIR, "value", "stats", "method_version"]].merge(failed, on=PAIR, how="inner")


def _with_failures(table: DataFrame, broken: DataFrame) -> DataFrame:
    """Rows with newly failed units get the verdict ``failed``; a method whose every unit
    failed in CAND gets a row of its own (BASE's value, no CAND value)."""
    import pandas as pd

    table = table.assign(newly_failed=0)
    extra = []
    for key, g in broken.groupby(ROW, sort=True):
        hit = (table[ROW] == list(key)).all(axis=1)
        if hit.any():
            table.loc[hit, ["verdict", "newly_failed"]] = ["failed", len(g)]
            continue
        metric = metric_of(key[-1])
        stats = stats_matrix(g["stats"]) if metric.set_level else None
        version = ", ".join(sorted(map(str, g["method_version"].unique())))
        nan = float("nan")
        extra.append(
            {
                **dict(zip(ROW, key)),
                "n": 0,
                "base": metric.group_value(stats) if stats is not None else float(g["value"].mean()),
                **dict.fromkeys(["cand", "delta", "ci_low", "ci_high", "gain", "gain_low", "gain_high"], nan),
                "verdict": "failed",
                "direction": metric.direction_text(),
                "unit": metric.unit,
                "base_version": version,
                "cand_version": "-",
                "newly_failed": len(g),
            }
        )
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True) if extra else table


def _display(rows: DataFrame) -> DataFrame:
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
