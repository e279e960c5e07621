"""The regression gate: pair two runs' per-image scores and decide whether a method got worse.

Units are paired by (task, dataset, image, degradation, method, metric), never by unit
id: the method's version, code or checkpoint is exactly what may differ between BASE and
CAND. Only rows that are ``ok`` on both sides and scored under the same metric version
are compared; everything else is listed as a mismatch, never silently dropped.

For each (task, dataset, degradation, method, metric) the mean delta (CAND - BASE) over
paired images gets a 95 % percentile bootstrap CI (images resampled with replacement,
``np.random.default_rng(seed)``, the same seed for every row so a row's CI does not
depend on the others). With one image the CI is that image's delta. Verdicts, for a
higher-is-better metric (mirrored for lower-is-better ones): ``worse`` when
delta < -tolerance and the CI's upper bound < 0; ``better`` when delta > +tolerance and
the CI's lower bound > 0; ``same`` otherwise. The tolerance is in the metric's own units
(dB for PSNR); its default, 0.05 dB, is below what anyone reads off a leaderboard.

A result that is ok in BASE and whose unit failed in CAND makes its row ``failed``, a
regression like ``worse`` (a model that crashes never passes the gate); a method that
failed on every image in CAND gets a ``failed`` row of its own. Each row counts the
failed units of both sides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restorebench.commands.mismatches import BLOCK, GROUP, failed_units, failures, one_sided, protocol
from restorebench.core.errors import UserError, choices
from restorebench.report.leaderboard import scored

if TYPE_CHECKING:
    from pandas import DataFrame

DEFAULT_TOLERANCE = 0.05
PAIR = [*BLOCK, "image", "method", "metric"]
SYMBOLS = {"better": "✅ better", "same": "➖ same", "worse": "❌ worse", "failed": "💥 failed"}
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
    index = np.random.default_rng(seed).integers(0, d.size, size=(resamples, d.size))
    means = d[index].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.clip(np.quantile(means, [alpha, 1 - alpha]), d.min(), d.max())
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
        return {v: int(counts.get(v, 0)) for v in ("failed", "worse", "same", "better")}

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
            f"tolerance {self.tolerance:g} (metric units, dB for PSNR); delta = CAND - BASE, mean over paired "
            f"images; 95 % paired bootstrap CI ({self.resamples} resamples, seed {self.seed}). "
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
    >>> result = compare(read_results("runs/main"), read_results("runs/pr"), metrics=["psnr", "ssim"])
    >>> result.regressions  # rows whose verdict is "worse"
    0
    """
    import pandas as pd

    from restorebench.core.registry import METRICS

    names = tuple(dict.fromkeys(m.strip() for text in metrics for m in text.split(",") if m.strip()))
    for name in names:
        if name not in METRICS:
            raise UserError(f"unknown metric {name!r} for compare; valid choices: {choices(METRICS.names())}")
    if not names or tolerance < 0 or resamples < 1:
        raise UserError("compare needs at least one metric, --tolerance >= 0 and --resamples >= 1")
    sides = [_check(frame, label) for frame, label in ((base, "BASE"), (cand, "CAND"))]
    sides = [scored(f) for f in sides]
    sides = [f[f["metric"].isin(names)] for f in sides]
    oks = [f[(f["status"] == "ok") & f["value"].notna()].drop_duplicates(PAIR, keep="last") for f in sides]
    cols = [*PAIR, "value", "metric_version", "method_version"]
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
    rows = [
        _row(key, g, METRICS.get(key[-1]).higher_is_better, tolerance, resamples, seed)
        for key, g in paired.groupby(GROUP, sort=True)
    ]
    table = _with_failures(pd.DataFrame(rows, columns=[*GROUP, *_ROW_COLUMNS]), broken, METRICS)
    fails = [failed_units(f).rename(c) for f, c in ((sides[0], "base_failed"), (sides[1], "cand_failed"))]
    table = table.join(pd.concat(fails, axis=1), on=GROUP[:4]).fillna({"base_failed": 0, "cand_failed": 0})
    table[["base_failed", "cand_failed"]] = table[["base_failed", "cand_failed"]].astype(int)
    table = table.sort_values(GROUP, kind="stable").reset_index(drop=True)
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
        return read_results(local_copy(ref))
    path = Path(ref)
    if path.exists():
        return read_results(path)
    match = _RUN_ID.match(ref.strip())
    if match is None:
        raise UserError(f"{ref}: not a run directory, a results .parquet file or an MLflow run id (32 hex digits)")
    from restorebench.track.fetch import fetch_results

    return fetch_results(match.group(1), tracking_uri)


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


def _row(key: tuple, g: DataFrame, higher_is_better: bool, tolerance: float, resamples: int, seed: int) -> dict:
    base, cand = g["value_base"].to_numpy(float), g["value_cand"].to_numpy(float)
    deltas = cand - base
    delta = float(deltas.mean())
    low, high = paired_bootstrap_ci(deltas, resamples=resamples, seed=seed)
    sign = 1.0 if higher_is_better else -1.0  # improvement = sign * delta
    gain, gain_low, gain_high = sign * delta, min(sign * low, sign * high), max(sign * low, sign * high)
    verdict = (
        "worse" if gain < -tolerance and gain_high < 0 else "better" if gain > tolerance and gain_low > 0 else "same"
    )
    versions = [", ".join(sorted(map(str, g[c].unique()))) for c in ("method_version_base", "method_version_cand")]
    return {
        **dict(zip(GROUP, key)),
        "n": len(g),
        "base": float(base.mean()),
        "cand": float(cand.mean()),
        "delta": delta,
        "ci_low": low,
        "ci_high": high,
        "verdict": verdict,
        "higher_is_better": higher_is_better,
        "base_version": versions[0],
        "cand_version": versions[1],
    }


_ROW_COLUMNS = [
    "n",
    "base",
    "cand",
    "delta",
    "ci_low",
    "ci_high",
    "verdict",
    "higher_is_better",
    "base_version",
    "cand_version",
    "newly_failed",
]


def _newly_failed(base_ok: DataFrame, cand: DataFrame) -> DataFrame:
    """Results ok in BASE whose unit failed in CAND (a crash is a regression), one row per image and metric."""
    failed = cand[cand["status"] != "ok"].drop_duplicates(PAIR)[[*PAIR, "error"]]
    return base_ok[[*PAIR, "value", "method_version"]].merge(failed, on=PAIR, how="inner")


def _with_failures(table: DataFrame, broken: DataFrame, metrics) -> DataFrame:
    """Rows with newly failed units get the verdict ``failed``; a method whose every unit
    failed in CAND gets a row of its own (BASE's mean, no CAND value)."""
    import pandas as pd

    table = table.assign(newly_failed=0)
    extra = []
    for key, g in broken.groupby(GROUP, sort=True):
        hit = (table[GROUP] == list(key)).all(axis=1)
        if hit.any():
            table.loc[hit, ["verdict", "newly_failed"]] = ["failed", len(g)]
            continue
        version = ", ".join(sorted(map(str, g["method_version"].unique())))
        extra.append(
            {
                **dict(zip(GROUP, key)),
                "n": 0,
                "base": float(g["value"].mean()),
                "cand": float("nan"),
                "delta": float("nan"),
                "ci_low": float("nan"),
                "ci_high": float("nan"),
                "verdict": "failed",
                "higher_is_better": metrics.get(key[-1]).higher_is_better,
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
    changed = (rows["base_version"] != rows["cand_version"]) & (rows["cand_version"] != "-")
    out["method"] = np.where(
        changed, rows["method"] + " (v" + rows["base_version"] + " → v" + rows["cand_version"] + ")", rows["method"]
    )
    return out
