"""The plan of one run, built once on the driver: the suite, its work units, and what each
method is (kind, resources, label, size), so no later stage rebuilds a component to ask.

Workers still rebuild components from their references (they may be other machines);
the driver never does after :func:`make_plan`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError, choices
from restorebench.core.interfaces import Method, Resources
from restorebench.core.suite import ResolvedSuite, Suite, parse_suite, read_suite
from restorebench.run.units import WorkUnit, unit_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodInfo:
    """What the driver knows about one method reference of the plan."""

    build_ref: str  # what a worker rebuilds the method from
    label: str  # the results' ``method`` column (parameters that do not change results left out)
    kind: str  # classical or neural
    version: str
    resources: Resources
    non_blind: bool
    parameters: float  # learned parameters (NaN for classical methods or when unknown)
    checkpoints: tuple[str, ...] = ()  # SHA-256 of each checkpoint it may use

    @classmethod
    def of(cls, method: Method) -> MethodInfo:
        identity = method.identity()
        return cls(
            build_ref=method.build_ref,
            label=method.ref,
            kind=method.kind,
            version=method.version,
            resources=method.required_resources(),
            non_blind=bool(method.uses_true_level),
            parameters=_parameter_count(method),
            checkpoints=tuple(identity.get("checkpoints", [])),
        )

    def columns(self) -> dict[str, Any]:
        """The results-table columns that describe the method."""
        return {
            "method": self.label,
            "method_kind": self.kind,
            "method_version": self.version,
            "non_blind": self.non_blind,
            "method_params": self.parameters,
            "method_checkpoint": ",".join(self.checkpoints),
        }


@dataclass
class Plan:
    """A resolved suite expanded into units, with each method's description."""

    suite: ResolvedSuite
    units: list[WorkUnit]
    methods: dict[str, MethodInfo] = field(default_factory=dict)  # by build_ref
    metric_versions: dict[str, str] = field(default_factory=dict)

    def unit(self, uid: str) -> WorkUnit:
        return self._by_id[uid]

    def __post_init__(self) -> None:
        self._by_id = {u.unit_id: u for u in self.units}

    @property
    def unit_ids(self) -> set[str]:
        return set(self._by_id)


def load_suite(name: str | None) -> tuple[Suite, str]:
    """A suite from a YAML path, a task's name, or (``None``/``default``) every task's suite."""
    from restorebench.core.registry import TASKS

    if name and Path(name).is_file():
        return read_suite(name), name
    if name and name != "default" and name in TASKS:
        path = TASKS.get(name).suite
        return read_suite(path), str(path)
    if name and name != "default":
        raise UserError(
            f"no suite file or suite named {name!r}",
            hint=f"give a YAML path or one of: default, {choices(TASKS.names())}",
        )
    blocks = []
    for _, task in TASKS.items():
        if task.suite:
            blocks.extend(read_suite(task.suite).tasks)
    return parse_suite({"name": "default", "seed": 0, "tasks": [b.model_dump() for b in blocks]}), "default suite"


def make_plan(resolved: ResolvedSuite) -> Plan:
    """Every work unit of a resolved suite, and what each of its methods is."""
    from restorebench.score.entries import metric_versions

    units: list[WorkUnit] = []
    methods: dict[str, MethodInfo] = {}
    versions_all: dict[str, str] = {}
    for block in resolved.tasks:
        versions = metric_versions(block.metrics)
        versions_all.update(versions)
        for m in block.methods:
            methods.setdefault(m.build_ref, MethodInfo.of(m))
        identities = {m.build_ref: m.identity() for m in block.methods}
        for source in block.sources:
            for index, image in enumerate(source.list_images()):
                for d in block.degradations:
                    for m in block.methods:
                        uid = unit_id(
                            task=block.task.name,
                            image=image,
                            degradation=d.identity(),
                            method=identities[m.build_ref],
                            metrics=versions,
                            seed=resolved.seed,
                            quantize=block.task.quantize_output,
                        )
                        units.append(
                            WorkUnit(
                                uid,
                                block.task.name,
                                image,
                                d.ref,
                                m.build_ref,
                                tuple(block.metrics),
                                resolved.seed,
                                block.task.quantize_output,
                                keep_sample=index == 0,
                            )
                        )
    unique = {u.unit_id: u for u in units}
    if len(unique) < len(units):
        log.warning("%d duplicate units (the same image listed twice) run once", len(units) - len(unique))
    return Plan(resolved, list(unique.values()), methods, versions_all)


def _parameter_count(method: Method) -> float:
    """Learned parameters of a neural method (NaN for classical ones or when unknown)."""
    try:
        count = method.parameter_count()
    except Exception as exc:  # a missing checkpoint shows up as failed units, not here
        log.debug("no parameter count for %s: %s", method.ref, exc)
        return float("nan")
    return float("nan") if count is None else float(count)
