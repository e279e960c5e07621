"""Cutting a run's units into batches for the executors."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from restorebench.run.plan import MethodInfo
from restorebench.run.units import UnitResult, WorkUnit

MAX_BATCH = 64
BATCHES_PER_WORKER = 16  # the last batch to finish leaves the other workers idle: keep it small


def make_batches(
    units: Sequence[WorkUnit], methods: Mapping[str, MethodInfo], parallelism: int
) -> list[list[WorkUnit]]:
    """Cut units into batches.

    Classical units of one image stay together (the image is loaded and degraded once);
    a neural method's units form batches of their own, for the actor holding its weights.
    Aim for about :data:`BATCHES_PER_WORKER` batches per worker so the tail of a run (the
    workers idle while the last batches finish) stays short: with four, two workers on 100
    classical units were 1.64x one, with sixteen 1.8x (tests/perf/bench_workers.py). Never
    more than ``MAX_BATCH`` units per batch, so a lost worker loses little.
    """
    if not units:
        return []
    groups: dict[str, list[WorkUnit]] = {}
    for unit in units:
        key = unit.method if methods[unit.method].kind == "neural" else ""
        groups.setdefault(key, []).append(unit)
    size = max(1, min(MAX_BATCH, math.ceil(len(units) / (BATCHES_PER_WORKER * max(1, parallelism)))))
    batches = []
    for _, group in sorted(groups.items()):
        ordered = sorted(group, key=lambda u: (u.image.dataset, u.image.key, u.degradation, u.method))
        batches += [ordered[i : i + size] for i in range(0, len(ordered), size)]
    return batches


def failed_batch(batch: Sequence[WorkUnit], message: str) -> list[UnitResult]:
    return [UnitResult(unit_id=u.unit_id, status="failed", error=f"{u.image.key}: {message}") for u in batch]
