"""One ``restorebench run``: suite -> work units -> executor -> store -> tracking.

The command line calls :func:`run_suite`; tests and notebooks may call it directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from restorebench.core.errors import Interrupted, UserError, choices
from restorebench.core.suite import ResolvedSuite, Suite, narrow, parse_suite, read_suite, resolve
from restorebench.run.units import UnitResult, WorkUnit, unit_id

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (units done, units total)


@dataclass
class RunOptions:
    """Everything ``restorebench run`` takes."""

    suite: str | None = None
    tasks: Sequence[str] = ()
    datasets: Sequence[str] = ()
    degradations: Sequence[str] = ()
    methods: Sequence[str] = ()
    out: Path | None = None
    executor: str = "ray"
    address: str | None = None
    num_cpus: int | None = None
    tracking_uri: str | None = None
    tracking: bool = True
    seed: int | None = None
    resume: bool = False
    use_cache: bool = True
    cache_path: Path | None = None


@dataclass
class RunSummary:
    """What a run did, for the CLI to print and tests to check."""

    run_dir: Path
    run_id: str
    results: Any  # pandas.DataFrame
    units: int
    computed: int = 0
    from_cache: int = 0
    resumed: int = 0
    failed: int = 0
    wall_s: float = 0.0
    tracking_uri: str | None = None
    mlflow_run_id: str | None = None
    tracking_error: str | None = None
    errors: list[str] = field(default_factory=list)


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
    for task_name, task in TASKS.items():
        if task.suite:
            blocks.extend(read_suite(task.suite).tasks)
    return parse_suite({"name": "default", "seed": 0, "tasks": [b.model_dump() for b in blocks]}), "default suite"


def expand(resolved: ResolvedSuite) -> tuple[list[WorkUnit], dict[str, dict[str, Any]]]:
    """All work units of a suite, plus the labels of each method reference."""
    from restorebench.score.entries import metric_versions

    units: list[WorkUnit] = []
    labels: dict[str, dict[str, Any]] = {}
    for block in resolved.tasks:
        versions = metric_versions(block.metrics)
        for m in block.methods:
            labels[m.build_ref] = {
                "method": {"method": m.ref, "method_kind": m.kind, "method_version": m.version,
                           "non_blind": bool(m.uses_true_level), "method_params": _parameter_count(m),
                           "method_checkpoint": ",".join(m.identity().get("checkpoints", []))},
                "metric_versions": versions,
            }
        for source in block.sources:
            for index, image in enumerate(source.list_images()):
                for d in block.degradations:
                    for m in block.methods:
                        uid = unit_id(
                            task=block.task.name,
                            image=image,
                            degradation=d.identity(),
                            method=m.identity(),
                            metrics=versions,
                            seed=resolved.seed,
                            quantize=block.task.quantize_output,
                        )
                        units.append(
                            WorkUnit(uid, block.task.name, image, d.ref, m.build_ref, tuple(block.metrics),
                                     resolved.seed, block.task.quantize_output, keep_sample=index == 0)
                        )  # fmt: skip
    unique = {u.unit_id: u for u in units}
    if len(unique) < len(units):
        log.warning("%d duplicate units (the same image listed twice) run once", len(units) - len(unique))
    return list(unique.values()), labels


def _parameter_count(method: Any) -> float:
    """Learned parameters of a neural method (NaN for classical ones or when unknown)."""
    try:
        count = method.parameter_count()
    except Exception as exc:  # a missing checkpoint shows up as failed units, not here
        log.debug("no parameter count for %s: %s", method.ref, exc)
        return float("nan")
    return float("nan") if count is None else float(count)


def run_suite(options: RunOptions, progress: Progress | None = None) -> RunSummary:
    """Run a suite end to end; results are stored as they land."""
    from restorebench.run.executors import make_batches, make_executor
    from restorebench.report.samples import save_sample
    from restorebench.run.store import ResultCache, RunDir, rows_for

    from restorebench.core.plugins import load_plugins

    load_plugins()
    started = time.perf_counter()
    suite, origin = load_suite(options.suite)
    if options.tasks or options.datasets or options.degradations or options.methods:
        suite = narrow(suite, tasks=options.tasks, datasets=options.datasets,
                       degradations=options.degradations, methods=options.methods)  # fmt: skip
    if options.seed is not None:
        suite = suite.model_copy(update={"seed": options.seed})
    resolved = resolve(suite, origin=origin)
    units, labels = expand(resolved)
    by_id = {u.unit_id: u for u in units}

    out = options.out or Path("runs") / f"{resolved.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir = RunDir.open(out, resolved.to_dict(), resume=options.resume)
    summary = RunSummary(run_dir=run_dir.path, run_id=run_dir.run_id, results=None, units=len(units))
    done = run_dir.completed_units() & by_id.keys() if options.resume else set()
    summary.resumed = len(done)
    todo = [u for u in units if u.unit_id not in done]

    cache = ResultCache(options.cache_path)
    finished = len(done)

    def record(results: list[UnitResult]) -> None:
        nonlocal finished
        rows = []
        for r in results:
            unit = by_id[r.unit_id]
            lab = labels[unit.method]
            rows.extend(rows_for(unit, r, run_id=summary.run_id, method=lab["method"], metric_versions=lab["metric_versions"]))
            if r.sample is not None:
                save_sample(run_dir.samples, unit, lab["method"]["method"], r.sample)
            if r.status != "ok":
                summary.failed += 1
                summary.errors.append(r.error)
        run_dir.append(rows)
        finished += len(results)
        if progress:
            progress(finished, len(units))

    try:
        if progress:
            progress(finished, len(units))
        hits = cache.get_many([u.unit_id for u in todo]) if options.use_cache else {}
        if hits:
            record(list(hits.values()))
        summary.from_cache = len(hits)
        todo = [u for u in todo if u.unit_id not in hits]
        if todo:
            executor = make_executor(options.executor, address=options.address, num_cpus=options.num_cpus)
            try:
                for results in executor.execute(make_batches(todo, executor.parallelism())):
                    record(results)
                    cache.put_many(results)
                    summary.computed += sum(r.status == "ok" for r in results)
            finally:
                executor.close()
    except KeyboardInterrupt:
        raise Interrupted(
            f"interrupted: {finished} of {len(units)} units are stored in {run_dir.path}",
            hint=f"complete the run with the same options plus --resume --out {run_dir.path}",
        ) from None
    finally:
        cache.close()
    summary.results = run_dir.compact(keep_units=by_id.keys())
    summary.wall_s = time.perf_counter() - started
    if options.tracking:
        _track(options, resolved, run_dir, summary)
    return summary


def _track(options: RunOptions, resolved: ResolvedSuite, run_dir, summary: RunSummary) -> None:
    from restorebench import track as tracking

    summary.tracking_uri = tracking.resolve_uri(options.tracking_uri)
    try:
        summary.mlflow_run_id = tracking.log_run(
            run_dir, summary.results, resolved.to_dict(), uri=summary.tracking_uri,
            extra={"executor": options.executor, "wall_s": summary.wall_s},
        )  # fmt: skip
    except Exception as exc:  # results are stored; tracking can be redone with `restorebench log`
        summary.tracking_error = f"{type(exc).__name__}: {exc}"
        log.warning("could not log to MLflow at %s: %s", summary.tracking_uri, exc)
