"""The plan of one run, built once on the driver: the suite, its work units, and what each
method is (kind, resources, label, size), so no later stage rebuilds a component to ask.

Workers still rebuild components from their references (they may be other machines);
the driver never does after :func:`make_plan`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError, choices
from restorebench.core.interfaces import ImageRef, Method, Resources
from restorebench.core.refs import stable_json
from restorebench.core.suite import ResolvedSuite, Suite, parse_suite, read_suite
from restorebench.run.units import UnitIds, WorkUnit

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
    identity: str = ""  # the method's identity as stable JSON (what its unit ids hash)
    default_weights: bool = True  # runs its committed checkpoints (no ?checkpoint=)
    builtin: bool = True  # its code is restorebench's own

    @classmethod
    def of(cls, method: Method) -> MethodInfo:
        identity = method.identity()
        label = method.ref + (f"@{method.user_label}" if method.user_label else "")
        return cls(
            build_ref=method.build_ref,
            label=label,
            kind=method.kind,
            version=method.version,
            resources=method.required_resources(),
            non_blind=bool(method.uses_true_level),
            parameters=_parameter_count(method),
            checkpoints=tuple(identity.get("checkpoints", [])),
            identity=stable_json(identity),
            default_weights=not getattr(method.params, "checkpoint", None),
            builtin=type(method).__module__.startswith("restorebench."),
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
class BlockPlan:
    """One task block of the plan: what its units combine, with the parts of their ids made once."""

    task: str
    quantize: bool
    metrics: tuple[str, ...]
    sources: list[Any]
    degradations: list[str]  # canonical references
    methods: list[str]  # build references
    ids: dict[tuple[str, str], UnitIds]  # (degradation, method) -> the unit id of an image


@dataclass
class Plan:
    """A resolved suite and what each of its methods is; its work units are generated on
    demand (:meth:`units`), never all held: image by image, degradation by degradation,
    method by method, the order in which a run hands them out."""

    suite: ResolvedSuite
    blocks: list[BlockPlan] = field(default_factory=list)
    methods: dict[str, MethodInfo] = field(default_factory=dict)  # by build_ref
    metric_versions: dict[str, str] = field(default_factory=dict)
    dataset_checks: dict[str, str] = field(default_factory=dict)  # by dataset ref: a card's verdict
    published: dict[tuple[str, str, str], dict[str, tuple[float, str]]] = field(default_factory=dict)
    total: int = 0  # units planned (a unit named twice counts twice)
    limit: int | None = None
    save_outputs: bool = False
    shard: tuple[int, int] | None = None  # (I, N): every N-th image from the I-th (one job of N)
    _listed: dict[int, list[ImageRef]] = field(default_factory=dict, repr=False)  # eager sources' images

    def images(self, source: Any) -> Iterator[ImageRef]:
        """The images of ``source`` the plan covers (the first ``limit``)."""
        listed = self._listed.get(id(source))
        images = itertools.islice(iter(listed) if listed is not None else source.iter_images(), self.limit)
        if self.shard is None:
            return images
        index, count = self.shard
        return itertools.islice(images, index, None, count)

    def units(self) -> Iterator[WorkUnit]:
        """Every work unit, generated as it is needed."""
        for block in self.blocks:
            for source in block.sources:
                for index, image in enumerate(self.images(source)):
                    for d in block.degradations:
                        for m in block.methods:
                            yield WorkUnit(
                                block.ids[(d, m)](image),
                                block.task,
                                image,
                                d,
                                m,
                                block.metrics,
                                self.suite.seed,
                                block.quantize,
                                keep_sample=index == 0 or not source.has_reference,  # no reference: every photo shown
                                save_output=self.save_outputs,
                            )


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


def make_plan(
    resolved: ResolvedSuite,
    *,
    limit: int | None = None,
    save_outputs: bool = False,
    shard: tuple[int, int] | None = None,
) -> Plan:
    """The plan of a resolved suite: what each of its methods is, and how to generate its work
    units; ``limit``: only the first N images of each source (in its stable order), for quick
    runs and smoke tests; ``save_outputs``: the workers send every restored image back.

    Sources are listed once (a lazy source, such as a synthetic set, only counted); what can
    be known about their images before work starts is checked here (see :func:`_check_images`)."""
    from restorebench.score.entries import metric_versions

    plan = Plan(resolved, limit=limit, save_outputs=save_outputs, shard=shard)
    methods: dict[str, MethodInfo] = {}
    for block in resolved.tasks:
        versions = metric_versions(block.metrics)
        plan.metric_versions.update(versions)
        for m in block.methods:
            methods.setdefault(m.build_ref, MethodInfo.of(m))
        identities = {m.build_ref: m.identity() for m in block.methods}
        for source in block.sources:
            if not source.lazy:
                plan._listed[id(source)] = source.list_images()
            count = source.count_images() if source.lazy else len(plan._listed[id(source)])
            count = min(count, limit) if limit else count
            if shard is not None:
                count = len(range(shard[0], count, shard[1]))
            _check_images(block, source, plan.images(source), count)
            plan.dataset_checks[source.ref] = source.check
            plan.total += count * len(block.degradations) * len(block.methods)
            for d in block.degradations:
                for m in block.methods:
                    found = source.published(block.task.name, d, m)
                    if found:
                        plan.published[(source.ref, d.ref, m.build_ref)] = found
        ids = {
            (d.ref, m.build_ref): UnitIds(
                task=block.task.name,
                degradation=d.identity(),
                method=identities[m.build_ref],
                metrics=versions,
                seed=resolved.seed,
                quantize=block.task.quantize_output,
            )
            for d in block.degradations
            for m in block.methods
        }
        plan.blocks.append(
            BlockPlan(
                block.task.name,
                block.task.quantize_output,
                tuple(block.metrics),
                list(block.sources),
                [d.ref for d in block.degradations],
                [m.build_ref for m in block.methods],
                ids,
            )
        )
    plan.methods = distinct_labels(methods)
    return plan


def _check_images(block: Any, source: Any, images: Iterator[ImageRef], count: int) -> None:
    """What is knowable about a block's images before work starts: that there are some, that
    pre-degraded pairs fit ``given`` under the task's protocol (levels, sizes), and that photos
    with no reference have what the task needs (e.g. a mask for each, for inpainting)."""
    from restorebench.data.given import given_problems

    if not count:
        raise UserError(
            f"tasks ({block.task.name}): dataset {source.ref} has no image to score",
            hint="check the dataset reference (its folder, file, split or filters)",
        )
    listed: list[ImageRef] | None = None  # listed once, only when a check needs the images
    for degradation in block.degradations:
        if degradation.takes_photos or degradation.needs_pairs:
            listed = list(images) if listed is None else listed
        as_is = block.task.as_is
        if degradation.takes_photos and as_is is not None and as_is.check is not None:
            _refuse(
                as_is.check(degradation.params, source, listed),
                f"photo(s) of {source.ref} cannot be taken with {degradation.ref} ({block.task.name})",
                f"{block.task.name} takes {as_is.expects}",
            )
        if degradation.needs_pairs:
            _refuse(
                given_problems(source, listed, degradation, block.task),
                f"pair(s) of {source.ref} cannot be scored with {degradation.ref} ({block.task.name})",
                "check the pairs' levels (e.g. given?scale=N) and that each LQ is its GT degraded at that level",
            )


def _refuse(problems: list[str], what: str, hint: str) -> None:
    """A UserError listing ``problems`` (the first few), unless there are none."""
    from restorebench.data.paired import MAX_LISTED

    if problems:
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise UserError(f"{len(problems)} {what}:\n  " + "\n  ".join(problems[:MAX_LISTED]) + more, hint=hint)


def duplicates_message(resolved: ResolvedSuite, count: int, same_images: list[str]) -> str:
    """Say which entries made ``count`` units twice: a list naming one thing twice, overlapping
    blocks, or one image under two names (``same_images``: a few such pairs, as found)."""
    reasons = []
    for i, block in enumerate(resolved.tasks):
        for what, refs in (
            ("datasets", [s.ref for s in block.sources]),
            ("degradations", [d.ref for d in block.degradations]),
            ("methods", [m.build_ref for m in block.methods]),
        ):
            twice = sorted({r for r in refs if refs.count(r) > 1})
            reasons += [f"tasks[{i}] ({block.task.name}).{what} lists {r} twice" for r in twice]
    reasons += [f"the same image twice: {pair}" for pair in sorted(same_images)[:3]]
    if not reasons:
        reasons = ["task blocks that overlap"]
    return f"{count} duplicate unit(s) run once: " + "; ".join(reasons[:6])


def distinct_labels(methods: dict[str, MethodInfo]) -> dict[str, MethodInfo]:
    """Give methods that would share a leaderboard row a label of their own.

    Two references with the same label but different identities (two checkpoints of one
    network, a plugin named like a built-in) are never averaged together: the one on the
    committed weights and the built-in keep the plain label, so ``compare`` still pairs a
    method with its retrained self across runs; the others get ``@`` plus a short hash of
    their checkpoints, or of their code's module and class.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for ref, info in methods.items():
        groups[info.label].append(ref)
    out = dict(methods)
    for label, refs in groups.items():
        if len({methods[r].identity for r in refs}) < 2:
            continue
        plain = [r for r in refs if methods[r].builtin and methods[r].default_weights]
        keep = {methods[r].identity for r in plain[:1]}
        for ref in refs:
            info = methods[ref]
            if info.identity in keep:
                continue
            out[ref] = replace(info, label=f"{label}@{_suffix(info)}")
    return out


def _suffix(info: MethodInfo) -> str:
    if not info.builtin:
        origin = json.loads(info.identity)["code"]
        return f"{origin['module']}.{origin['class']}"
    basis = ",".join(info.checkpoints) or info.identity
    return hashlib.sha256(basis.encode()).hexdigest()[:8]


def _parameter_count(method: Method) -> float:
    """Learned parameters of a neural method (NaN for classical ones or when unknown)."""
    try:
        count = method.parameter_count()
    except UserError as exc:  # an unreadable checkpoint: its units fail with the error, the plan goes on
        log.warning("the size of %s is unknown (NaN): %s", method.ref, exc.args[0])
        return float("nan")
    return float("nan") if count is None else float(count)
