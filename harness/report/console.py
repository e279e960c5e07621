"""What the command line shows: the progress bar, run summaries and listings."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr, driven by ``update(done, total)`` calls."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("units"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task_id = None

    def update(done: int, total: int) -> None:
        nonlocal task_id
        if task_id is None:
            task_id = progress.add_task("units", total=total)
        progress.update(task_id, completed=done, total=total)

    with progress:
        yield update


def grouped_errors(errors: list[str]) -> list[tuple[str, int]]:
    """Distinct error messages in first-seen order, with how many units gave each.

    A bad image fails once per method; its message (which names the image, not the
    method) should be printed once, not once per method.
    """
    from collections import Counter

    return list(Counter(errors).items())  # a dict: insertion (first-seen) order


def print_run_summary(summary: Any) -> None:
    """The leaderboard (compact) and where everything went."""
    from restorebench.report.leaderboard import leaderboard, to_markdown

    board = leaderboard(summary.results)
    compact = board.drop(
        columns=[c for c in ("runtime_ms", "images", "failed", "kind") if c in board.columns], errors="ignore"
    )
    print(to_markdown(compact, title=f"Leaderboard ({summary.run_dir})"))
    skipped = getattr(summary, "skipped", [])
    print(
        f"units: {summary.units} ({summary.computed} computed, {summary.from_cache} from cache, "
        f"{summary.resumed} resumed, {summary.failed} failed"
        + (f", {len(skipped)} skipped" if skipped else "")
        + f") in {summary.wall_s:.1f} s"
    )
    for label, messages in (("failed", summary.errors), ("skipped", skipped)):
        grouped = grouped_errors(messages)
        for message, count in grouped[:10]:
            print(f"  {label}: {message}" + (f"  ({count} units)" if count > 1 else ""))
        if len(grouped) > 10:
            print(f"  ... and {len(grouped) - 10} more (see results.parquet, column 'error')")
    print(f"run directory: {summary.run_dir}  (restorebench report {summary.run_dir})")
    if summary.tracking_uri and summary.tracking_error is None:
        print(f"MLflow: {summary.tracking_uri}  parent run {summary.mlflow_run_id}")
        print(f"  view: {mlflow_view_hint(summary.tracking_uri)}")
    elif summary.tracking_error:
        print(f"MLflow: not logged ({summary.tracking_error}); results are stored: restorebench log {summary.run_dir}")


def mlflow_view_hint(uri: str) -> str:
    """How to look at a tracking store: start the UI on a local store, open a server's page."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')} in a browser"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1"
