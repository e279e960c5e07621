"""One ``restorebench run``: suite -> plan (work units) -> executor -> record (store) -> tracking.

The command line calls :func:`run_suite`; tests and notebooks may call it directly.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from restorebench.core.errors import Interrupted, UserError
from restorebench.core.refs import slug
from restorebench.core.suite import ResolvedSuite, narrow, resolve
from restorebench.run.plan import duplicates_message, load_suite, make_plan
from restorebench.run.record import Progress

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Everything ``restorebench run`` takes."""

    suite: str | None = None
    tasks: Sequence[str] = ()
    datasets: Sequence[str] = ()
    degradations: Sequence[str] = ()
    methods: Sequence[str] = ()
    metrics: Sequence[str] = ()  # replaces every block's metrics
    out: str | Path | None = None  # a folder, or a filesystem URI (s3://bucket/runs/x: see run/mirror.py)
    executor: str = "ray"
    address: str | None = None
    num_cpus: int | None = None
    tracking_uri: str | None = None
    tracking: bool = True
    seed: int | None = None
    resume: bool = False
    use_cache: bool = True
    cache_path: Path | None = None
    limit: int | None = None  # the first N images of every source
    shard: str | None = None  # "I/N": every N-th image of every source from the I-th (0-based), one job of N
    save_outputs: bool = False  # every restored image as a PNG under RUN_DIR/outputs (units computed, not cached)


@dataclass
class RunSummary:
    """What a run did, for the CLI to print and tests to check."""

    run_dir: Path
    run_id: str
    results_set: Any  # restorebench.results.dataset.ResultsSet: the run's results, read out of core
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
    skipped: list[str] = field(default_factory=list)  # units with nothing to score, and why (the first 1,000)
    skipped_count: int = 0
    run_uri: str | None = None  # where the run directory lives when --out is a URI (run_dir is its staging copy)
    board: Any = None  # the results' leaderboard (restorebench.results.board.Leaderboard), built once
    _frame: Any = field(default=None, repr=False)

    @property
    def results(self) -> Any:
        """The run's results as a pandas frame (read on first use: for small runs and tests;
        a large run's are queried out of core through :attr:`results_set` and :attr:`board`)."""
        if self._frame is None and self.results_set is not None:
            self._frame = self.results_set.frame()
        return self._frame

    @property
    def scored(self) -> int:
        """Units whose method ran and gave scores (none: the run scored nothing)."""
        counts = self.board.counts if self.board is not None else {}
        return int(counts.get("units", 0)) - int(counts.get("failed", 0))

    @property
    def location(self) -> str:
        """The run directory as the user names it: its URI, or its absolute path."""
        return self.run_uri or str(self.run_dir)


EXECUTORS = ("ray", "local")


def check_options(options: RunOptions) -> None:
    """Options that cannot work are errors before anything starts (``--num-cpus 0`` hung Ray)."""
    if options.executor not in EXECUTORS:
        raise UserError(f"unknown executor {options.executor!r}; valid choices: {', '.join(EXECUTORS)}")
    if options.limit is not None and options.limit < 1:
        raise UserError(f"--limit must be at least 1, got {options.limit}")
    if options.shard is not None:
        parse_shard(options.shard)
    if options.num_cpus is not None and options.num_cpus < 1:
        raise UserError(f"--num-cpus must be at least 1, got {options.num_cpus}")
    if options.executor == "local" and options.address:
        raise UserError("--address needs --executor ray")


def run_suite(options: RunOptions, progress: Progress | None = None) -> RunSummary:
    """Run a suite end to end; results are stored as they land."""
    from restorebench.data.storage import is_uri
    from restorebench.plugins import load_plugins
    from restorebench.results.board import build_leaderboard
    from restorebench.run.index import RunIndex
    from restorebench.run.mirror import Mirror
    from restorebench.run.store import RunDir
    from restorebench.run.tables import trim_heap

    check_options(options)
    load_plugins()
    started = time.perf_counter()
    suite, origin = load_suite(options.suite)
    if options.tasks or options.datasets or options.degradations or options.methods or options.metrics:
        suite = narrow(
            suite,
            tasks=options.tasks,
            datasets=options.datasets,
            degradations=options.degradations,
            methods=options.methods,
            metrics=options.metrics,
        )
    if options.seed is not None:
        suite = suite.model_copy(update={"seed": options.seed})
    resolved = resolve(suite, origin=origin)
    shard = parse_shard(options.shard) if options.shard else None
    plan = make_plan(resolved, limit=options.limit, save_outputs=options.save_outputs, shard=shard)

    if options.executor == "ray":
        from restorebench.run.ray_runtime import check_address

        check_address(options.address)  # before the run folder is made
    out = options.out or Path("runs") / f"{slug(resolved.name)}-{datetime.now():%Y%m%d-%H%M%S}"
    mirror = Mirror(str(out)) if is_uri(str(out)) else None
    if mirror is not None:
        out = mirror.pull()
    spec = resolved.to_dict() | ({"limit": options.limit} if options.limit else {})
    spec |= {"shard": options.shard} if options.shard else {}
    run_dir = RunDir.open(out, spec, resume=options.resume)
    if options.out is None and in_ray_job():
        log.warning(
            "running as a Ray Job: the run directory is %s on the node that runs the job; "
            "pass --out with a folder on storage you can read (and --tracking-uri for MLflow)",
            run_dir.path,
        )
    summary = RunSummary(run_dir=run_dir.path, run_id=run_dir.run_id, results_set=None, units=plan.total)
    summary.run_uri = mirror.uri if mirror else None
    index = RunIndex().open()
    try:
        closed = _execute(options, plan, run_dir, index, summary, mirror, progress)
    except BaseException:
        index.close()
        raise
    try:
        try:
            if index.duplicates:
                log.warning("%s", duplicates_message(resolved, index.duplicates, index.same_images))
            keep = index.planned_among if options.resume else None
            summary.results_set = run_dir.compact(keep_units=keep, fresh=not options.resume)
        finally:
            index.close()
        trim_heap()  # what the index and the compaction freed goes back before the leaderboard's engine starts
        summary.board = build_leaderboard(summary.results_set)
        summary.wall_s = time.perf_counter() - started
        if options.tracking:
            _track(options, resolved, run_dir, summary)
        if mirror is not None:
            try:
                mirror.push()
            except UserError as exc:
                raise UserError(
                    f"the run finished but its run directory could not be written to {mirror.uri}: {exc.args[0]}",
                    hint=f"its results are in {mirror.local}; copy that folder to {mirror.uri}",
                ) from None
    finally:
        closed()
    return summary


def _execute(
    options: RunOptions, plan: Any, run_dir: Any, index: Any, summary: RunSummary, mirror: Any, progress: Any
) -> Any:
    """Compute what the run directory and the cache do not hold, storing results as they land;
    returns a function that waits for the executor's shutdown (it runs in the background)."""
    from restorebench.run.batches import stream_batches
    from restorebench.run.cache import NoCache, ResultCache
    from restorebench.run.executors import close_in_background, make_executor
    from restorebench.run.record import Recorder
    from restorebench.run.stream import UnitStream

    record = Recorder(plan, run_dir, run_id=summary.run_id, progress=progress)
    cache = (ResultCache(options.cache_path) if options.use_cache else NoCache()).open()
    # a cached result has no image: with --save-outputs every unit is computed (and cached)
    stream = UnitStream(plan, index, record, cache, resume=options.resume, use_cache=not options.save_outputs)
    closed = _nothing_to_wait_for
    try:
        record.start()
        if options.resume:
            run_dir.mark_done(index)
        units = iter(stream)
        first = next(units, None)  # a run whose every unit is stored or cached starts no executor
        if first is not None:
            executor = make_executor(
                options.executor,
                address=options.address,
                num_cpus=options.num_cpus,
                resume_hint=f"; the units done so far are stored: complete the run with --resume --out {summary.location}",
            ).open()
            try:
                batches = stream_batches(
                    itertools.chain([first], units), plan.methods, executor.parallelism(), total=plan.total
                )
                for results in executor.execute(batches, plan.methods):
                    stream.landed(results)
                    summary.computed += sum(r.status == "ok" for r in results)
                    if mirror is not None:
                        mirror.maybe_push()
            finally:  # Ray's shutdown waits on its processes while the driver compacts and logs
                closed = close_in_background(executor)
    except KeyboardInterrupt:
        closed()
        _push_what_landed(mirror)
        raise Interrupted(
            f"interrupted: {record.finished} of {plan.total} units are stored in {summary.location}",
            hint=f"complete the run with the same options plus --resume --out {summary.location}",
        ) from None
    except BaseException:
        closed()
        _push_what_landed(mirror)
        raise
    finally:
        cache.close()
        summary.failed, summary.errors, summary.skipped = record.failed, record.errors, record.skipped
        summary.skipped_count = record.skipped_count
        summary.resumed, summary.from_cache = stream.resumed, stream.from_cache
        summary.units = index.count
    return closed


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/8"`` -> ``(3, 8)``: the fourth of eight jobs that split every dataset's images."""
    index, sep, count = str(text).partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not sep or n < 1 or not 0 <= i < n:
        raise UserError(
            f"--shard {text!r} is not I/N with 0 <= I < N",
            hint="e.g. --shard 0/8 ... --shard 7/8 for eight jobs that split the images",
        )
    return i, n


def _nothing_to_wait_for() -> None:
    return None


def _push_what_landed(mirror: Any) -> None:
    """After a failure, what landed reaches the URI (for ``--resume``); a push error is logged,
    not raised over the failure itself."""
    if mirror is None:
        return
    try:
        mirror.push()
    except Exception as exc:  # broad: any push error is logged, never raised over the failure being raised
        log.warning("could not push the run directory to %s: %s (its copy is in %s)", mirror.uri, exc, mirror.local)


def _track(options: RunOptions, resolved: ResolvedSuite, run_dir, summary: RunSummary) -> None:
    from restorebench import track as tracking

    summary.tracking_uri = tracking.resolve_uri(options.tracking_uri)
    try:
        summary.mlflow_run_id = tracking.log_run(
            run_dir,
            summary.results_set,
            resolved.to_dict(),
            board=summary.board,
            uri=summary.tracking_uri,
            extra={"executor": options.executor, "wall_s": summary.wall_s, "run_dir": summary.location},
        )
    except Exception as exc:  # broad: recorded and warned; `restorebench log` can log the stored results later
        summary.tracking_error = f"{type(exc).__name__}: {exc}"
        log.warning("could not log to MLflow at %s: %s", summary.tracking_uri, exc)


def in_ray_job() -> bool:
    """Whether this process is the entrypoint of a ``ray job submit`` (whose working directory
    is the head node's, not the submitter's)."""
    import os

    return "job_submission_id" in os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "")
