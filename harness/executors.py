"""Executors: run batches of work units in-process or on Ray, yielding results as they land.

Both call :func:`harness.worker.run_batch`, so they compute bit-identical numbers. The
Ray executor starts a local Ray runtime when no address is given (``--address`` or
``RAY_ADDRESS`` point it at a cluster), retries tasks whose worker died, and records the
units of a batch that keeps failing as failed instead of stopping the run.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Protocol

from harness.errors import UserError
from harness.units import UnitResult, WorkUnit

log = logging.getLogger(__name__)

MAX_BATCH = 64


class Executor(Protocol):
    """Runs batches of units; yields each batch's results as soon as it completes."""

    name: str

    def parallelism(self) -> int: ...

    def execute(self, batches: Sequence[Sequence[WorkUnit]]) -> Iterator[list[UnitResult]]: ...

    def close(self) -> None: ...


def make_batches(units: Sequence[WorkUnit], parallelism: int) -> list[list[WorkUnit]]:
    """Cut units into batches: units of one image stay together where sizes allow.

    Aim for about four batches per worker so the tail of a run stays short, never more
    than ``MAX_BATCH`` units per batch so a lost worker loses little.
    """
    if not units:
        return []
    ordered = sorted(units, key=lambda u: (u.image.dataset, u.image.key, u.degradation, u.method))
    size = max(1, min(MAX_BATCH, math.ceil(len(ordered) / (4 * max(1, parallelism)))))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def _failed_batch(batch: Sequence[WorkUnit], message: str) -> list[UnitResult]:
    return [UnitResult(unit_id=u.unit_id, status="failed", error=f"{u.image.key}: {message}") for u in batch]


class LocalExecutor:
    """Runs every batch in this process, one after another (debugging, small runs)."""

    name = "local"

    def parallelism(self) -> int:
        return 1

    def execute(self, batches: Sequence[Sequence[WorkUnit]]) -> Iterator[list[UnitResult]]:
        from harness.worker import run_batch

        for batch in batches:
            yield run_batch(batch, num_threads=os.cpu_count() or 1)

    def close(self) -> None:
        pass


class RayExecutor:
    """Runs batches as Ray tasks, on a local runtime or the cluster at ``address``."""

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, max_retries: int = 3) -> None:
        import ray

        self._ray = ray
        self._started_here = False
        self.max_retries = max_retries
        if not ray.is_initialized():
            address = address or os.environ.get("RAY_ADDRESS") or None
            kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if address is None:
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(
                    f"cannot connect to the Ray cluster at {address!r}: {exc}",
                    hint="check --address / RAY_ADDRESS, or use --executor local",
                ) from None
            self._started_here = True
        self._remote = ray.remote(_run_batch_task)

    def parallelism(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def execute(self, batches: Sequence[Sequence[WorkUnit]]) -> Iterator[list[UnitResult]]:
        ray = self._ray
        pending: dict = {}
        queue = list(batches)[::-1]
        limit = 2 * self.parallelism()
        while queue or pending:
            while queue and len(pending) < limit:
                batch = queue.pop()
                cpus = _batch_cpus(batch)
                ref = self._remote.options(num_cpus=cpus, max_retries=self.max_retries).remote(batch, cpus)
                pending[ref] = batch
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                batch = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # the task failed after its retries (e.g. its worker died)
                    if len(batch) > 1:  # find the culprit: each unit on its own
                        log.warning("a batch of %d units failed on Ray (%s); retrying unit by unit", len(batch), exc)
                        queue.extend([u] for u in batch)
                        continue
                    reason = f"Ray task failed after {self.max_retries} retries: {type(exc).__name__}: {exc}"
                    yield _failed_batch(batch, reason.splitlines()[0])

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def _batch_cpus(batch: Sequence[WorkUnit]) -> float:
    return max(_method_cpus(u.method) for u in batch)


@lru_cache(maxsize=None)
def _method_cpus(ref: str) -> float:
    from harness.registry import build_method

    return type(build_method(ref)).resources.num_cpus


def _run_batch_task(batch: Sequence[WorkUnit], num_threads: float) -> list[UnitResult]:
    from harness.worker import run_batch

    return run_batch(batch, num_threads=max(1, int(num_threads)))


def make_executor(name: str, *, address: str | None = None, num_cpus: int | None = None) -> Executor:
    """The executor called ``name`` (``ray`` or ``local``)."""
    if name == "local":
        if address:
            raise UserError("--address needs --executor ray")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address, num_cpus=num_cpus)
    raise UserError(f"unknown executor {name!r}; valid choices: local, ray")
