"""The leaderboard of a results table, built once and handed to every writer.

One row per (task, dataset, degradation, method): each metric's group value (a mean, or a
set-level reduction), the method's rank within its (task, dataset, degradation) by the
task's ranking metric, read in that metric's direction, and ``gap``, the distance to the
best method in the ranking metric's own units (0 for the best; never negative). A
descriptive ranking metric ranks nothing. The console, MLflow and the report files format
this one object; :mod:`restorebench.report.leaderboard` writes it as Markdown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from restorebench.core.metric import Metric
from restorebench.results.groups import BLOCK, GROUP, ORACLE, group_info, metric_of, metric_order, metric_values, scored

if TYPE_CHECKING:
    from pandas import DataFrame

PUBLISHED = ("published_metric", "published", "delta_published", "published_source")
FIXED = (
    "rank",
    "kind",
    "non_blind",
    "params",
    "rank_metric",
    "gap",
    "runtime_ms",
    "runtime_ms_per_mp",
    "images",
    "failed",
)


@dataclass
class Leaderboard:
    """A results table's leaderboard.

    ``table``: one row per group (keys, ``rank``, method columns, one column per metric,
    ``rank_metric``, ``gap``, published numbers, runtime, images, failed); ``values``: per
    group and metric, the group value with the per-image mean, median and count (what MLflow
    child runs log); ``metrics``: each metric column's :class:`Metric`, in column order;
    ``rank_by``: each task's ranking metric (``""`` when it has none that ranks).
    """

    table: DataFrame
    values: DataFrame
    metrics: dict[str, Metric] = field(default_factory=dict)
    rank_by: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.table.empty

    def rank_metric(self, task: str) -> Metric | None:
        """The metric ``task``'s tables are ranked by (None when none ranks)."""
        label = self.rank_by.get(task, "")
        return self.metrics[label] if label else None

    def metrics_of(self, table: DataFrame) -> list[Metric]:
        """The metrics with a value in ``table`` (part of :attr:`table`), in column order."""
        return [m for label, m in self.metrics.items() if label in table and table[label].notna().any()]

    def group_values(self, key: tuple) -> DataFrame:
        """``values`` of one group (task, dataset, degradation, method)."""
        v = self.values
        return v[(v[GROUP] == list(key)).all(axis=1)] if len(v) else v


def build_leaderboard(results: DataFrame, *, rank_by: str | None = None) -> Leaderboard:
    """The leaderboard of a results table (``rank_by``: one metric ranks every task that has it)."""
    import pandas as pd

    results = scored(results)
    if results.empty:
        return Leaderboard(pd.DataFrame(), pd.DataFrame(columns=[*GROUP, "metric", "value", "mean", "median", "n"]))
    order = metric_order(results)
    metrics = {label: metric_of(label) for label in order}
    values = metric_values(results)
    wide = values.pivot_table(index=GROUP, columns="metric", values="value", aggfunc="first", dropna=False)
    table = group_info(results).join(wide, how="left").reset_index()
    for label in order:  # a metric with no ok value still gets its (empty) column
        if label not in table.columns:
            table[label] = float("nan")
    chosen = {task: _rank_label(results[results["task"] == task], metrics, rank_by) for task in table["task"].unique()}
    table["rank_metric"] = table["task"].map(chosen)
    good = values.set_index([*GROUP, "metric"])["goodness"]
    goodness = pd.Series(
        [
            good.get((*key, r), np.nan) if r else np.nan
            for key, r in zip(table[GROUP].itertuples(index=False), table["rank_metric"])
        ],
        index=table.index,
        dtype=float,
    )
    block = goodness.groupby([table[k] for k in BLOCK])
    # Methods without a score (every unit failed) rank last in their block; a block whose
    # ranking metric is descriptive (or absent) ranks nothing.
    rank = block.rank(ascending=False, method="min").fillna(block.transform("size"))
    table["rank"] = rank.where(table["rank_metric"] != "").astype("Int64")
    table["gap"] = block.transform("max") - goodness
    table = table.sort_values([*BLOCK, "rank", "method"], na_position="last").reset_index(drop=True)
    table = _with_published(table, results, values)
    columns = ["rank", "kind", "non_blind", "params", *order, "rank_metric", "gap", *PUBLISHED]
    columns += ["runtime_ms", "runtime_ms_per_mp", "images", "failed", "dataset_check"]
    return Leaderboard(table[GROUP + columns], values, metrics, chosen)


def _rank_label(rows: DataFrame, metrics: dict[str, Metric], rank_by: str | None) -> str:
    """A task's ranking metric: ``rank_by`` when the task has it, else its first metric (in
    the order the run scored them) that ranks; ``""`` when none does."""
    present = [m for m in metrics if m in set(rows["metric"])]
    if rank_by and rank_by in present:
        return rank_by
    return next((m for m in present if not m.startswith(ORACLE) and metrics[m].ranked), "")


def _with_published(table: DataFrame, results: DataFrame, values: DataFrame) -> DataFrame:
    """The leaderboard with the published columns (NaN/empty where nothing is published)."""
    import pandas as pd

    found = []
    if "published" in results.columns and results["published"].notna().any():
        has = results[results["published"].notna()]
        ours = values.set_index([*GROUP, "metric"])["value"]
        for key, rows in has.groupby(GROUP, sort=True):
            metric = _published_metric(rows)
            first = rows[rows["metric"] == metric].iloc[0]
            value = float(first["published"])
            mine = float(ours.get((*key, metric), np.nan))
            found.append(
                {
                    **dict(zip(GROUP, key)),
                    "published_metric": metric,
                    "published": value,
                    "delta_published": mine - value,
                    "published_source": str(first["published_source"]),
                }
            )
    frame = pd.DataFrame(found, columns=[*GROUP, *PUBLISHED])
    out = table.merge(frame, on=GROUP, how="left")
    out["published_metric"] = out["published_metric"].fillna("")
    out["published_source"] = out["published_source"].fillna("")
    return out.astype({"published": float, "delta_published": float})


def _published_metric(rows: DataFrame) -> str:
    """The metric a group's published number is shown for: the task's earliest default
    metric with a published value."""
    from restorebench.core.registry import TASKS

    task = rows["task"].iloc[0]
    order = list(TASKS.get(task).metrics) if task in TASKS else []
    return sorted(rows["metric"].unique(), key=lambda m: (order.index(m) if m in order else len(order), m))[0]


def published_of(board: Leaderboard, key: tuple) -> dict[str, Any]:
    """The published columns of one group's row ({} when nothing is published for it)."""
    t = board.table
    row = t[(t[GROUP] == list(key)).all(axis=1)]
    if row.empty or not row["published_metric"].iloc[0]:
        return {}
    return {k: row[k].iloc[0] for k in PUBLISHED}
