"""Groups of results: their keys, unit status, runtime, and each metric's value per group.

A group is one (task, dataset, degradation, method); a block is one (task, dataset,
degradation), the methods of which a leaderboard table ranks. A unit is ok when its
method ran (one of its metrics may still have failed on its own). A metric's value for a
group is the mean of its per-image values, or, for a set-level metric, its reduction of
the images' statistics (``stats``); rows of units that did not run never count.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from restorebench.core.metric import Metric

if TYPE_CHECKING:
    from pandas import DataFrame

BLOCK = ["task", "dataset", "degradation"]
GROUP = [*BLOCK, "method"]
ORACLE = "oracle_"


def scored(results: DataFrame) -> DataFrame:
    """The rows of units meant to be scored: ``skipped`` ones (nothing to score, e.g. a gray
    image for colorization) are left out of leaderboards, MLflow aggregates and compare."""
    return results[results["status"] != "skipped"] if len(results) else results


@cache
def metric_of(label: str) -> Metric:
    """The metric a results column is named by: a registered metric or a reference with
    parameters (``auc_rebal?prior=FILE``), ``oracle_<metric>`` (the same meaning), or, for a
    name nothing registers here (a plugin that is not installed), a descriptive placeholder
    that is shown but never ranked or gated."""
    from restorebench.core.build import build_metric
    from restorebench.core.refs import Ref
    from restorebench.core.registry import METRICS

    base = label[len(ORACLE) :] if label.startswith(ORACLE) else label
    if Ref.parse(base, what="metric").name in METRICS:
        return replace(build_metric(base), name=label)
    return Metric(label, _unknown, "?", "none", "not registered here (its plugin is not loaded): shown, not ranked")


def _unknown(*_: Any) -> float:
    raise ValueError("an unregistered metric cannot be computed")


def metric_order(results: DataFrame) -> list[str]:
    """The metric columns in the order each task's run scored them (its first unit's rows),
    tasks in name order: deterministic whatever order the shards landed in."""
    order: list[str] = []
    if results.empty:
        return order
    for _, rows in results.sort_values("unit_id", kind="stable").groupby("task", sort=True):
        first = rows[rows["unit_id"] == rows["unit_id"].iloc[0]]["metric"].dropna()
        seen = list(first) + sorted(set(rows["metric"].dropna()) - set(first))
        order += [m for m in seen if m not in order]
    return order


def unit_status(results: DataFrame) -> Any:
    """``unit_id -> True`` when the unit's method ran (any of its rows is ok)."""
    return results.assign(_ok=results["status"] == "ok").groupby("unit_id")["_ok"].any()


def group_info(results: DataFrame) -> DataFrame:
    """Per group: the method's kind, non_blind, params; images, failed units, runtime per
    image (ms, mean) and per megapixel (ms, over the ok units)."""
    import pandas as pd

    units = results.drop_duplicates("unit_id")
    units = units.assign(_ok=units["unit_id"].map(unit_status(results)))
    good = units[units["_ok"]].groupby(GROUP)
    info = units.groupby(GROUP).agg(
        kind=("method_kind", "first"),
        non_blind=("non_blind", "first"),
        params=("method_params", "first"),
        images=("image", "nunique"),
        failed=("_ok", lambda s: int((~s).sum())),
        dataset_check=("dataset_check", lambda s: next((str(v) for v in s if isinstance(v, str) and v), "")),
    )
    runtime = pd.DataFrame(
        {
            "runtime_ms_per_mp": 1e3 * good["runtime_s"].sum() / good["megapixels"].sum(),
            "runtime_ms": good["runtime_s"].mean() * 1e3,
        }
    )
    return info.join(runtime, how="left")


def metric_values(results: DataFrame) -> DataFrame:
    """Per group and metric: ``value`` (the group's number: the mean of per-image values, or
    a set-level metric's reduction), ``mean`` and ``median`` of the per-image values, ``n``,
    the images with a value, and ``goodness``, what ranks the group (larger is better, in the
    metric's units; NaN for a descriptive statistic): the mean of the images' goodness (for a
    target metric, minus the mean distance to the target, so that +50 and -50 are not
    "on target"), or the goodness of a set-level value. Only rows of ok units count."""
    import pandas as pd

    keys = [*GROUP, "metric"]
    columns = [*keys, "value", "mean", "median", "n", "goodness"]
    ok = results[(results["status"] == "ok") & results["value"].notna()]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    good = pd.Series(np.nan, index=ok.index)
    for label, rows in ok.groupby("metric", sort=False)["value"]:
        good[rows.index] = metric_of(label).goodness(rows.to_numpy(dtype=np.float64))
    grouped = ok.assign(_good=good).groupby(keys, sort=True)
    table = grouped["value"].agg(mean="mean", median="median", n="count").reset_index()
    table["value"] = table["mean"]
    table["goodness"] = grouped["_good"].mean().to_numpy()
    set_level = [m for m in table["metric"].unique() if metric_of(m).set_level]
    if set_level and "stats" in ok.columns:
        rows = ok[ok["metric"].isin(set_level)]
        reduced = {key: _reduce(metric_of(key[-1]), g["stats"]) for key, g in rows.groupby(keys, sort=True)}
        for i, key in zip(table.index, table[keys].itertuples(index=False, name=None)):
            value = reduced.get(key, np.nan)
            if np.isfinite(value):
                table.loc[i, ["value", "goodness"]] = [value, metric_of(key[-1]).goodness(value)]
    return table[columns]


def _reduce(metric: Metric, stats: Any) -> float:
    """A set-level metric's value over a group's rows; NaN when a row has no statistics
    (a table written before the metric was set-level: its mean is used instead)."""
    matrix = stats_matrix(stats)
    return float("nan") if matrix is None else metric.group_value(matrix)


def stats_matrix(stats: Any) -> np.ndarray | None:
    """A group's per-image statistics as one ``n x k`` array, or None when any row lacks them."""
    rows = list(stats)
    if not rows or any(s is None or (isinstance(s, float) and np.isnan(s)) for s in rows):
        return None
    return np.stack([np.asarray(s, dtype=np.float64) for s in rows])
