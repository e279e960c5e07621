"""The driver's record step: each batch of unit results, as it lands, into the run directory.

Rows go to a new shard (written atomically), each unit's sample crops to ``samples/``,
failures are counted with their messages, and progress is reported, so an interrupted
run has lost at most the batches in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from restorebench.run.plan import Plan
from restorebench.run.store import RunDir
from restorebench.run.tables import rows_for
from restorebench.run.units import UnitResult, WorkUnit

Progress = Callable[[int, int, int], None]  # (units done, units total, units failed)


class Recorder:
    """Stores batches of results for one run; ``finished`` counts units already stored.

    >>> recorder = Recorder(plan, run_dir, run_id="0" * 32)   # doctest: +SKIP
    >>> recorder(results)  # one batch: a shard, its samples, progress
    """

    def __init__(
        self, plan: Plan, run_dir: RunDir, *, run_id: str, progress: Progress | None = None, finished: int = 0
    ) -> None:
        self.plan = plan
        self.run_dir = run_dir
        self.run_id = run_id
        self.progress = progress
        self.finished = finished
        self.total = plan.total
        self.failed = 0
        self.skipped_count = 0
        self.skipped: list[str] = []
        self.errors: list[str] = []

    MAX_MESSAGES = 1000  # errors and skips kept for the summary (the results keep every one)

    def start(self) -> None:
        """Report the progress before the first batch."""
        if self.progress:
            self.progress(self.finished, self.total, self.failed)

    def resumed(self, count: int) -> None:
        """``count`` more units were found done in the run directory."""
        self.finished += count
        if self.progress and count:
            self.progress(self.finished, self.total, self.failed)

    def __call__(self, results: list[UnitResult], units: Mapping[str, WorkUnit]) -> None:
        """Store one batch of ``results`` (``units``: their work units, by id)."""
        from restorebench.report.samples import save_sample
        from restorebench.run.outputs import save_output

        rows = []
        for r in results:
            unit = units[r.unit_id]
            info = self.plan.methods[unit.method]
            rows.extend(
                rows_for(
                    unit,
                    r,
                    run_id=self.run_id,
                    method=info.columns(),
                    metric_versions=self.plan.metric_versions,
                    dataset_check=self.plan.dataset_checks.get(unit.dataset, ""),
                    published=self.plan.published.get((unit.dataset, unit.degradation, unit.method)),
                )
            )
            if r.sample is not None:
                save_sample(self.run_dir.samples, unit, info.label, r.sample)
            if r.output is not None:
                save_output(self.run_dir.outputs, unit, info.label, r.output)
            if r.status == "skipped":
                self.skipped_count += 1
                self._keep(self.skipped, [r.error])
            elif r.status != "ok":
                self.failed += 1
                self._keep(self.errors, [r.error])
            self._keep(self.errors, [f"{unit.image.key}: metric {m}: {e}" for m, e in r.metric_errors.items()])
        self.run_dir.append(rows)
        self.finished += len(results)
        if self.progress:
            self.progress(self.finished, self.total, self.failed)

    def _keep(self, messages: list[str], new: list[str]) -> None:
        """Messages for the summary, at most :data:`MAX_MESSAGES` (a run of a million failing
        units keeps a bounded list; the results table keeps every error)."""
        messages += new[: max(0, self.MAX_MESSAGES - len(messages))]
