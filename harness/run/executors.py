"""Executors: run batches of work units in-process or on Ray, yielding results as they land.

Both call :func:`restorebench.run.worker.run_batch`, so they compute bit-identical
numbers. :class:`LocalExecutor` runs in this process (debugging, small runs);
:class:`~restorebench.run.ray_executor.RayExecutor` on a local Ray runtime or a cluster.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from restorebench.core.errors import UserError
from restorebench.run.plan import MethodInfo
from restorebench.run.units import UnitResult, WorkUnit

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs batches of units; yields each batch's results as soon as it completes."""

    name: str

    def open(self) -> Executor:
        """Start or join what the executor runs on; returns the executor (building one does nothing)."""
        ...

    def parallelism(self) -> int: ...

    def execute(
        self, batches: Iterable[Sequence[WorkUnit]], methods: Mapping[str, MethodInfo]
    ) -> Iterator[list[UnitResult]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs every batch in this process, one after another (debugging, small runs).

    A method that crashes the interpreter (a segfault in native code) takes the run with it:
    a small watcher process, told which unit is running, says then which unit and method it
    was and that ``--executor ray`` isolates such crashes (Python's own traceback of the
    crash is printed too, by :mod:`faulthandler`).
    """

    name = "local"

    def __init__(self, resume_hint: str = "") -> None:
        self.resume_hint = resume_hint
        self._watcher: CrashWatcher | None = None

    def open(self) -> LocalExecutor:
        """Nothing to start: this process runs the batches (its crash watcher starts with them)."""
        return self

    def __enter__(self) -> LocalExecutor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def parallelism(self) -> int:
        return 1

    def execute(
        self, batches: Iterable[Sequence[WorkUnit]], methods: Mapping[str, MethodInfo]
    ) -> Iterator[list[UnitResult]]:
        from restorebench.run.worker import run_batch

        self._watcher = CrashWatcher.start()
        labels = {ref: info.label for ref, info in methods.items()}

        def running(unit: WorkUnit) -> None:
            self._watcher.tell(  # type: ignore[union-attr]
                f"{labels.get(unit.method, unit.method)} was restoring {unit.image.key} ({unit.dataset} · "
                f"{unit.degradation}; unit {unit.unit_id[:12]}){self.resume_hint}"
            )

        for batch in batches:
            yield run_batch(batch, num_threads=os.cpu_count() or 1, on_unit=running)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None


_WATCHER = r"""
import os, sys
last, buf = b"", b""
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    *lines, buf = (buf + chunk).split(b"\n")
    last = lines[-1] if lines else last
if last and last != b"done":
    sys.stderr.write(
        "error: the restorebench process ended abruptly (a crash in native code, or it was killed) while "
        + last.decode("utf-8", "replace")
        + "\n  hint: --executor local runs methods inside the driver, so a crash ends the run; --executor ray "
        "isolates it (that unit fails, the run goes on)\n"
    )
"""


class CrashWatcher:
    """A tiny process that reads "what is running" lines from a pipe and, when the pipe closes
    without a last ``done`` (the driver died), prints the last one with what to do."""

    def __init__(self, process, fd: int) -> None:
        self.process, self.fd = process, fd

    @classmethod
    def start(cls) -> CrashWatcher:
        import faulthandler
        import subprocess
        import sys

        if not faulthandler.is_enabled():
            faulthandler.enable()
        process = subprocess.Popen([sys.executable, "-S", "-c", _WATCHER], stdin=subprocess.PIPE, close_fds=True)
        return cls(process, process.stdin.fileno())

    def tell(self, line: str) -> None:
        try:
            os.write(self.fd, line.replace("\n", " ").encode() + b"\n")
        except OSError:  # the watcher is gone: nothing to tell
            pass

    def stop(self) -> None:
        import subprocess

        self.tell("done")
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired) as exc:  # never fail a finished run over its watcher
            log.debug("the crash watcher (pid %d) did not stop cleanly: %s", self.process.pid, exc)


def make_executor(
    name: str, *, address: str | None = None, num_cpus: int | None = None, resume_hint: str = ""
) -> Executor:
    """The executor called ``name`` (``ray`` or ``local``), not opened yet: its ``open()`` starts
    or joins Ray; ``resume_hint`` ends what the local executor says when its process dies (how to
    complete the run)."""
    if name == "local":
        if address:
            raise UserError("--address needs --executor ray")
        return LocalExecutor(resume_hint)
    if name == "ray":
        from restorebench.run.ray_executor import RayExecutor

        return RayExecutor(address, num_cpus=num_cpus)
    raise UserError(f"unknown executor {name!r}; valid choices: local, ray")


def close_in_background(executor: Executor) -> Callable[[], None]:
    """Close ``executor`` on a thread (a private Ray's shutdown waits ~0.3 s on its
    processes, time the driver spends compacting and logging instead); the function
    returned waits for it. A failure to close is logged: the results are already stored."""

    def close() -> None:
        try:
            executor.close()
        except Exception as exc:  # broad: whatever a shutdown raises is logged; the results are stored
            log.warning("could not shut the %s executor down cleanly: %s", executor.name, exc)

    thread = threading.Thread(target=close, name="restorebench-close-executor", daemon=True)
    thread.start()
    return thread.join
