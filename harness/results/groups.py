"""Groups of results: their keys, unit status, runtime, and each metric's value per group,
computed by queries over a :class:`~restorebench.results.dataset.ResultsSet` (out of core).

A group is one (task, dataset, degradation, method); a block is one (task, dataset,
degradation), the methods of which a leaderboard table ranks. A unit is ok when its
method ran (one of its metrics may still have failed on its own); ``skipped`` units (nothing
to score) count nowhere. A metric's value for a group is the mean of its per-image values,
or, for a set-level metric, its reduction of the images' statistics (``stats``; an additive
metric's are summed by the query, others fetched one group at a time); rows of units that
did not run never count.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from restorebench.core.metric import Metric

if TYPE_CHECKING:
    import duckdb
    from pandas import DataFrame

BLOCK = ["task", "dataset", "degradation"]
GROUP = [*BLOCK, "method"]
ORACLE = "oracle_"
KEYS = ", ".join(GROUP)


def scored(results: DataFrame) -> DataFrame:
    """The rows of units meant to be scored (a frame): ``skipped`` ones left out."""
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


def scored_view(con: duckdb.DuckDBPyConnection, results: str = "results") -> str:
    """The view ``scored`` of ``results``: every row of a unit meant to be scored."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW scored AS SELECT * FROM {results} WHERE status <> 'skipped'")
    return "scored"


def metric_order(con: duckdb.DuckDBPyConnection, view: str = "scored") -> list[str]:
    """The metric columns in the order the run scored them (each row's ``metric_index``, the
    suite's order, whose first ranks; rows of earlier versions, without it, by the position
    of the metric in its first unit's rows as written), tasks in name order."""
    rows = con.execute(
        f"""
        WITH first AS (SELECT task, min(unit_id) AS unit_id FROM {view} GROUP BY task)
        SELECT s.task, s.metric, min(s.metric_index) AS i, bool_and(first.unit_id IS NULL) AS late,
               min(s.filename) FILTER (WHERE first.unit_id IS NOT NULL) AS f,
               min(s.file_row_number) FILTER (WHERE first.unit_id IS NOT NULL) AS r
        FROM {view} s LEFT JOIN first ON s.task = first.task AND s.unit_id = first.unit_id
        GROUP BY s.task, s.metric
        ORDER BY s.task, i NULLS LAST, late, f, r, s.metric
        """
    ).fetchall()
    order: list[str] = []
    for _, metric, *_ in rows:
        if metric is not None and metric not in order:
            order.append(metric)
    return order


def _units(view: str) -> str:
    """One row per unit: its ``metric_index = 0`` row (every unit written by this version has
    one; its runtime is a number exactly when the unit's method ran), which needs no query that
    grows with the number of units; for rows of earlier versions, without ``metric_index``,
    the units are grouped by id."""
    return f"""
        SELECT unit_id, task, dataset, degradation, method, image, runtime_s, megapixels, method_kind AS kind,
               non_blind, method_params AS params, dataset_check, method_version, method_checkpoint, device, run_id,
               (runtime_s IS NOT NULL AND NOT isnan(runtime_s)) AS ok
        FROM {view} WHERE metric_index = 0
        UNION ALL
        SELECT unit_id, any_value(task), any_value(dataset), any_value(degradation), any_value(method),
               any_value(image), any_value(runtime_s), any_value(megapixels), any_value(method_kind),
               any_value(non_blind), any_value(method_params), max(nullif(dataset_check, '')),
               any_value(method_version), any_value(method_checkpoint), any_value(device), any_value(run_id),
               bool_or(status = 'ok')
        FROM {view} WHERE metric_index IS NULL GROUP BY unit_id"""


def summary(con: duckdb.DuckDBPyConnection, view: str = "scored") -> dict[str, Any]:
    """The run ids, the number of units and of units that failed (their method did not run)."""
    units, failed = con.execute(f"SELECT count(*), count(*) FILTER (WHERE NOT ok) FROM ({_units(view)})").fetchall()[0]
    runs = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT run_id FROM ({_units(view)}) WHERE run_id IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    return {"runs": runs, "units": int(units or 0), "failed": int(failed or 0)}


def group_info(con: duckdb.DuckDBPyConnection, view: str = "scored") -> DataFrame:
    """Per group: the method's kind, non_blind, params; images, failed units, runtime per
    image (ms, mean) and per megapixel (ms, over the ok units); and the tags a tracker
    shows (method version, checkpoints, device)."""
    return con.execute(
        f"""
        SELECT {KEYS}, any_value(kind) AS kind, any_value(non_blind) AS non_blind, any_value(params) AS params,
               count(*) AS images, count(*) FILTER (WHERE NOT ok) AS failed,
               coalesce(max(nullif(dataset_check, '')), '') AS dataset_check,
               1e3 * sum(runtime_s) FILTER (WHERE ok) / sum(megapixels) FILTER (WHERE ok) AS runtime_ms_per_mp,
               1e3 * avg(runtime_s) FILTER (WHERE ok) AS runtime_ms,
               any_value(method_version) AS method_version,
               coalesce(any_value(method_checkpoint), '') AS method_checkpoint,
               coalesce(any_value(device), '') AS device
        FROM ({_units(view)}) GROUP BY {KEYS} ORDER BY {KEYS}
        """
    ).df()


def metric_values(con: duckdb.DuckDBPyConnection, labels: list[str], view: str = "scored") -> DataFrame:
    """Per group and metric: ``value`` (the group's number: the mean of per-image values, or
    a set-level metric's reduction), ``mean`` of the per-image values (their median:
    :func:`metric_medians`, a sorted pass of its own), ``n``,
    the images with a value, and ``goodness``, what ranks the group (larger is better, in the
    metric's units; NaN for a descriptive statistic): the mean of the images' goodness (for a
    target metric, minus the mean distance to the target, so that +50 and -50 are not
    "on target"), or the goodness of a set-level value. Only rows of ok units count."""
    import pandas as pd

    meta = pd.DataFrame(
        [(m, metric_of(m).direction, metric_of(m).target) for m in labels],
        columns=["metric", "direction", "target"],
    ).astype({"target": float})
    con.register("metric_meta", meta)
    ok = f"FROM {view} WHERE status = 'ok' AND value IS NOT NULL AND NOT isnan(value)"
    table = con.execute(
        f"""
        SELECT {KEYS}, metric, avg(value) AS mean, count(value) AS n,
               avg(CASE direction WHEN 'higher' THEN value WHEN 'lower' THEN -value
                                  WHEN 'target' THEN -abs(value - target) END) AS goodness
        FROM ({ok}) JOIN metric_meta USING (metric)
        GROUP BY {KEYS}, metric ORDER BY {KEYS}, metric
        """
    ).df()
    table["value"] = table["mean"]
    for label in [m for m in labels if metric_of(m).set_level]:
        for key, value in _set_values(con, metric_of(label), view).items():
            hit = (table[[*GROUP, "metric"]] == [*key, label]).all(axis=1)
            table.loc[hit, ["value", "goodness"]] = [value, metric_of(label).goodness(value)]
    return table[[*GROUP, "metric", "value", "mean", "n", "goodness"]]


def metric_medians(results: Any, values: DataFrame) -> DataFrame:
    """The median of each group's per-image values (``values``: :func:`metric_values`' table),
    from one pass sorted out of core; what MLflow child runs log beside the mean."""
    from restorebench.results.dataset import connect

    table = values.sort_values([*GROUP, "metric"]).reset_index(drop=True)
    con = connect()
    try:
        view = scored_view(con, results.view(con))
        rows = f"FROM {view} WHERE status = 'ok' AND value IS NOT NULL AND NOT isnan(value)"
        return table[[*GROUP, "metric"]].assign(median=_medians(con, rows, table))
    finally:
        con.close()


def _medians(con: duckdb.DuckDBPyConnection, rows: str, table: DataFrame) -> np.ndarray:
    """The median of each group's values (``table``: the groups, in key order, with ``n``),
    from one pass sorted by the engine (out of core) and streamed in batches: only the values
    at each group's middle positions are kept."""
    counts = table["n"].to_numpy(dtype=np.int64)
    if not len(counts):
        return np.zeros(0)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    lows, highs = starts + (counts - 1) // 2, starts + counts // 2
    wanted = np.unique(np.concatenate([lows, highs]))
    found = np.empty(len(wanted))
    offset = 0
    threads = con.execute("SELECT current_setting('threads')").fetchall()[0][0]
    con.execute("SET threads = 1")  # an external sort in a small memory limit needs one thread's worth
    try:
        reader = con.sql(f"SELECT value {rows} ORDER BY {KEYS}, metric, value").to_arrow_reader(1 << 16)
        for batch in reader:
            values = batch.column(0).to_numpy(zero_copy_only=False)
            hit = (wanted >= offset) & (wanted < offset + len(values))
            found[hit] = values[wanted[hit] - offset]
            offset += len(values)
    finally:
        con.execute(f"SET threads = {threads}")
    at = dict(zip(wanted.tolist(), found.tolist()))
    return np.array([(at[lo] + at[hi]) / 2 for lo, hi in zip(lows.tolist(), highs.tolist())])


def _set_values(con: duckdb.DuckDBPyConnection, metric: Metric, view: str) -> dict[tuple, float]:
    """A set-level metric's value per group, from the ok rows' statistics. Additive metrics'
    statistics are summed by the query (elementwise); others are fetched group by group. A
    group with a row that has no statistics (a table written before the metric was set-level)
    is left out: its mean stands."""
    rows = f"FROM {view} WHERE metric = ? AND status = 'ok' AND value IS NOT NULL AND NOT isnan(value)"
    complete = {
        tuple(r[:4])
        for r in con.execute(
            f"SELECT {KEYS} {rows} GROUP BY {KEYS} HAVING count(stats) = count(*)", [metric.name]
        ).fetchall()
    }
    values: dict[tuple, float] = {}
    if metric.additive:
        sums = con.execute(
            f"SELECT {KEYS}, i, sum(x) FROM (SELECT {KEYS}, unnest(stats) AS x, generate_subscripts(stats, 1) AS i "
            f"{rows}) GROUP BY ALL ORDER BY {KEYS}, i",
            [metric.name],
        ).fetchall()
        totals: dict[tuple, list[float]] = {}
        for *key, _, total in sums:
            totals.setdefault(tuple(key), []).append(total)
        for key, total in totals.items():
            if key in complete:
                values[key] = metric.group_value(np.asarray(total, dtype=np.float64)[None, :])
        return values
    for key in sorted(complete):
        where = " AND ".join(f"{k} = ?" for k in GROUP)
        stats = con.execute(f"SELECT stats {rows} AND {where} ORDER BY image", [metric.name, *key]).fetchall()
        values[key] = metric.group_value(np.stack([np.asarray(s[0], dtype=np.float64) for s in stats]))
    return values


def stats_matrix(stats: Any) -> np.ndarray | None:
    """A group's per-image statistics as one ``n x k`` array, or None when any row lacks them."""
    rows = list(stats)
    if not rows or any(s is None or (isinstance(s, float) and np.isnan(s)) for s in rows):
        return None
    return np.stack([np.asarray(s, dtype=np.float64) for s in rows])


def image_values(results: Any, wanted: DataFrame) -> DataFrame:
    """Each method's value of ``metric`` on given images (``wanted``: columns task, dataset,
    degradation, image, metric), ok rows only, in one query: the sample labels of a report."""
    import pandas as pd

    from restorebench.results.dataset import connect

    if results is None or not len(wanted):
        return pd.DataFrame(columns=[*BLOCK, "image", "metric", "method", "value"])
    con = connect()
    try:
        view = results.view(con)
        con.register("wanted", wanted)
        return con.execute(
            f"SELECT r.task, r.dataset, r.degradation, r.image, r.metric, r.method, r.value FROM {view} r "
            "JOIN wanted w USING (task, dataset, degradation, image, metric) "
            "WHERE r.status = 'ok' AND r.value IS NOT NULL AND NOT isnan(r.value)"
        ).df()
    finally:
        con.close()


def per_image_tables(results: Any, groups: DataFrame, labels: list[str], folder: Any) -> dict[tuple, Any]:
    """One CSV per group (``groups``: its key columns) of the per-image table: image, its
    unit's status, errors and runtime, then one column per metric (``labels``), written in one
    pass over the results; returns each group's file (groups without rows have none)."""
    from pathlib import Path

    from restorebench.results.dataset import _quoted, connect

    folder = Path(folder)
    keyed = groups[GROUP].reset_index(drop=True).assign(gid=lambda g: range(len(g)))
    columns = ", ".join(
        f"max(value) FILTER (WHERE metric = '{_quoted(m)}') AS \"{m.replace(chr(34), chr(39))}\"" for m in labels
    )
    con = connect()
    try:
        view = results.view(con)
        con.register("groups", keyed)
        con.execute(
            f"COPY (SELECT gid, image, CASE WHEN bool_or(status = 'ok') THEN 'ok' ELSE 'failed' END AS status, "
            "coalesce(string_agg(DISTINCT nullif(error, ''), '; '), '') AS error, any_value(runtime_s) AS runtime_s"
            f"{', ' + columns if columns else ''} FROM {view} JOIN groups USING ({KEYS}) WHERE status <> 'skipped' "
            f"GROUP BY gid, image ORDER BY gid, image) TO '{_quoted(str(folder))}' "
            "(FORMAT csv, HEADER, PARTITION_BY (gid), OVERWRITE_OR_IGNORE)"
        )
    finally:
        con.close()
    found = {}
    for gid, key in enumerate(keyed[GROUP].itertuples(index=False, name=None)):
        files = sorted((folder / f"gid={gid}").glob("*.csv"))
        if files:
            found[tuple(key)] = files[0]
    return found
