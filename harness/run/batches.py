"""Cutting a run's units into batches for the executors."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence

from restorebench.run.plan import MethodInfo
from restorebench.run.units import UnitResult, WorkUnit

MAX_BATCH = 64
CLASSICAL_BATCHES_PER_WORKER = 16  # the last batch to finish leaves the other workers idle
NEURAL_BATCHES_PER_WORKER = 4  # each batch is a call to an actor holding its device


def make_batches(
    units: Sequence[WorkUnit], methods: Mapping[str, MethodInfo], parallelism: int
) -> list[list[WorkUnit]]:
    """:func:`stream_batches` of a list of units, as a list."""
    return list(stream_batches(units, methods, parallelism, total=len(units)))


def batch_size(total: int, parallelism: int, *, neural: bool) -> int:
    """Units per batch for a run of ``total`` units on ``parallelism`` workers (see :func:`stream_batches`)."""
    per_worker = NEURAL_BATCHES_PER_WORKER if neural else CLASSICAL_BATCHES_PER_WORKER
    return max(1, min(MAX_BATCH, math.ceil(total / (per_worker * max(1, parallelism)))))


def stream_batches(
    units: Iterable[WorkUnit], methods: Mapping[str, MethodInfo], parallelism: int, *, total: int
) -> Iterator[list[WorkUnit]]:
    """Cut a stream of units (``total`` of them, about) into batches, as they come.

    Classical units of one image stay together (the plan generates an image's units one after
    another; the image is loaded and degraded once per batch); a neural method's units form
    batches of their own, for the actor holding its weights. Classical batches are small, about
    :data:`CLASSICAL_BATCHES_PER_WORKER` per worker, so the last ones to finish leave the other
    workers idle only briefly (two workers over one on 100 classical units: 1.72x with four per
    worker, 1.78x with sixteen). Neural batches stay large, about
    :data:`NEURAL_BATCHES_PER_WORKER` per worker: each one is a call to an actor that holds a
    CPU (or GPU) while it lives, and sixteen per worker took the default suite from 148 s to
    187 s. Never more than ``MAX_BATCH`` units per batch, so a lost worker loses little; only
    the batches being filled are held.
    """
    sizes = {False: batch_size(total, parallelism, neural=False), True: batch_size(total, parallelism, neural=True)}
    buffers: dict[str, list[WorkUnit]] = {}
    for unit in units:
        key = unit.method if methods[unit.method].kind == "neural" else ""
        buffer = buffers.setdefault(key, [])
        buffer.append(unit)
        if len(buffer) >= sizes[bool(key)]:
            yield buffer
            buffers[key] = []
    for _, rest in sorted(buffers.items()):
        if rest:
            yield rest


def failed_batch(batch: Sequence[WorkUnit], message: str) -> list[UnitResult]:
    return [UnitResult(unit_id=u.unit_id, status="failed", error=f"{u.image.key}: {message}") for u in batch]
