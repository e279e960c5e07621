"""The leaderboard as Markdown: one section per task, dataset and degradation.

The table itself is built once by :func:`restorebench.results.board.build_leaderboard`;
this module formats it. Each metric's header carries its direction (``↑``, ``↓``, ``→0``)
and unit (``psnr ↑ (dB)``), each section says what ranks it, and the footnote says what
every metric shown means and how it aggregates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from restorebench.core.metric import Metric
from restorebench.results.board import FIXED, PUBLISHED, Leaderboard
from restorebench.results.groups import ORACLE


def header(column: str, board: Leaderboard, table: Any = None) -> str:
    """A column's header: a metric's with its direction and unit, ``gap`` with the ranking metric's unit."""
    metric = board.metrics.get(column)
    if metric is not None:
        return metric.heading()
    if column == "gap" and table is not None and len(table):
        ranked = board.rank_metric(table["task"].iloc[0])
        if ranked is not None and ranked.unit:
            return f"gap ({ranked.unit})"
    return column


def digits(table: Any, column: str, board: Leaderboard) -> int:
    """Decimals of a metric column (and of ``gap``, as its ranking metric): 4 when every value is
    within [-1.5, 1.5] (SSIM, AuC, L1), else 2 (dB, colourfulness)."""
    if column == "gap" and len(table):
        ranked = board.rank_by.get(table["task"].iloc[0], "")
        column = ranked or column
    if column not in table:
        return 2
    values = [abs(v) for v in table[column] if isinstance(v, (int, float)) and math.isfinite(v)]
    return 4 if values and max(values) <= 1.5 else 2


def format_cell(value: Any, column: str, places: int = 2) -> str:
    """A leaderboard cell as the Markdown and HTML tables show it (``-`` for a missing value)."""
    if isinstance(value, bool):
        return "yes" if value else ""
    if value is None or (not isinstance(value, str) and _missing(value)):
        return "-"
    if isinstance(value, float):
        if column == "params":
            return f"{value:,.0f}"
        if column.startswith("runtime"):
            return f"{value:.1f}"
        return f"{value:.{places}f}"
    return str(value)


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def markdown_table(frame: Any, columns: Sequence[str], headers: Sequence[str] | None = None, places: Any = None) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency); ``places``: decimals per column."""
    places = places or {}
    head = "| " + " | ".join(headers or columns) + " |"
    rule = "|" + "|".join("---:" if frame[c].dtype.kind in "fi" else "---" for c in columns) + "|"
    body = [
        "| " + " | ".join(format_cell(row[c], c, places.get(c, 2)) for c in columns) + " |"
        for _, row in frame.iterrows()
    ]
    return "\n".join([head, rule, *body])


def block_table(table: Any, board: Leaderboard) -> str:
    """One (task, dataset, degradation) table in Markdown, headers with units and directions."""
    columns = shown_columns(table, board)
    places = {c: digits(table, c, board) for c in columns}
    return markdown_table(table, columns, [header(c, board, table) for c in columns], places)


def ranking_note(table: Any, board: Leaderboard) -> str:
    """What ranks a table, in words: ``Ranked by `psnr` (dB, higher is better)``."""
    metric = board.rank_metric(table["task"].iloc[0]) if len(table) else None
    if metric is None:
        return "Not ranked: no metric of this table has a direction (descriptive statistics only)."
    unit = f"{metric.unit}, " if metric.unit else ""
    how = "" if not metric.set_level else f"; {metric.aggregation_text()}"
    return (
        f"Ranked by `{metric.name}` ({unit}{metric.direction_text()}{how}); "
        f"`gap`: how far behind the best method, in `{metric.name}`."
    )


def metrics_legend(board: Leaderboard, metrics: Sequence[Metric] | None = None) -> list[str]:
    """One line per metric shown: its unit, direction and aggregation."""
    lines = []
    for m in metrics if metrics is not None else board.metrics.values():
        if m.name.startswith(ORACLE):  # the same meaning as its metric's; the footnote says what an oracle is
            continue
        unit = f"{m.unit}; " if m.unit else ""
        lines.append(f"- `{m.name}`: {unit}{m.direction_text()}; {m.aggregation_text()}.")
    return lines


def to_markdown(board: Leaderboard, *, title: str = "Leaderboard") -> str:
    """The leaderboard as Markdown: one section per task, dataset and degradation."""
    if board.empty:
        return f"# {title}\n\nNo results.\n"
    parts = [f"# {title}", ""]
    sources: list[str] = []
    for (_task, dataset, degradation), table in board.table.groupby(["task", "dataset", "degradation"], sort=True):
        parts += [f"## {_task} · {dataset} · {degradation}", ""]
        check = section_note(table)
        if check:
            parts += [check, ""]
        parts += [ranking_note(table, board), "", block_table(table, board), ""]
        sources += [s for s in table.get("published_source", []) if s and s not in sources]
    if sources:
        parts += ["Published numbers (`published`, `delta_published` = ours minus published):", ""]
        parts += [f"- {s}" for s in sources] + [""]
    parts += ["Metrics (↑ higher is better, ↓ lower is better, →x closer to x is better, no mark: descriptive):", ""]
    parts += metrics_legend(board) + [""]
    parts.append(
        "Scores on 8-bit outputs; `non_blind`: the method was given the true noise level; runtime: `restore` only, "
        "after a warm-up. `oracle_*`: the best of a method's samples per image, an upper bound that needs the "
        "ground truth to pick (not a result)."
    )
    return "\n".join(parts) + "\n"


NO_REFERENCE = (
    "**No reference:** these photos have no ground truth; each score looks at a method's output alone "
    "(it says how natural the output looks, not how faithful it is), and `non_blind` methods estimated "
    "the level from the photo unless the degradation gave it."
)


NO_REFERENCE_ORACLE = (
    " Here `oracle_*` is a method's best sample by the no-reference score itself: picked without any "
    "ground truth, so a real best-of-N result, not an upper bound."
)


def no_reference(degradation: str) -> bool:
    """Whether a group's photos have no reference: ``as_is`` takes only such photos."""
    return degradation == "as_is" or degradation.startswith("as_is?")


def section_note(table: Any) -> str:
    """What is known of the data a table was scored on: that it has no reference, or what a
    dataset card found of the copy ('' for other datasets)."""
    if any(no_reference(str(d)) for d in table.get("degradation", [])):
        oracles = [c for c in table.columns if str(c).startswith(ORACLE) and table[c].notna().any()]
        return NO_REFERENCE + (NO_REFERENCE_ORACLE if oracles else "")
    checks = [c for c in table.get("dataset_check", []) if isinstance(c, str) and c]
    if not checks:
        return ""
    warn = "**Not comparable with published numbers:** " if checks[0].startswith("differs") else ""
    return f"{warn}dataset card: {checks[0]}."


def shown_columns(table: Any, board: Leaderboard | None = None) -> list[str]:
    """One table's columns: the group keys left out (and the card check, said above the
    table, and the ranking metric, said in its note), the published ones only where a row
    has one, and metrics no row of it has (another task's, in a board of several) dropped,
    unless no metric has a value at all."""
    hidden = {"task", "dataset", "degradation", "dataset_check", "published_source", "rank_metric"}
    if "published" not in table or table["published"].isna().all():
        hidden |= set(PUBLISHED)
    columns = [c for c in table.columns if c not in hidden]
    metrics = [c for c in columns if c not in FIXED and c != "method" and c not in PUBLISHED]
    empty = {c for c in metrics if table[c].isna().all()}
    if len(empty) == len(metrics):
        empty = set()
    return [c for c in columns if c not in empty]
