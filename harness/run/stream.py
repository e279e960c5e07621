"""The units a run still has to compute, streamed from the plan a chunk at a time.

Each chunk of the plan's units is checked against the run's index (a unit named twice runs
once; on ``--resume``, units the run directory holds done are skipped) and the results cache
(a hit is recorded at once); what is left goes on to the batches, and is remembered only
while it is in flight. So no structure of the driver grows with the number of units.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from restorebench.run.index import RunIndex
from restorebench.run.plan import Plan
from restorebench.run.record import Recorder
from restorebench.run.units import UnitResult, WorkUnit

CHUNK = 4096  # units checked against the index and the cache at once


class UnitStream:
    """Iterating yields the units to compute; :meth:`landed` stores their results."""

    def __init__(
        self, plan: Plan, index: RunIndex, record: Recorder, cache: Any, *, resume: bool, use_cache: bool
    ) -> None:
        self.plan, self.index, self.record, self.cache = plan, index, record, cache
        self.resume, self.use_cache = resume, use_cache
        self.resumed = 0
        self.from_cache = 0
        self.inflight: dict[str, WorkUnit] = {}

    def __iter__(self) -> Iterator[WorkUnit]:
        units = self.plan.units()
        while chunk := list(itertools.islice(units, CHUNK)):
            fresh = self.index.add(chunk)
            if self.resume:
                done = self.index.done_among([u.unit_id for u in fresh])
                self.resumed += len(done)
                self.record.resumed(len(done))
                fresh = [u for u in fresh if u.unit_id not in done]
            hits = self.cache.get_many([u.unit_id for u in fresh]) if self.use_cache and fresh else {}
            if hits:
                self.record(list(hits.values()), {u.unit_id: u for u in fresh if u.unit_id in hits})
                self.from_cache += len(hits)
            for unit in fresh:
                if unit.unit_id not in hits:
                    self.inflight[unit.unit_id] = unit
                    yield unit

    def landed(self, results: list[UnitResult]) -> None:
        """Store a batch of computed results (and put them in the cache)."""
        self.record(results, self.inflight)
        self.cache.put_many(results)
        for result in results:
            self.inflight.pop(result.unit_id, None)
