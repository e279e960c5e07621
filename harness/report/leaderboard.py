"""Leaderboards from a results table: per task, dataset and degradation, methods ranked.

Every number in a table comes from one protocol: rows are grouped by metric version
too, and a table never mixes them. :mod:`restorebench.report.files` writes them as
Markdown, CSV and a self-contained HTML page (:mod:`restorebench.report.html`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

METRIC_ORDER = ["psnr", "ssim", "psnr_y", "ssim_y"]


def rank_metric(task: str) -> str:
    """The metric a task's leaderboard is ranked by: its first default metric (psnr if unknown)."""
    from restorebench.core.registry import TASKS

    return TASKS.get(task).metrics[0] if task in TASKS else "psnr"


def scored(results: Any) -> Any:
    """The rows of units meant to be scored: ``skipped`` ones (nothing to score, e.g. a gray
    image for colorization) left out of leaderboards, MLflow aggregates and compare."""
    return results[results["status"] != "skipped"] if len(results) else results


def leaderboard(results: Any, *, rank_by: str | None = None) -> Any:
    """One row per (task, dataset, degradation, method): mean metrics, runtime, rank, gap.

    Methods are ranked by ``rank_by``, by default each task's first metric (``psnr_y``
    for super-resolution); ``gap_db`` is the distance to the best in that metric.
    """
    import pandas as pd

    results = scored(results)
    if results.empty:
        return pd.DataFrame()
    keys = ["task", "dataset", "degradation", "method"]
    ok = results[results["status"] == "ok"]
    # A unit is ok when its method ran (one of its metrics may still have failed on its own).
    unit_ok = results.assign(_ok=results["status"] == "ok").groupby("unit_id")["_ok"].any()
    units = results.drop_duplicates("unit_id").assign(_ok=lambda u: u["unit_id"].map(unit_ok))
    names = sorted(results["metric"].dropna().unique())
    means = ok.pivot_table(index=keys, columns="metric", values="value", aggfunc="mean") if len(ok) else None
    good = units[units["_ok"]].groupby(keys)
    info = units.groupby(keys).agg(
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
    table = info.join(runtime, how="left")
    if means is not None:
        table = table.join(means, how="left")
    table = table.reset_index()
    for metric in names:  # a metric with no ok value still gets its (empty) column
        if metric not in table.columns:
            table[metric] = float("nan")
    metric_cols = [m for m in METRIC_ORDER if m in names] + [c for c in names if c not in METRIC_ORDER]
    ranking = table.apply(lambda row: row.get(rank_by or rank_metric(row["task"]), float("nan")), axis=1)
    group = ranking.groupby([table[k] for k in keys[:3]])
    # Methods without a score (every unit failed) rank last in their group.
    table["rank"] = group.rank(ascending=False, method="min").fillna(group.transform("size")).astype(int)
    table["gap_db"] = ranking - group.transform("max")
    table = table.sort_values(keys[:3] + ["rank", "method"]).reset_index(drop=True)
    table = _with_published(table, results, keys)
    columns = (
        ["rank", "kind", "non_blind", "params"]
        + metric_cols
        + ["gap_db", *PUBLISHED, "runtime_ms", "runtime_ms_per_mp", "images", "failed", "dataset_check"]
    )
    return table[keys + columns]


PUBLISHED = ("published_metric", "published", "delta_published", "published_source")


def published_values(rows: Any) -> dict[str, Any]:
    """The published number beside one group's rows (task, dataset, degradation, method):
    the metric (the task's earliest with a published value), the value, ours minus it, its
    source. Empty when no row has one."""
    if "published" not in rows.columns:
        return {}
    has = rows[rows["published"].notna()]
    if has.empty:
        return {}
    from restorebench.core.registry import TASKS

    task = rows["task"].iloc[0]
    order = list(TASKS.get(task).metrics) if task in TASKS else []
    metrics = sorted(has["metric"].unique(), key=lambda m: (order.index(m) if m in order else len(order), m))
    metric = metrics[0]
    first = has[has["metric"] == metric].iloc[0]
    ours = rows[(rows["metric"] == metric) & (rows["status"] == "ok")]["value"].mean()
    value = float(first["published"])
    return {
        "published_metric": metric,
        "published": value,
        "delta_published": float(ours) - value,
        "published_source": str(first["published_source"]),
    }


def _with_published(table: Any, results: Any, keys: list[str]) -> Any:
    """The leaderboard with the published columns (NaN/empty where nothing is published)."""
    import pandas as pd

    found = {key: published_values(group) for key, group in results.groupby(keys) if "published" in group}
    frame = pd.DataFrame([{**dict(zip(keys, k)), **v} for k, v in found.items() if v], columns=[*keys, *PUBLISHED])
    out = table.merge(frame, on=keys, how="left")
    out["published_metric"] = out["published_metric"].fillna("")
    out["published_source"] = out["published_source"].fillna("")
    return out.astype({"published": float, "delta_published": float})


def _fmt(value: Any, column: str) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if column == "params":
            return f"{value:,.0f}"
        if column.startswith("ssim"):
            return f"{value:.4f}"
        if column.startswith("runtime"):
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def format_cell(value: Any, column: str) -> str:
    """A leaderboard cell as the Markdown and HTML tables show it (``-`` for NaN)."""
    return _fmt(value, column)


def markdown_table(frame: Any, columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---:" if frame[c].dtype.kind in "fi" else "---" for c in columns) + "|"
    body = ["| " + " | ".join(_fmt(row[c], c) for c in columns) + " |" for _, row in frame.iterrows()]
    return "\n".join([head, rule, *body])


def to_markdown(board: Any, *, title: str = "Leaderboard") -> str:
    """The leaderboard as Markdown: one section per task, dataset and degradation."""
    if board.empty:
        return f"# {title}\n\nNo results.\n"
    parts = [f"# {title}", ""]
    sources: list[str] = []
    for (task, dataset, degradation), table in board.groupby(["task", "dataset", "degradation"], sort=True):
        parts += [f"## {task} · {dataset} · {degradation}", ""]
        check = section_note(table)
        if check:
            parts += [check, ""]
        parts += [markdown_table(table, shown_columns(table)), ""]
        sources += [s for s in table.get("published_source", []) if s and s not in sources]
    if sources:
        parts += ["Published numbers (`published`, `delta_published` = ours minus published):", ""]
        parts += [f"- {s}" for s in sources] + [""]
    parts.append(
        "Means over images; PSNR in dB on 8-bit outputs; `gap_db`: behind the best method in the ranking metric (the task's first, e.g. psnr_y for superres); "
        "`non_blind`: the method was given the true noise level; runtime: `restore` only, after a warm-up. "
        "`oracle_*`: the best of a method's samples per image, an upper bound that needs the ground truth to pick (not a result)."
    )
    return "\n".join(parts) + "\n"


FIXED = ("rank", "kind", "non_blind", "params", "gap_db", "runtime_ms", "runtime_ms_per_mp", "images", "failed")


def section_note(table: Any) -> str:
    """What a dataset card found of the copy a table was scored on ('' for other datasets)."""
    checks = [c for c in table.get("dataset_check", []) if isinstance(c, str) and c]
    if not checks:
        return ""
    warn = "**Not comparable with published numbers:** " if checks[0].startswith("differs") else ""
    return f"{warn}dataset card: {checks[0]}."


def shown_columns(table: Any) -> list[str]:
    """One table's columns: the group keys left out (and the card check, said above the
    table), the published ones only where a row has one, and metrics no row of it has
    (another task's, in a board of several) dropped, unless no metric has a value at all."""
    hidden = {"task", "dataset", "degradation", "dataset_check", "published_source"}
    if "published" not in table or table["published"].isna().all():
        hidden |= set(PUBLISHED)
    columns = [c for c in table.columns if c not in hidden]
    metrics = [c for c in columns if c not in FIXED and c != "method" and c not in PUBLISHED]
    empty = {c for c in metrics if table[c].isna().all()}
    if len(empty) == len(metrics):
        empty = set()
    return [c for c in columns if c not in empty]
