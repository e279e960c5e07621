"""The Ray executor: batches as Ray tasks, each neural method in actors that hold its weights.

It starts a local Ray runtime when no address is given (``--address`` or ``RAY_ADDRESS``
point it at a cluster), retries tasks whose worker died, and records the units of a
batch that keeps failing as failed instead of stopping the run. Ray is imported here, in
run/ray_runtime.py (the private runtime) and run/minimal_agent.py (its dashboard agent), and
nowhere else (tests/core/test_import_rules.py).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from restorebench.core.interfaces import Resources
from restorebench.run.batches import failed_batch
from restorebench.run.plan import MethodInfo
from restorebench.run.units import UnitResult, WorkUnit

log = logging.getLogger(__name__)


class RayExecutor:
    """Runs batches on a local Ray runtime or the cluster at ``address``.

    Batches of classical methods run as tasks; each neural method runs in actors that
    load its weights once and take its batches (see :func:`make_batches`). Building one
    starts nothing; :meth:`open` (or ``with``) starts or joins Ray, :meth:`close` shuts
    down a runtime it started:

    >>> with RayExecutor(num_cpus=4) as executor:  # doctest: +SKIP
    ...     for results in executor.execute(batches, plan.methods):
    ...         store(results)
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None, max_retries: int = 3) -> None:
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self._ray: Any = None
        self._started_here = False

    def open(self) -> RayExecutor:
        """Start a local Ray runtime, or join the one at ``address`` (or ``RAY_ADDRESS``); returns ``self``."""
        if self._ray is not None:
            return self
        import ray

        from restorebench.run.ray_runtime import connect

        self._started_here = connect(self.address, num_cpus=self.num_cpus)
        self._task = ray.remote(_run_batch_task)
        self._actor_cls = ray.remote(_MethodActor)
        self._ray = ray
        return self

    def __enter__(self) -> RayExecutor:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _opened(self) -> Any:
        """The ``ray`` module, once :meth:`open` has connected to it."""
        if self._ray is None:
            raise RuntimeError(
                "the Ray executor is not open: call open() first, or use `with RayExecutor(...) as executor:`"
            )
        return self._ray

    def parallelism(self) -> int:
        return max(1, int(self._opened().cluster_resources().get("CPU", 1)))

    def execute(
        self, batches: Iterable[Sequence[WorkUnit]], methods: Mapping[str, MethodInfo]
    ) -> Iterator[list[UnitResult]]:
        """Run a stream of batches: classical ones as tasks, a neural method's on its actors.

        The stream is read as work is needed, at most :data:`LOOKAHEAD` batches per worker
        ahead, so a run of a million units holds a bounded number of them; a method's actors
        are killed once its last batch is done and the stream is spent (their CPUs and GPUs
        go back to the rest of the run)."""
        ray = self._opened()
        source = iter(batches)
        spent = False
        tasks: deque[Sequence[WorkUnit]] = deque()
        pools: dict[str, _ActorPool] = {}
        failed: list[list[UnitResult]] = []
        pending: dict = {}
        limit = 2 * self.parallelism()
        ahead = LOOKAHEAD * self.parallelism()
        while True:
            while not spent and len(tasks) + sum(len(p.queue) for p in pools.values()) < ahead:
                batch = next(source, None)
                if batch is None:
                    spent = True
                    break
                ref = _neural_method(batch, methods)
                if ref is None:
                    tasks.append(batch)
                    continue
                pool = pools.get(ref) or pools.setdefault(ref, _ActorPool(self, ref, methods[ref].resources))
                problem = pool.unschedulable()
                if problem:
                    failed.append(failed_batch(batch, problem))
                else:
                    pool.queue.append(batch)
            yield from failed
            failed.clear()
            while tasks and sum(a is None for _, a in pending.values()) < limit:
                batch = tasks.popleft()
                cpus = max(methods[u.method].resources.num_cpus for u in batch)
                ref = self._task.options(num_cpus=cpus, max_retries=self.max_retries).remote(batch, cpus)
                pending[ref] = (batch, None)
            for pool in pools.values():
                for actor, batch in pool.assign():
                    pending[actor.run.remote(batch)] = (batch, (pool, actor))
                if spent:
                    pool.release_if_done()
            if not pending:
                if spent and not tasks and not any(p.queue for p in pools.values()):
                    return
                continue
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                batch, owner = pending.pop(ref)
                try:
                    results = ray.get(ref)
                except Exception as exc:
                    # broad: whatever ended the task after its retries (its worker or actor died,
                    # an object was lost) splits the batch, then is recorded as its lone unit's error
                    if owner is not None:
                        owner[0].replace(owner[1])
                    retry = _after_failure(batch, exc, self.max_retries)
                    if isinstance(retry, list):
                        (owner[0].queue if owner else tasks).extendleft(reversed(retry))
                        continue
                    results = retry.results
                else:
                    if owner is not None:
                        owner[0].release(owner[1], spent=spent)
                yield results

    def close(self) -> None:
        """Shut down the Ray runtime :meth:`open` started (one it joined is left running)."""
        if self._ray is not None and self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
        self._ray, self._started_here = None, False


class _Failed:
    def __init__(self, results: list[UnitResult]) -> None:
        self.results = results


def _after_failure(batch: Sequence[WorkUnit], exc: Exception, retries: int) -> list[list[WorkUnit]] | _Failed:
    """Split a failed batch to find its culprit, or record a lone unit as failed."""
    if len(batch) > 1:
        log.warning("a batch of %d units failed on Ray (%s); retrying unit by unit", len(batch), exc)
        return [[u] for u in batch]
    reason = f"Ray task failed after {retries} retries: {type(exc).__name__}: {exc}"
    return _Failed(failed_batch(batch, reason.splitlines()[0]))


PIPELINE = 2  # batches in flight per actor: the next one waits in the actor while the driver stores the last
LOOKAHEAD = 8  # batches read ahead of the stream per worker


class _ActorPool:
    """The actors of one neural method: created on demand, killed when its work is done.

    Each actor holds up to :data:`PIPELINE` batches (Ray runs an actor's calls in order),
    so it never idles while the driver records the batch it just returned.
    """

    def __init__(self, executor: RayExecutor, ref: str, resources: Resources) -> None:
        self.executor = executor
        self.ref = ref
        self.resources = resources
        self.queue: deque[Sequence[WorkUnit]] = deque()
        self.idle: list = []  # one entry per free slot, so an actor appears up to PIPELINE times
        self.live: list = []
        self.busy = 0
        self.size = self._size()

    def _size(self) -> int:
        total = self.executor._ray.cluster_resources()
        fits = [total.get("CPU", 1) / max(self.resources.num_cpus, 1e-9)]
        if self.resources.num_gpus:
            fits.append(total.get("GPU", 0) / self.resources.num_gpus)
        # Leave room for the classical tasks on CPU-only runtimes.
        return max(1, int(min(fits)) // (1 if self.resources.num_gpus else 2))

    def unschedulable(self) -> str | None:
        gpus = self.executor._ray.cluster_resources().get("GPU", 0)
        if self.resources.num_gpus > gpus:
            return f"{self.ref} needs {self.resources.num_gpus:g} GPU(s) per worker; the Ray cluster has {gpus:g}"
        return None

    def _new_actor(self):
        res = self.resources
        cls = self.executor._actor_cls.options(
            num_cpus=res.num_cpus, num_gpus=res.num_gpus, max_restarts=1, max_task_retries=self.executor.max_retries
        )
        actor = cls.remote(self.ref, res.num_cpus)
        self.live.append(actor)
        self.idle.extend([actor] * (PIPELINE - 1))
        return actor

    def assign(self) -> list[tuple]:
        pairs = []
        while self.queue and (self.idle or len(self.live) < self.size):
            actor = self.idle.pop() if self.idle else self._new_actor()
            pairs.append((actor, self.queue.popleft()))
            self.busy += 1
        return pairs

    def release(self, actor, *, spent: bool = True) -> None:
        """An actor's batch came back; ``spent``: no more batches will come from the stream."""
        self.busy -= 1
        if any(a is actor for a in self.live):
            self.idle.append(actor)
        if spent:
            self.release_if_done()

    def release_if_done(self) -> None:
        """Free the actors' CPUs/GPUs for the rest of the run once this method's work is done."""
        if not self.queue and not self.busy and self.live:
            for a in self.live:
                self.executor._ray.kill(a)
            self.live.clear()
            self.idle.clear()

    def replace(self, actor) -> None:
        """Drop an actor whose call failed (its other in-flight batch fails and lands here too)."""
        self.busy -= 1
        if any(a is actor for a in self.live):
            self.live = [a for a in self.live if a is not actor]
            self.idle = [a for a in self.idle if a is not actor]
            self.executor._ray.kill(actor)


class _MethodActor:
    """Holds one neural method with its weights loaded; runs its batches."""

    def __init__(self, ref: str, num_threads: float) -> None:
        from restorebench.plugins import load_plugins
        from restorebench.run.worker import _method, set_thread_limit

        load_plugins()

        self.threads = max(1, int(num_threads))
        set_thread_limit(self.threads)
        _method(ref)  # load the weights once

    def run(self, batch: Sequence[WorkUnit]) -> list[UnitResult]:
        return _run_batch_task(batch, self.threads)


def _neural_method(batch: Sequence[WorkUnit], methods: Mapping[str, MethodInfo]) -> str | None:
    """The method of a batch that holds one neural method's units only, else None."""
    refs = {u.method for u in batch}
    if len(refs) == 1:
        ref = next(iter(refs))
        if methods[ref].kind == "neural":
            return ref
    return None


def _run_batch_task(batch: Sequence[WorkUnit], num_threads: float) -> list[UnitResult]:
    import ray

    from restorebench.run.worker import run_batch

    results = run_batch(batch, num_threads=max(1, int(num_threads)))
    node = ray.get_runtime_context().get_node_id()
    for r in results:
        r.node = node
    return results
