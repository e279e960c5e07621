"""What the command line shows: the progress bar and run summaries."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar() -> Iterator[Callable[..., None]]:
    """Progress of a run, driven by ``update(done, total, failed)`` calls: a rich bar on a
    terminal, else (CI logs, Ray Job logs) :class:`ProgressLines` on stderr."""
    import sys

    if not sys.stderr.isatty():
        yield ProgressLines()
        return
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

    def update(done: int, total: int, failed: int = 0) -> None:
        nonlocal task_id
        if task_id is None:
            task_id = progress.add_task("units", total=total)
        progress.update(task_id, completed=done, total=total)

    with progress:
        yield update


class RateGate:
    """True at most once every ``every_s`` seconds or each ``step`` (a fraction) of the total,
    and at the end: when a progress line is due in a log (CI, Ray Job logs)."""

    def __init__(self, *, every_s: float = 10.0, step: float = 0.05, clock: Any = None) -> None:
        import time

        self.every_s, self.step = every_s, step
        self.clock = clock or time.monotonic
        self.last_time = -float("inf")
        self.last_done = -1

    def __call__(self, done: int, total: int) -> bool:
        now = self.clock()
        due = now - self.last_time >= self.every_s or done - self.last_done >= max(1, self.step * total)
        if done == self.last_done or not (due or done >= total):
            return False
        self.last_time, self.last_done = now, done
        return True


class ProgressLines:
    """One progress line at a bounded rate (every ``every_s`` seconds or ``step`` of the
    total, and at the end): units done, failed, rate and ETA."""

    def __init__(self, *, every_s: float = 10.0, step: float = 0.05, stream: Any = None, clock: Any = None) -> None:
        import sys

        self.gate = RateGate(every_s=every_s, step=step, clock=clock)
        self.stream = stream or sys.stderr
        self.started = self.gate.clock()
        self.first: int | None = None

    def __call__(self, done: int, total: int, failed: int = 0) -> None:
        if self.first is None:
            self.first = done  # resumed units do not count towards the rate
        if not self.gate(done, total):
            return
        elapsed = self.gate.clock() - self.started
        rate = (done - self.first) / elapsed if elapsed > 0 else 0.0
        eta = f", ETA {duration(max(total - done, 0) / rate)}" if rate > 0 and done < total else ""
        pct = 100 * done / total if total else 100.0
        print(
            f"units {done}/{total} ({pct:.0f}%), {failed} failed, {rate:.2g} units/s, {duration(elapsed)} elapsed{eta}",
            file=self.stream,
            flush=True,
        )


class TrainingLines:
    """``restorebench train``'s progress: every validation's line (:func:`training_line`), and
    between them a line at a bounded rate (as :class:`ProgressLines`): the step, the mean
    loss since the last line, steps per second, the last validation PSNR and the ETA."""

    def __init__(
        self, steps: int, *, every_s: float = 10.0, step: float = 0.05, stream: Any = None, clock: Any = None
    ) -> None:
        import sys

        self.steps = steps
        self.gate = RateGate(every_s=every_s, step=step, clock=clock)
        self.stream = stream or sys.stderr
        self.loss, self.count = 0.0, 0
        self.val_psnr: float | None = None
        self.validated_at = 0

    def step(self, step: int, loss: float, elapsed: float) -> None:
        """After each training step (``elapsed``: seconds since training began)."""
        self.loss, self.count = self.loss + loss, self.count + 1
        if step == self.validated_at or not self.gate(step, self.steps):
            return
        rate = step / elapsed if elapsed > 0 else 0.0
        val = f", val_psnr {self.val_psnr:.2f} dB" if self.val_psnr is not None else ""
        eta = f", ETA {duration((self.steps - step) / rate)}" if rate > 0 and step < self.steps else ""
        print(
            f"step {step}/{self.steps} ({100 * step / self.steps:.0f}%): loss {self.loss / self.count:.4g}, "
            f"{rate:.2g} steps/s{val}, {duration(elapsed)} elapsed{eta}",
            file=self.stream,
            flush=True,
        )
        self.loss, self.count = 0.0, 0

    def validation(self, step: int, record: dict[str, float]) -> None:
        """After a validation (``record``: the loss terms since the last, val_psnr, lr, seconds)."""
        self.val_psnr, self.validated_at = record["val_psnr"], step
        self.loss, self.count = 0.0, 0
        print(training_line(step, self.steps, record), file=self.stream, flush=True)


def duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``3700`` -> ``1h01m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def training_line(step: int, steps: int, record: dict[str, float]) -> str:
    """A ``restorebench train`` progress line: step, loss terms, validation PSNR, ETA."""
    terms = ", ".join(f"{k} {v:.4g}" for k, v in record.items() if k not in ("val_psnr", "lr", "seconds"))
    elapsed = record.get("seconds", 0.0)
    eta = f", ETA {duration(elapsed / step * (steps - step))}" if 0 < step < steps else ""
    return (
        f"step {step}/{steps}: {terms}, val_psnr {record['val_psnr']:.2f} dB, lr {record.get('lr', 0):.2g}, "
        f"{duration(elapsed)} elapsed{eta}"
    )


def grouped_errors(errors: list[str]) -> list[tuple[str, int]]:
    """Distinct error messages in first-seen order, with how many units gave each.

    A bad image fails once per method; its message (which names the image, not the
    method) should be printed once, not once per method.
    """
    from collections import Counter

    return list(Counter(errors).items())  # a dict: insertion (first-seen) order


def print_run_summary(summary: Any) -> None:
    """The leaderboard (compact) and where everything went."""
    from dataclasses import replace

    from restorebench.report.leaderboard import to_markdown

    board = summary.board
    compact = board.table.drop(columns=["runtime_ms", "images", "failed", "kind"], errors="ignore")
    print(to_markdown(replace(board, table=compact), title=f"Leaderboard ({summary.location})"))
    skipped = getattr(summary, "skipped", [])
    skipped_count = getattr(summary, "skipped_count", len(skipped))
    print(
        f"units: {summary.units} ({summary.computed} computed, {summary.from_cache} from cache, "
        f"{summary.resumed} resumed, {summary.failed} failed"
        + (f", {skipped_count} skipped" if skipped_count else "")
        + f") in {summary.wall_s:.1f} s"
    )
    for label, messages in (("failed", summary.errors), ("skipped", skipped)):
        grouped = grouped_errors(messages)
        for message, count in grouped[:10]:
            print(f"  {label}: {message}" + (f"  ({count} units)" if count > 1 else ""))
        if len(grouped) > 10:
            print(f"  ... and {len(grouped) - 10} more (see results.parquet, column 'error')")
    print(f"run directory: {summary.location}  (restorebench report {summary.location})")
    if summary.tracking_uri and summary.tracking_error is None:
        print(f"MLflow: {summary.tracking_uri}  parent run {summary.mlflow_run_id}")
        print(f"  view: {mlflow_view_hint(summary.tracking_uri)}")
    elif summary.tracking_error:
        print(f"MLflow: not logged ({summary.tracking_error}); results are stored: restorebench log {summary.location}")


def mlflow_view_hint(uri: str) -> str:
    """How to look at a tracking store: start the UI on a local store, open a server's page."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri.rstrip('/')} in a browser"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1"
