"""The results of finished runs, for ``report``, ``compare`` and ``log``: one run directory
(or a Parquet file or folder of them), or several runs of one suite as one set, each unit
once and in bounded memory; runs scored under different protocols are refused."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError
from restorebench.results.dataset import ResultsSet
from restorebench.run.store import RESULTS, RunDir, shard_name
from restorebench.run.tables import check_results_table, read_schema


def read_results(path: str | Path) -> ResultsSet:
    """The results of a run directory or a Parquet file (or a folder of them); anything else
    (a corrupt file, a table of other columns) is a :class:`UserError` naming the file."""
    path = Path(path)
    if (path / "run.json").is_file() or (path / "shards").is_dir() or (path / RESULTS).exists():
        return deduplicated(RunDir(path).results_set(read_only=True))
    if path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            raise UserError(f"{path} is not a run directory (no {RESULTS})")
        for file in files:
            check_results_table(read_schema(file), file)
        return deduplicated(ResultsSet(files))
    if path.suffix == ".parquet" and path.is_file():
        check_results_table(read_schema(path), path)
        return ResultsSet([path], deduplicated=True)
    raise UserError(f"{path}: not a run directory or a results .parquet file")


def run_dirs_in(path: Path) -> list[Path]:
    """The run directories a path names: itself, or the run directories (anything holding a
    ``run.json``) below a folder that is not one, in name order."""
    if (path / "run.json").is_file() or not path.is_dir():
        return [path]
    found = sorted({p.parent for p in path.rglob("run.json")})
    return found or [path]


def read_runs(paths: Sequence[str | Path]) -> ResultsSet:
    """The results of several runs of one suite (split by image slices or by task: N Ray Jobs)
    as one set: each unit once (its ok row if any run has one), refused when the runs'
    protocols differ (seeds, metric versions, method versions), with the list of what does.

    One path is :func:`read_results` of it; a folder that holds run directories is all of them.
    """
    runs = [run for path in paths for run in run_dirs_in(Path(path))]
    if len(runs) == 1:
        return read_results(runs[0])
    sets = [read_results(run) for run in runs]
    differences = protocol_differences(runs, sets)
    if differences:
        raise UserError(
            f"these {len(runs)} runs were not scored under one protocol, so one leaderboard of them would mix "
            "numbers that do not compare:\n  " + "\n  ".join(differences[:12]),
            hint="report or compare runs of one suite, with the same seed, code and checkpoints",
        )
    files = [f for results in sets for f in results.files]
    same_schema = all(r.same_schema for r in sets)
    if not _overlap(files):  # runs split by images or by task: each unit in one run
        return ResultsSet(files, deduplicated=True, same_schema=same_schema)
    return deduplicated(ResultsSet(files, prefer_ok=True, same_schema=same_schema))


def deduplicated(results: ResultsSet) -> ResultsSet:
    """``results`` with each (unit, metric) once, as a temporary compacted copy when its files
    may hold one twice (an interrupted run's shards, overlapping runs): in bounded memory,
    where DuckDB's window over whole rows ran out of its 48 MB at a million rows."""
    if results.deduplicated or not results.files:
        return results
    from restorebench.run.compaction import compact_parts

    folder = tempfile.TemporaryDirectory(prefix="restorebench-results-")
    files = [Path(f) for f in results.files]
    written = compact_parts(files, Path(folder.name), name=shard_name, prefer_ok=results.prefer_ok)
    return ResultsSet(written, deduplicated=True, same_schema=True, holds=folder)


def _overlap(files: Sequence[str]) -> bool:
    """Whether a (unit, metric) has rows in more than one of these compacted files (an
    aggregate, which DuckDB spills; a window would sort whole rows)."""
    from restorebench.results.dataset import connect, sql_list

    con = connect(threads=1)
    try:
        query = f"SELECT 1 FROM read_parquet({sql_list(files)}) GROUP BY unit_id, metric HAVING count(*) > 1 LIMIT 1"
        return bool(con.execute(query).fetchall())
    finally:
        con.close()


def protocol_differences(runs: Sequence[Path], sets: Sequence[ResultsSet]) -> list[str]:
    """What differs between runs that one leaderboard would mix: the seed of their suites, the
    version of a metric, the version or checkpoints of a method (one line each)."""
    from restorebench.results.dataset import connect

    seen: dict[str, dict[Any, list[str]]] = {}

    def note(what: str, value: Any, run: Path) -> None:
        seen.setdefault(what, {}).setdefault(value, []).append(run.name or str(run))

    for run, results in zip(runs, sets):
        spec = run / "spec.yaml"
        if spec.is_file():
            note("seed", RunDir(run).stored_spec().get("seed"), run)
        con = connect()
        try:
            view = results.view(con)
            for metric, version in con.execute(f"SELECT DISTINCT metric, metric_version FROM {view}").fetchall():
                note(f"metric `{metric}` version", version, run)
            for method, version, checkpoint in con.execute(
                f"SELECT DISTINCT method, method_version, coalesce(method_checkpoint, '') FROM {view}"
            ).fetchall():
                note(f"method {method} version", version, run)
                note(f"method {method} checkpoints", checkpoint or "(none)", run)
        finally:
            con.close()
    lines = []
    for what, values in seen.items():
        if len(values) > 1:
            lines.append(f"{what}: " + "; ".join(f"{v} in {', '.join(r)}" for v, r in values.items()))
    return lines
