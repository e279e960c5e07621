"""Run directories: create, resume, append result shards, compact them into the results dataset.

A run directory holds ``spec.yaml`` (the resolved suite), ``run.json`` (ids), the
result shards written as batches land (each to a temporary name, then renamed, so a
crash loses at most the units in flight), ``results.parquet/`` (the compacted dataset: one
folder per task, read out of core; a single file in run directories of earlier versions,
still read) and ``samples/``. The table itself (columns, schema, Parquet I/O) is
:mod:`~restorebench.run.tables`; reading results, :mod:`restorebench.results.dataset`.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError
from restorebench.results.dataset import ResultsSet
from restorebench.run.compaction import ROW_GROUP_ROWS, Keep
from restorebench.run.tables import REQUIRED, check_results_table, read_schema, write_parquet_atomic

log = logging.getLogger(__name__)

RESULTS = "results.parquet"  # the compacted dataset: a folder, one subfolder per task
MERGE_EVERY = 64  # shards written before they are merged into one
LEGACY = ".results.parquet.legacy"  # an earlier version's single results file, while it is merged


def shard_name() -> str:
    """Shard names sort in the order they were written (the latest row of a unit wins)."""
    return f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


class RunDir:
    """A run directory: create, resume, append result shards, compact."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.shards = self.path / "shards"
        self.samples = self.path / "samples"
        self.outputs = self.path / "outputs"  # restored images, with --save-outputs
        self._schemas: set[tuple[str, ...]] = set()  # the column lists of the parts last read
        self._written: list[Path] = []  # shards this process wrote since their last merge

    @classmethod
    def open(cls, path: str | Path, spec: dict[str, Any], *, resume: bool) -> RunDir:
        """Create a fresh run directory, or reopen one with ``resume``.

        Never writes into a directory that is neither empty nor a run directory, and
        ``resume`` refuses a run directory of another suite (its results would be lost).
        """
        run = cls(Path(path).absolute())
        if run.path.exists() and not run.path.is_dir():
            raise UserError(f"--out {run.path} is a file, not a directory", hint="give a new or empty directory")
        is_run = (run.path / "run.json").is_file()
        if run.path.is_dir() and not is_run and any(run.path.iterdir()):
            raise UserError(
                f"--out {run.path} is not empty and is not a restorebench run directory (it has no run.json); "
                "nothing was written into it",
                hint="choose a new or empty directory for --out",
            )
        if resume:
            if not is_run:
                raise UserError(
                    f"--resume: {run.path} is not a run directory to resume (no run.json)",
                    hint="drop --resume to start a new run there",
                )
            run._check_same_suite(spec)
        elif run.has_results():
            raise UserError(
                f"run directory {run.path} already holds results",
                hint="pass --resume to complete it, or choose another --out",
            )
        info = run.info() if is_run else {}
        run.shards.mkdir(parents=True, exist_ok=True)
        run.samples.mkdir(exist_ok=True)
        import yaml

        (run.path / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        if not info:
            info = {"run_id": uuid.uuid4().hex, "created": datetime.now(timezone.utc).isoformat()}
            run.write_info(info)
        return run

    def has_results(self) -> bool:
        return (self.path / "results.parquet").exists() or any(self.shards.glob("*.parquet"))

    def stored_spec(self) -> dict[str, Any]:
        """The resolved suite this run directory was created for (its ``spec.yaml``)."""
        import yaml

        path = self.path / "spec.yaml"
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{self.path} has no spec.yaml: it is not a complete run directory") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise UserError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
        if not isinstance(spec, dict) or "tasks" not in spec:
            raise UserError(f"{path} is not a restorebench suite (no tasks)")
        return spec

    def _check_same_suite(self, spec: dict[str, Any]) -> None:
        stored = self.stored_spec()
        differences = spec_differences(stored, spec)
        if differences:
            raise UserError(
                f"--resume: {self.path} was started with another suite; resuming would replace its results:\n  "
                + "\n  ".join(differences),
                hint="resume with the options it was started with (see its spec.yaml), or choose another --out",
            )

    def info(self) -> dict[str, Any]:
        """``run.json``: the run id and the MLflow ids; an unreadable one is a UserError naming it."""
        path = self.path / "run.json"
        if not path.exists():
            return {}
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise UserError(
                f"{path} is not valid JSON ({exc})", hint="restore it, or start a new run with another --out"
            ) from None
        if not isinstance(info, dict) or not isinstance(info.get("run_id"), str):
            raise UserError(
                f"{path} has no run_id: it is not a restorebench run.json",
                hint="restore it, or start a new run with another --out",
            )
        return info

    def write_info(self, info: dict[str, Any]) -> None:
        tmp = self.path / ".run.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        os.replace(tmp, self.path / "run.json")

    @property
    def run_id(self) -> str:
        return self.info()["run_id"]

    def append(self, rows: Sequence[dict[str, Any]]) -> None:
        """Persist one batch of rows as a new shard (atomic). Every :data:`MERGE_EVERY` shards
        this process wrote are merged into one (written, then the small ones removed: a crash in
        between leaves rows twice, which a resume reads once), so a run of a million units
        leaves a few hundred files, not fifteen thousand, for the final compaction to read."""
        if not rows:
            return
        path = self.shards / shard_name()
        write_parquet_atomic(rows, path)
        self._written.append(path)
        if len(self._written) >= MERGE_EVERY:
            self._merge_written()

    def _merge_written(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from restorebench.results.schema import conform
        from restorebench.run.tables import system_allocator, trim_heap

        with system_allocator():
            table = pa.concat_tables([conform(pq.read_table(p, use_threads=False)) for p in self._written])
            target = self.shards / shard_name()
            tmp = target.with_name(f".{target.name}.tmp")
            pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS)  # compaction reads a row group whole
            os.replace(tmp, target)
            del table
        for part in self._written:
            part.unlink(missing_ok=True)
        self._written = []
        trim_heap()

    @property
    def dataset(self) -> Path:
        """``results.parquet``: the compacted results, a folder of Parquet files, one folder per
        task (a single file in run directories of earlier versions)."""
        return self.path / RESULTS

    def _parts(self, *, read_only: bool = False) -> list[Path]:
        """The stored tables, oldest first: the compacted dataset's files (or an earlier
        version's single file), then the shards in the order they were written. A shard cut
        short by a crash is set aside (renamed ``.corrupt``: a resume computes its units
        again); ``read_only`` (a report, a compare) leaves it in place and says its rows are
        left out."""
        parts = [p for p in (self.path / LEGACY, self.dataset) if p.is_file()]
        if self.dataset.is_dir():
            parts += sorted(self.dataset.glob("*/*.parquet"))
        self._schemas = {_columns(part) for part in parts}
        for shard in sorted(self.shards.glob("part-*.parquet")):
            try:
                self._schemas.add(_columns(shard))
            except UserError as exc:
                if read_only:
                    log.warning("leaving out %s (unreadable; --resume recomputes its units): %s", shard.name, exc)
                    continue
                log.warning("skipping %s (its units will be computed again): %s", shard.name, exc)
                shard.rename(shard.with_name(shard.name + ".corrupt"))
                continue
            parts.append(shard)
        return parts

    def results_set(self, *, read_only: bool = False) -> ResultsSet:
        """Every row so far (compacted dataset plus shards) as a :class:`ResultsSet`: each unit
        and metric once, its latest row (read out of core; ``.frame()`` for a small run)."""
        parts = self._parts(read_only=read_only)
        compacted = [p for p in parts if p.parent.parent == self.dataset]
        single = len(compacted) == len(parts) and len({p.parent for p in compacted}) == len(compacted)
        return ResultsSet(parts, deduplicated=single, same_schema=len(self._schemas) <= 1)

    def load(self, *, read_only: bool = False):
        """All rows so far as a pandas frame (small runs, tests): see :meth:`results_set`."""
        return self.results_set(read_only=read_only).frame()

    def completed_units(self) -> set[str]:
        """Ids of units that finished (a small run's; a large one's go to an index: :meth:`mark_done`)."""
        done: set[str] = set()
        for batch in self._done_batches():
            done.update(batch)
        return done

    def mark_done(self, index: Any) -> int:
        """Record in ``index`` (a :class:`~restorebench.run.index.RunIndex`) the units this run
        directory holds done, a row group at a time; returns how many. Failed ones are retried on
        resume; a unit with an ``ok`` (or ``skipped``) row ran (a metric may have failed)."""
        count = 0
        for batch in self._done_batches():
            count += index.mark_done(batch)
        return count

    def _done_batches(self):
        """The ids of the units with an ``ok`` or ``skipped`` row, a row group's at a time (pyarrow
        alone: DuckDB loaded here stayed in the driver's memory for the whole resumed run)."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from restorebench.run.tables import system_allocator

        ran = pa.array(["ok", "skipped"])
        with system_allocator():
            for part in self._parts():
                file = pq.ParquetFile(part)
                for group in range(file.num_row_groups):
                    table = file.read_row_group(group, columns=["unit_id", "status"], use_threads=False)
                    done = pc.unique(table.column("unit_id").filter(pc.is_in(table.column("status"), ran)))
                    if len(done):
                        yield done.to_pylist()

    def compact(self, keep_units: Iterable[str] | Keep | None = None, *, fresh: bool = False) -> ResultsSet:
        """Merge the stored rows (the dataset's files, the shards) into one new file per task of
        ``results.parquet/`` and remove the old ones; returns the compacted :class:`ResultsSet`.
        Each unit and metric once (its latest row); ``keep_units``: only these units' rows stay
        (ids, or a function that picks them from a list, e.g. the plan's index when a resumed
        run's code changed); ``fresh``: the shards are one invocation's, each unit once (no
        resume), so rows are copied without looking for a later one. Out of core
        (:mod:`~restorebench.run.compaction`); a crash in between leaves old and new files,
        which readers deduplicate."""
        from restorebench.run.compaction import compact_parts

        legacy = self.path / LEGACY
        if self.dataset.is_file():  # an earlier version's single file: kept aside until merged
            self.dataset.replace(legacy)
        parts = self._parts()
        if not parts:
            return ResultsSet([], deduplicated=True)
        keep: Keep | None = None
        if callable(keep_units):
            keep = keep_units
        elif keep_units is not None:
            chosen = set(keep_units)

            def keep(ids: Sequence[str]) -> set[str]:
                return chosen.intersection(ids)

        self.dataset.mkdir(exist_ok=True)
        written = compact_parts(parts, self.dataset, keep=keep, deduplicate=not fresh, name=shard_name)
        for part in parts:
            if part not in written:
                part.unlink(missing_ok=True)
        for folder in self.dataset.iterdir():
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return ResultsSet(written, deduplicated=True, same_schema=True)

    def results(self) -> ResultsSet:
        """The compacted dataset (after :meth:`compact`)."""
        return ResultsSet(sorted(self.dataset.glob("*/*.parquet")), deduplicated=True, same_schema=True)


def _columns(part: Path) -> tuple[str, ...]:
    """A stored table's columns (its footer), checked to be a results table's."""
    import pyarrow.parquet as pq

    try:
        names = tuple(pq.read_schema(part).names)
    except (OSError, ValueError):
        check_results_table(read_schema(part), part)  # says which file and why
        raise
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        check_results_table(read_schema(part), part)
    return names


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two resolved suites, one line per key (``[]``: the same suite)."""
    out = [
        f"{key}: {old.get(key)!r} then, {new.get(key)!r} now"
        for key in ("name", "seed", "limit", "shard")
        if old.get(key) != new.get(key)
    ]
    before, after = old.get("tasks") or [], new.get("tasks") or []
    if len(before) != len(after):
        out.append(f"tasks: {[b.get('task') for b in before]} then, {[b.get('task') for b in after]} now")
        return out
    for i, (a, b) in enumerate(zip(before, after)):
        for key in ("task", "datasets", "degradations", "methods", "metrics"):
            if a.get(key) != b.get(key):
                out.append(f"tasks[{i}] ({a.get('task')}).{key}: {a.get(key)} then, {b.get(key)} now")
    return out
