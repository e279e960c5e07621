"""Suites: the YAML schema, its validation, and narrowing by command-line options.

A suite names, per task, the datasets, degradations, methods and metrics to run. It is
validated up front: an unknown name or a bad parameter is a :class:`UserError` naming
the file, the key and the valid choices, before any work starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from restorebench.core.errors import UserError, choices

RefLike = str | dict[str, Any]


class TaskEntry(BaseModel):
    """One task block of a suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    datasets: list[str] = Field(min_length=1)
    degradations: list[RefLike] = Field(min_length=1)
    methods: list[RefLike] = Field(min_length=1)
    metrics: list[str] | None = None


class Suite(BaseModel):
    """A whole suite file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "suite"
    seed: int = 0
    tasks: list[TaskEntry] = Field(min_length=1)


@dataclass
class ResolvedTask:
    """A task block with every component built and validated."""

    task: Any  # restorebench.core.interfaces.Task
    sources: list[Any]
    degradations: list[Any]
    methods: list[Any]
    metrics: list[str]


@dataclass
class ResolvedSuite:
    name: str
    seed: int
    tasks: list[ResolvedTask] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The resolved suite in canonical references (what ``spec.yaml`` holds)."""
        return {
            "name": self.name,
            "seed": self.seed,
            "tasks": [
                {
                    "task": t.task.name,
                    "datasets": [s.ref for s in t.sources],
                    "degradations": [d.ref for d in t.degradations],
                    "methods": [m.build_ref for m in t.methods],
                    "metrics": list(t.metrics),
                }
                for t in self.tasks
            ],
        }


def read_suite(path: str | Path) -> Suite:
    """Parse and schema-check a suite YAML file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read suite {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(
            f"suite {path} is not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
            hint="save the file as UTF-8",
        ) from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: malformed YAML: {exc}") from None
    return parse_suite(data, origin=str(path))


def parse_suite(data: Any, *, origin: str = "suite") -> Suite:
    if not isinstance(data, dict):
        raise UserError(f"{origin}: a suite is a mapping with keys name, seed, tasks; got {type(data).__name__}")
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        import difflib

        unknown, other = [], []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "extra_forbidden":
                fields = (TaskEntry if "tasks" in err["loc"] else Suite).model_fields
                close = difflib.get_close_matches(str(err["loc"][-1]), fields, n=1)
                guess = f"did you mean {close[0]!r}? " if close else ""
                unknown.append(f"  unknown key {key!r}; {guess}valid keys: {choices(fields)}")
            elif err["type"] == "missing":
                other.append(f"  {key}: missing")
            else:
                other.append(f"  {key}: {err['msg']}")
        raise UserError("\n".join([f"{origin}: invalid suite:", *unknown, *other])) from None


def resolve(suite: Suite, *, origin: str = "suite") -> ResolvedSuite:
    """Build every component of ``suite``; errors name the file and the key."""
    from restorebench.core.build import build_degradation, build_method, build_metric, build_source
    from restorebench.core.no_reference import reference_problems
    from restorebench.core.registry import TASKS

    resolved = ResolvedSuite(suite.name, suite.seed)
    for i, entry in enumerate(suite.tasks):
        at = f"{origin}: tasks[{i}]"
        task = _located(f"{at}.task", TASKS.get, entry.task)
        sources = [_located(f"{at}.datasets[{j}]", build_source, d) for j, d in enumerate(entry.datasets)]
        degradations = [
            _located(f"{at}.degradations[{j}]", build_degradation, d, task=task.name)
            for j, d in enumerate(entry.degradations)
        ]
        defaults = task.metrics
        if task.as_is is not None and sources and not any(s.has_reference for s in sources):
            defaults = task.as_is.metrics  # photos with no reference: the task's no-reference metrics
        metrics = [
            _located(f"{at}.metrics[{j}]", build_metric, name) for j, name in enumerate(entry.metrics or defaults)
        ]
        resolved.tasks.append(
            ResolvedTask(
                task=task,
                sources=sources,
                degradations=degradations,
                methods=[
                    _located(f"{at}.methods[{j}]", build_method, m, task=task.name) for j, m in enumerate(entry.methods)
                ],
                metrics=[m.name for m in metrics],
            )
        )
        _check_pairs(resolved.tasks[-1], at)
        problem = reference_problems(task, sources, degradations, metrics)
        if problem:
            raise UserError(f"{at} ({task.name}): {problem}")
    return resolved


def _check_pairs(block: ResolvedTask, at: str) -> None:
    """Pre-degraded pairs go with ``given`` and nothing else, before any work starts."""
    given = [d.ref for d in block.degradations if d.needs_pairs]
    made = [d.ref for d in block.degradations if not d.needs_pairs]
    for source in block.sources:
        if source.paired and made:
            raise UserError(
                f"{at}: dataset {source.ref} holds pre-degraded inputs, but degradation {made[0]} makes its own",
                hint="score a paired dataset with given (e.g. given?scale=4 or given?sigma=25)",
            )
        if not source.paired and given:
            raise UserError(
                f"{at}: degradation {given[0]} reads pre-degraded inputs, but dataset {source.ref} has none",
                hint="use a paired source (paired:gt=DIR&lq=DIR, manifest:FILE.csv, parquet:FILE?gt=COL&lq=COL, "
                "hf:NAME?gt=COL&lq=COL) or a generating degradation",
            )


def _located(where: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except UserError as exc:
        raise UserError(f"{where}: {exc.args[0]}", hint=exc.hint) from None  # str(exc) would say the hint twice


def narrow(
    suite: Suite,
    *,
    tasks: Sequence[str] = (),
    datasets: Sequence[str] = (),
    degradations: Sequence[str] = (),
    methods: Sequence[str] = (),
    metrics: Sequence[str] = (),
) -> Suite:
    """Restrict (or fill) a suite from ``--task/--dataset/--degradation/--method/--metric``.

    Each option that is given replaces the corresponding list of every task block;
    degradations and methods go only to the blocks of their own task. A block left
    without degradations or methods is dropped, and so is one that the options made equal
    to an earlier block; an option that fits no block is an error. Datasets of photos with
    no reference replace the suite's degradations by ``as_is`` (unless ``--degradation``
    says otherwise) and its metrics by the tasks' no-reference ones (unless ``--metric`` does).
    """
    from restorebench.core.build import build_source, method_class
    from restorebench.core.refs import Ref
    from restorebench.core.registry import DEGRADATIONS

    def task_of(registry_get, text: str, what: str) -> str:
        return registry_get(Ref.parse(text, what=what).name).task

    deg_tasks = {d: task_of(DEGRADATIONS.get, d, "degradation") for d in degradations}
    meth_tasks = {m: task_of(method_class, m, "method") for m in methods}
    if tasks:
        known = {e.task for e in suite.tasks}
        for t in tasks:
            if t not in known:
                raise UserError(f"task {t!r} is not in suite {suite.name!r}; its tasks: {choices(known)}")
        for option, owners in (("--method", meth_tasks), ("--degradation", deg_tasks)):
            for value, owner in owners.items():
                if owner not in (*tasks, "*"):
                    raise UserError(
                        f"{option} {value!r} is for task {owner!r}, but this run is --task {' --task '.join(tasks)}",
                        hint=f"drop it, or add --task {owner}",
                    )
    photos = bool(datasets) and not any(build_source(d).has_reference for d in datasets)
    blocks = []
    for entry in suite.tasks:
        if tasks and entry.task not in tasks:
            continue
        update: dict[str, Any] = {}
        if datasets:
            update["datasets"] = list(datasets)
        if metrics or photos:
            update["metrics"] = list(metrics) or None  # None: the task's defaults for such data
        if photos and not degradations:
            update["degradations"] = ["as_is"]
        if degradations:
            update["degradations"] = [d for d in degradations if deg_tasks[d] in (entry.task, "*")]
        if methods:
            update["methods"] = [m for m in methods if meth_tasks[m] == entry.task]
        if (degradations and not update["degradations"]) or (methods and not update["methods"]):
            continue
        block = entry.model_copy(update=update)
        if block not in blocks:  # options that override every list make a task's blocks equal
            blocks.append(block)
    used = {e.task for e in blocks} | {"*"}
    for option, owners in (("--degradation", deg_tasks), ("--method", meth_tasks)):
        for value, owner in owners.items():
            if owner not in used:
                raise UserError(f"{option} {value!r} is for task {owner!r}, which this run does not include")
    if not blocks:
        raise UserError(
            "the options leave nothing to run", hint="check --task/--degradation/--method against the suite"
        )
    return suite.model_copy(update={"tasks": blocks})
