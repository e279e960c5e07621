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
from restorebench.results.dataset import ResultsSet, connect
from restorebench.results.groups import (
    BLOCK,
    GROUP,
    ORACLE,
    group_info,
    metric_of,
    metric_order,
    metric_values,
    scored_view,
    summary,
)

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
    """A results set's leaderboard.

    ``table``: one row per group (keys, ``rank``, method columns, one column per metric,
    ``rank_metric``, ``gap``, published numbers, runtime, images, failed); ``values``: per
    group and metric, the group value with the per-image mean and count (what MLflow child
    runs log, with :meth:`medians`) and the goodness that ranks it; ``metrics``: each metric column's
    :class:`Metric`, in column order; ``rank_by``: each task's ranking metric (``""`` when it
    has none that ranks); ``tags``: per group, what a tracker tags it with (method version,
    checkpoints, device); ``counts``: the run ids, units and failed units; ``results``: the
    set it was built from (for per-image queries: sample labels, per-image tables).
    """

    table: DataFrame
    values: DataFrame
    metrics: dict[str, Metric] = field(default_factory=dict)
    rank_by: dict[str, str] = field(default_factory=dict)
    tags: Any = None
    counts: dict[str, Any] = field(default_factory=dict)
    results: ResultsSet | None = None
    _medians: Any = field(default=None, repr=False)

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

    def medians(self) -> DataFrame:
        """Each group's per-image median per metric (a sorted pass over the results, made on
        first use: only MLflow's child runs ask for it)."""
        if self._medians is None:
            from restorebench.results.groups import metric_medians

            self._medians = (
                metric_medians(self.results, self.values) if len(self.values) else self.values.assign(median=[])
            )
        return self._medians

    def group_tags(self, key: tuple) -> dict[str, Any]:
        """``tags`` of one group as a dict ({} when unknown)."""
        if self.tags is None or not len(self.tags):
            return {}
        rows = self.tags[(self.tags[GROUP] == list(key)).all(axis=1)]
        return rows.iloc[0].to_dict() if len(rows) else {}


def as_results(results: Any) -> ResultsSet:
    """A :class:`ResultsSet` from a results set or a frame."""
    return results if isinstance(results, ResultsSet) else ResultsSet.of_frame(results)


def build_leaderboard(results: Any, *, rank_by: str | None = None) -> Leaderboard:
    """The leaderboard of a results set (or frame), aggregated by queries in bounded memory
    (``rank_by``: one metric ranks every task that has it)."""
    import pandas as pd

    source = as_results(results)
    con = connect()
    try:
        scored_view(con, source.view(con))
        order = metric_order(con)
        if not order:
            return Leaderboard(pd.DataFrame(), _no_values(), results=source, counts=summary(con))
        metrics = {label: metric_of(label) for label in order}
        values = metric_values(con, order)
        info = group_info(con)
        counts = summary(con)
        presence = con.execute("SELECT DISTINCT task, metric FROM scored").fetchall()
        published = _published_rows(con)
    finally:
        con.close()
    tags = info[[*GROUP, "kind", "method_version", "method_checkpoint", "device"]]
    info = info.drop(columns=["method_version", "method_checkpoint", "device"])
    wide = values.pivot_table(index=GROUP, columns="metric", values="value", aggfunc="first", dropna=False)
    table = info.set_index(GROUP).join(wide, how="left").reset_index()
    for label in order:  # a metric with no ok value still gets its (empty) column
        if label not in table.columns:
            table[label] = float("nan")
    by_task: dict[str, set[str]] = {}
    for task, metric in presence:
        by_task.setdefault(task, set()).add(metric)
    chosen = {task: _rank_label(order, by_task.get(task, set()), metrics, rank_by) for task in table["task"].unique()}
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
    table = _with_published(table, published, values)
    columns = ["rank", "kind", "non_blind", "params", *order, "rank_metric", "gap", *PUBLISHED]
    columns += ["runtime_ms", "runtime_ms_per_mp", "images", "failed", "dataset_check"]
    return Leaderboard(table[GROUP + columns], values, metrics, chosen, tags, counts, source)


def _no_values() -> DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=[*GROUP, "metric", "value", "mean", "n", "goodness"])


def _rank_label(order: list[str], present: set[str], metrics: dict[str, Metric], rank_by: str | None) -> str:
    """A task's ranking metric: ``rank_by`` when the task has it, else its first metric (in
    the order the run scored them) that ranks; ``""`` when none does."""
    mine = [m for m in order if m in present]
    if rank_by and rank_by in mine:
        return rank_by
    return next((m for m in mine if not m.startswith(ORACLE) and metrics[m].ranked), "")


def _published_rows(con: Any) -> DataFrame:
    """Per group and metric, the published number and its source (few rows)."""
    return con.execute(
        f"SELECT {', '.join(GROUP)}, metric, any_value(published) AS published, "
        "any_value(published_source) AS published_source FROM scored "
        f"WHERE published IS NOT NULL AND NOT isnan(published) GROUP BY {', '.join(GROUP)}, metric"
    ).df()


def _with_published(table: DataFrame, published: DataFrame, values: DataFrame) -> DataFrame:
    """The leaderboard with the published columns (NaN/empty where nothing is published)."""
    import pandas as pd

    found = []
    ours = values.set_index([*GROUP, "metric"])["value"]
    for key, rows in published.groupby(GROUP, sort=True):
        metric = _published_metric(key[0], list(rows["metric"]))
        first = rows[rows["metric"] == metric].iloc[0]
        value = float(first["published"])
        found.append(
            {
                **dict(zip(GROUP, key)),
                "published_metric": metric,
                "published": value,
                "delta_published": float(ours.get((*key, metric), np.nan)) - value,
                "published_source": str(first["published_source"]),
            }
        )
    frame = pd.DataFrame(found, columns=[*GROUP, *PUBLISHED])
    out = table.merge(frame, on=GROUP, how="left")
    out["published_metric"] = out["published_metric"].fillna("")
    out["published_source"] = out["published_source"].fillna("")
    return out.astype({"published": float, "delta_published": float})


def _published_metric(task: str, metrics: list[str]) -> str:
    """The metric a group's published number is shown for: the task's earliest default
    metric with a published value."""
    from restorebench.core.registry import TASKS

    order = list(TASKS.get(task).metrics) if task in TASKS else []
    return sorted(metrics, key=lambda m: (order.index(m) if m in order else len(order), m))[0]


def published_of(board: Leaderboard, key: tuple) -> dict[str, Any]:
    """The published columns of one group's row ({} when nothing is published for it)."""
    t = board.table
    row = t[(t[GROUP] == list(key)).all(axis=1)]
    if row.empty or not row["published_metric"].iloc[0]:
        return {}
    return {k: row[k].iloc[0] for k in PUBLISHED}
