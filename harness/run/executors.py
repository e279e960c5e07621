"""Executors: run batches of work units in-process or on Ray, yielding results as they land.

Both call :func:`restorebench.run.worker.run_batch`, so they compute bit-identical
numbers. :class:`LocalExecutor` runs in this process (debugging, small runs);
:class:`~restorebench.run.ray_executor.RayExecutor` on a local Ray runtime or a cluster.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from restorebench.core.errors import UserError
from restorebench.run.plan import MethodInfo
from restorebench.run.units import UnitResult, WorkUnit

log = logging.getLogger(__name__)


class Executor(Protocol):
    """Runs batches of units; yields each batch's results as soon as it completes."""

    name: str

    def parallelism(self) -> int: ...

    def execute(
        self, batches: Sequence[Sequence[WorkUnit]], methods: Mapping[str, MethodInfo]
    ) -> Iterator[list[UnitResult]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Runs every batch in this process, one after another (debugging, small runs)."""

    name = "local"

    def parallelism(self) -> int:
        return 1

    def execute(
        self, batches: Sequence[Sequence[WorkUnit]], methods: Mapping[str, MethodInfo]
    ) -> Iterator[list[UnitResult]]:
        from restorebench.run.worker import run_batch

        for batch in batches:
            yield run_batch(batch, num_threads=os.cpu_count() or 1)

    def close(self) -> None:
        pass


def make_executor(name: str, *, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """The executor called ``name`` (``ray`` or ``local``)."""
    if name == "local":
        if address:
            raise UserError("--address needs --executor ray")
        return LocalExecutor()
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
        except Exception as exc:
            log.warning("could not shut the %s executor down cleanly: %s", executor.name, exc)

    thread = threading.Thread(target=close, name="restorebench-close-executor", daemon=True)
    thread.start()
    return thread.join
