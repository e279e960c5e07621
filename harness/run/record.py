"""The driver's record step: each batch of unit results, as it lands, into the run directory.

Rows go to a new shard (written atomically), each unit's sample crops to ``samples/``,
failures are counted with their messages, and progress is reported, so an interrupted
run has lost at most the batches in flight.
"""

from __future__ import annotations

from collections.abc import Callable

from restorebench.run.plan import Plan
from restorebench.run.store import RunDir
from restorebench.run.tables import rows_for
from restorebench.run.units import UnitResult

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
        self.failed = 0
        self.skipped: list[str] = []
        self.errors: list[str] = []

    def start(self) -> None:
        """Report the progress before the first batch (e.g. what a resume found done)."""
        if self.progress:
            self.progress(self.finished, len(self.plan.units), self.failed)

    def __call__(self, results: list[UnitResult]) -> None:
        from restorebench.report.samples import save_sample
        from restorebench.run.outputs import save_output

        rows = []
        for r in results:
            unit = self.plan.unit(r.unit_id)
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
                self.skipped.append(r.error)
            elif r.status != "ok":
                self.failed += 1
                self.errors.append(r.error)
            self.errors += [f"{unit.image.key}: metric {m}: {e}" for m, e in r.metric_errors.items()]
        self.run_dir.append(rows)
        self.finished += len(results)
        if self.progress:
            self.progress(self.finished, len(self.plan.units), self.failed)
