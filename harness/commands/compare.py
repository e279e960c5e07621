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

Out of core: the engine writes each side's rows into one folder per comparison row (one
streaming pass in its memory limit), and the two sides are read back one row's images at a
time, so the driver holds one group of images, whatever the size of the runs.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from restorebench.commands import mismatches
from restorebench.commands.verdicts import (
    DEFAULT_TOLERANCE,
    ROW,
    ROW_COLUMNS,
    Comparison,
    bootstrap_index,
    judge,
    paired_bootstrap_ci,
    percentile_ci,
)
from restorebench.core.errors import UserError, choices
from restorebench.results.groups import BLOCK, GROUP, metric_of, stats_matrix

if TYPE_CHECKING:
    from pandas import DataFrame

__all__ = [
    "Comparison",
    "bootstrap_index",
    "compare",
    "compare_refs",
    "load_side",
    "paired_bootstrap_ci",
    "percentile_ci",
]

PAIR = [*BLOCK, "image", "method", "metric"]
KEPT = ["image", "status", "value", "metric_version", "method_version"]  # what a group's rows keep of each row
_RUN_ID = re.compile(r"^(?:runs:/)?([0-9a-f]{32})/?$")


def compare(
    base: Any,
    cand: Any,
    *,
    metrics: Sequence[str] = ("psnr",),
    tolerance: float = DEFAULT_TOLERANCE,
    resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare CAND's per-image results with BASE's (two results sets or frames), out of core.

    Raises :class:`UserError` when a metric is unknown or nothing can be paired.

    Example
    -------
    >>> from restorebench.run.read import read_results
    >>> result = compare(read_results("runs/main"), read_results("runs/pr"), metrics=["psnr", "ssim"])
    >>> result.regressions  # rows whose verdict is "worse"
    0
    """
    import pandas as pd

    from restorebench.results.board import as_results
    from restorebench.results.dataset import connect
    from restorebench.run.tables import system_allocator

    names = _metric_names(metrics, tolerance, resamples)
    sides = [as_results(base), as_results(cand)]
    # Arrow's default pool keeps what it freed (~100 MB after a group of 78,000 images); the
    # system's gives it back when the heap is trimmed, after each group
    with tempfile.TemporaryDirectory(prefix="restorebench-compare-") as tmp, system_allocator():
        facts, groups = [], []
        for label, side in zip(("base", "cand"), sides):
            con = connect(threads=1)  # its groupings by unit spill in the memory limit on one thread only
            try:
                view = side.view(con, "side")
                facts.append(mismatches.SideFacts.of(con, view, names))
                groups.append(Groups.write(con, view, facts[-1], names, Path(tmp) / label))
            finally:
                con.close()
        _check_present(facts, names)
        tally = mismatches.Tally(facts)
        rows, broken = [], []
        for key, b, c in _merged(groups[0].tables(), groups[1].tables()):
            paired, lost = tally.add(key, b, c)
            if paired is not None:
                rows.append(judge(key, paired, metric_of(key[-1]), tolerance, resamples, seed))
            if lost is not None and lost.num_rows:
                broken.append(_newly_failed(key, lost))
    found = tally.messages()
    if not rows and not broken:
        detail = "; ".join(found[:5]) or "one side has no ok rows for these metrics"
        raise UserError(
            f"nothing to compare: no result is ok on both sides under the same protocol ({detail})",
            hint=f"check that BASE and CAND ran the same task, dataset, degradation and method for {', '.join(names)}",
        )
    table = _with_failures(pd.DataFrame(rows, columns=[*ROW, *ROW_COLUMNS]), broken)
    for column, side in (("base_failed", 0), ("cand_failed", 1)):
        failed = facts[side].failed
        table[column] = [failed.get(tuple(k), (0, 0))[0] for k in table[GROUP].itertuples(index=False)]
    table = table.sort_values(ROW, kind="stable").reset_index(drop=True)
    regressions = int(table["verdict"].isin(["worse", "failed"]).sum())
    return Comparison(table, found, regressions, names, float(tolerance), int(resamples), int(seed))


def _metric_names(metrics: Sequence[str], tolerance: float, resamples: int) -> tuple[str, ...]:
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
    return names


def _check_present(facts: list[Any], names: tuple[str, ...]) -> None:
    present = facts[0].all_metrics | facts[1].all_metrics
    absent = [n for n in names if n not in present]
    if absent:
        raise UserError(
            f"metric {', '.join(map(repr, absent))} is in neither BASE nor CAND; their metrics: {choices(present)}",
            hint="compare a metric the runs scored (--metric NAME)",
        )


class Groups:
    """One side's rows of the compared metrics, written by the engine into one folder per
    comparison row in one streaming pass (``COPY ... PARTITION_BY``, within its memory limit;
    no sort), so that :meth:`tables` gives back a row's images together, in key order."""

    def __init__(self, folder: Path, keys: list[tuple]) -> None:
        self.folder = folder
        self.keys = keys  # comparison rows, in key order; row i's rows are in gid=i/

    @classmethod
    def write(cls, con: Any, view: str, facts: mismatches.SideFacts, names: tuple[str, ...], folder: Path) -> Groups:
        import pandas as pd

        from restorebench.results.dataset import _quoted

        keys = sorted(facts.methods)
        con.register("compared", pd.DataFrame(keys, columns=ROW).assign(gid=range(len(keys))))
        kept = KEPT + (["stats"] if any(metric_of(n).set_level for n in names) else [])
        if keys:  # the folder names are numbers: a method's name may hold "/" or "="
            con.execute(
                f"COPY (SELECT gid, {', '.join(kept)} FROM {view} JOIN compared USING ({', '.join(ROW)}) "
                f"WHERE status <> 'skipped') TO '{_quoted(str(folder))}' "
                "(FORMAT parquet, PARTITION_BY (gid), WRITE_PARTITION_COLUMNS false, OVERWRITE_OR_IGNORE)"
            )
        return cls(folder, keys)

    def tables(self) -> Iterator[tuple[tuple, Any]]:
        """Each comparison row's rows (Arrow: :data:`KEPT`, one per unit), in key order; the
        heap is trimmed after each (see :func:`compare`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from restorebench.run.tables import trim_heap

        for gid, key in enumerate(self.keys):
            files = sorted((self.folder / f"gid={gid}").glob("*.parquet"))
            if not files:
                continue
            yield key, pa.concat_tables(pq.read_table(f, use_threads=False) for f in files)
            trim_heap()


def _merged(base: Iterator, cand: Iterator) -> Iterator[tuple[tuple, Any, Any]]:
    """The two sides' groups side by side, by key (None where a side has no such group)."""
    b, c = next(base, None), next(cand, None)
    while b is not None or c is not None:
        if c is None or (b is not None and b[0] < c[0]):
            yield b[0], b[1], None
            b = next(base, None)
        elif b is None or c[0] < b[0]:
            yield c[0], None, c[1]
            c = next(cand, None)
        else:
            yield b[0], b[1], c[1]
            b, c = next(base, None), next(cand, None)


def _newly_failed(key: tuple, lost: Any) -> dict[str, Any]:
    """Results ok in BASE whose unit failed in CAND (``lost``: BASE's rows; a crash is a
    regression): how many, BASE's value over them and its method versions."""
    metric = metric_of(key[-1])
    stats = stats_matrix(lost.column("stats").to_pylist()) if metric.set_level else None
    value = metric.group_value(stats) if stats is not None else float(np.mean(lost.column("value").to_numpy()))
    versions = sorted(map(str, lost.column("method_version").unique().to_pylist()))
    return {"key": key, "count": lost.num_rows, "base": value, "versions": versions}


def _with_failures(table: DataFrame, broken: list[dict[str, Any]]) -> DataFrame:
    """Rows with newly failed units get the verdict ``failed``; a method whose every unit
    failed in CAND gets a row of its own (BASE's value, no CAND value)."""
    import pandas as pd

    table = table.assign(newly_failed=0)
    extra = []
    for item in broken:
        key = item["key"]
        hit = (table[ROW] == list(key)).all(axis=1) if len(table) else pd.Series([], dtype=bool)
        if hit.any():
            table.loc[hit, ["verdict", "newly_failed"]] = ["failed", item["count"]]
            continue
        metric = metric_of(key[-1])
        nan = float("nan")
        extra.append(
            {
                **dict(zip(ROW, key)),
                "n": 0,
                "base": item["base"],
                **dict.fromkeys(["cand", "delta", "ci_low", "ci_high", "gain", "gain_low", "gain_high"], nan),
                "verdict": "failed",
                "direction": metric.direction_text(),
                "unit": metric.unit,
                "base_version": ", ".join(item["versions"]),
                "cand_version": "-",
                "newly_failed": item["count"],
            }
        )
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True) if extra else table


def load_side(ref: str, tracking_uri: str | None) -> Any:
    """The results of a run directory, a results ``.parquet`` (file or folder), a folder holding
    several runs of one suite (one side made of N jobs) or an MLflow run id, as a
    :class:`~restorebench.results.dataset.ResultsSet` (read out of core) or a frame.

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
    from restorebench.run.read import read_runs

    if is_uri(ref):
        return read_runs([local_copy(ref)])
    path = Path(ref)
    if path.exists():
        return read_runs([path])  # a run directory, a results file, or a folder holding several runs
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
