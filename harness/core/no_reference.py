"""What a run of photos with no reference may ask for, checked before any work starts.

A source without a reference (:attr:`Source.has_reference` false) goes with the task's way
of taking photos as they are (:class:`~restorebench.core.interfaces.AsIs`, the ``as_is``
degradation) and with metrics that look at the output alone (``Metric.reference`` false).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from restorebench.core.errors import UserError, choices
from restorebench.core.interfaces import AsIs, Degradation, Source, Task
from restorebench.core.registry import METRICS, TASKS


def task_spec(task: Task) -> AsIs:
    """The task's way of taking photos as they are; a task without one is a UserError."""
    if task.as_is is None:
        able = [name for name, t in TASKS.items() if t.as_is is not None]
        raise UserError(
            f"task {task.name!r} cannot take photos without a reference", hint=f"tasks that can: {choices(able)}"
        )
    return task.as_is


def reference_free_metrics() -> list[str]:
    """The registered metrics that look at the output alone."""
    return sorted(name for name, metric in METRICS.items() if not metric.reference)


def reference_problems(
    task: Task, sources: Sequence[Source], degradations: Sequence[Degradation], metrics: Iterable[Any]
) -> str | None:
    """Why a task block cannot run, found before any work starts (None: it can): photos with no
    reference go with ``as_is`` and metrics that need no reference, and ``as_is`` with nothing else."""
    free = [s for s in sources if not s.has_reference]
    clean = [s for s in sources if s.has_reference]
    made = [d.ref for d in degradations if not d.takes_photos]
    as_is = [d.ref for d in degradations if d.takes_photos]
    if free and made:
        return (
            f"dataset {free[0].ref} has no reference: there is no clean image to degrade with {made[0]} "
            f"and compare with; take its photos as they are with as_is ({task.name} takes "
            f"{task_spec(task).expects})"
        )
    if clean and as_is:
        return (
            f"{as_is[0]} takes photos that have no reference, but dataset {clean[0].ref} holds clean images; "
            "mark a folder of real photos with ?reference=none (folder:DIR?reference=none)"
        )
    if free:
        needing = [m.name for m in metrics if m.reference]
        if needing:
            return (
                f"dataset {free[0].ref} has no reference, and metric(s) {', '.join(needing)} compare the output "
                f"with one; metrics that need no reference: {', '.join(reference_free_metrics())}"
            )
    return None
