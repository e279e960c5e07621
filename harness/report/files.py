"""Writing a run's report files: ``LEADERBOARD.md``, ``leaderboard.csv``, ``index.html`` + ``figures/``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError
from restorebench.report.leaderboard import to_markdown
from restorebench.results.board import Leaderboard, build_leaderboard

FORMATS = ("md", "csv", "html")


def write_report(
    results: Any,
    out: str | Path,
    formats: Sequence[str] = FORMATS,
    *,
    run_dir: str | Path | None = None,
    board: Leaderboard | None = None,
) -> list[Path]:
    """Write the leaderboard files to ``out``; returns their paths. ``board``: the results'
    leaderboard when the caller built it already (it is built once per run).

    ``html`` writes ``index.html`` (self-contained) and ``figures/``; its before/after
    grids read ``run_dir/samples`` (default: ``out``'s parent or ``out`` itself, whichever
    holds a ``samples/`` folder, as with the default ``RUN_DIR/report``).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise UserError(f"unknown report format(s) {', '.join(unknown)}; valid choices: {', '.join(FORMATS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    board = board if board is not None else build_leaderboard(results)
    written = []
    if "md" in formats:
        path = out / "LEADERBOARD.md"
        path.write_text(to_markdown(board))
        written.append(path)
    if "csv" in formats:
        path = out / "leaderboard.csv"
        board.table.to_csv(path, index=False, float_format="%.6g")
        written.append(path)
    if "html" in formats:
        from restorebench.report.html import write_html

        written.extend(write_html(board, out, run_dir=Path(run_dir) if run_dir else _find_run_dir(out)))
    return written


def _find_run_dir(out: Path) -> Path | None:
    """The run directory next to a report folder: the first of ``out.parent``, ``out`` with ``samples/``."""
    return next((d for d in (out.parent, out) if (d / "samples").is_dir()), None)
