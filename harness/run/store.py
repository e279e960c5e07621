"""Run directories: create, resume, append result shards, compact them into the results table.

A run directory holds ``spec.yaml`` (the resolved suite), ``run.json`` (ids), the
result shards written as batches land (each to a temporary name, then renamed, so a
crash loses at most the units in flight), ``results.parquet`` (the compacted table) and
``samples/``. The table itself (columns, schema, Parquet I/O) is :mod:`~restorebench.run.tables`.
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
from restorebench.run.tables import (
    COLUMNS,
    check_results_table,
    conform,
    read_parquet,
    read_schema,
    read_table,
    schema,
    system_allocator,
    trim_heap,
    write_parquet_atomic,
)

log = logging.getLogger(__name__)

ROW_GROUP_ROWS = 4096  # rows per row group of results.parquet (bounded by what compaction holds)


def _shard_name() -> str:
    """Shard names sort in the order they were written (the latest row of a unit wins)."""
    return f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


class RunDir:
    """A run directory: create, resume, append result shards, compact."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.shards = self.path / "shards"
        self.samples = self.path / "samples"
        self.outputs = self.path / "outputs"  # restored images, with --save-outputs

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
        """Persist one batch of rows as a new shard (atomic)."""
        if rows:
            write_parquet_atomic(rows, self.shards / _shard_name())

    def _parts(self, *, read_only: bool = False) -> list[Path]:
        """The stored tables, oldest first: ``results.parquet``, then the shards in the
        order they were written. A shard cut short by a crash is set aside (renamed
        ``.corrupt``: a resume computes its units again); ``read_only`` (a report, a compare)
        leaves it in place and says its rows are left out."""
        parts = []
        main = self.path / "results.parquet"
        if main.exists():
            check_results_table(read_schema(main), main)
            parts.append(main)
        for shard in sorted(self.shards.glob("part-*.parquet")):
            try:
                check_results_table(read_schema(shard), shard)
            except UserError as exc:
                if read_only:
                    log.warning("leaving out %s (unreadable; --resume recomputes its units): %s", shard.name, exc)
                    continue
                log.warning("skipping %s (its units will be computed again): %s", shard.name, exc)
                shard.rename(shard.with_name(shard.name + ".corrupt"))
                continue
            parts.append(shard)
        return parts

    def load(self, *, read_only: bool = False):
        """All rows so far (compacted table plus shards), latest row per unit and metric;
        ``read_only``: damaged shards are left out, not set aside (see :meth:`_parts`)."""
        import pandas as pd

        frames = [check_results_table(read_parquet(p), p) for p in self._parts(read_only=read_only)]
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        frame = pd.concat(frames, ignore_index=True)
        return frame.drop_duplicates(["unit_id", "metric"], keep="last").reset_index(drop=True)

    def completed_units(self) -> set[str]:
        """Ids of units that finished successfully (failed ones are retried on resume)."""
        done: set[str] = set()
        for part in self._parts():
            table = read_table(part, ["unit_id", "status"])
            units, status = table.column("unit_id").to_pylist(), table.column("status").to_pylist()
            ok = {u for u, st in zip(units, status) if st in ("ok", "skipped")}  # a unit that ran (a metric may fail)
            done = (done - set(units)) | ok  # a later part decides a unit again
        return done

    def compact(self, keep_units: Iterable[str] | None = None):
        """Merge the shards into ``results.parquet`` and remove them; returns the table.

        Streams: the first pass reads only the (unit, metric) keys to find each key's latest
        row, the second appends each part's surviving rows to the new file as a row group,
        so the driver holds at most ``ROW_GROUP_ROWS`` rows besides the result it returns.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts = self._parts()
        keep = set(keep_units) if keep_units is not None else None
        latest: dict[tuple[str, str], tuple[int, int]] = {}
        for i, part in enumerate(parts):
            keys = read_table(part, ["unit_id", "metric"])
            for j, key in enumerate(zip(keys.column("unit_id").to_pylist(), keys.column("metric").to_pylist())):
                latest[key] = (i, j)
        rows_of: dict[int, list[int]] = {}
        for key, (i, j) in latest.items():
            if keep is None or key[0] in keep:
                rows_of.setdefault(i, []).append(j)
        del latest
        target = self.path / "results.parquet"
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        with system_allocator(), pq.ParquetWriter(tmp, schema()) as writer:
            pending, rows = [], 0
            for i, part in enumerate(parts):
                if i in rows_of:
                    table = conform(read_table(part, None))
                    pending.append(table.take(pa.array(sorted(rows_of[i]), pa.int64())))
                    rows += pending[-1].num_rows
                if pending and (rows >= ROW_GROUP_ROWS or i == len(parts) - 1):
                    # a few large row groups: reading a file of many small ones costs the
                    # reader ~5 KB per column chunk, which grew driver memory with the run
                    writer.write_table(pa.concat_tables(pending).combine_chunks())
                    pending, rows = [], 0
        os.replace(tmp, target)
        for part in parts:
            if part != target:
                part.unlink()
        trim_heap()
        return self.results()

    def results(self):
        """The compacted table as pandas (after :meth:`compact`)."""
        main = self.path / "results.parquet"
        return check_results_table(read_parquet(main), main)


def spec_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two resolved suites, one line per key (``[]``: the same suite)."""
    out = [
        f"{key}: {old.get(key)!r} then, {new.get(key)!r} now"
        for key in ("name", "seed", "limit")
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


def read_results(path: str | Path):
    """The results table of a run directory or a Parquet file; anything else (a corrupt
    file, a table of other columns) is a :class:`UserError` naming the file."""
    path = Path(path)
    if path.is_dir():
        if not (path / "results.parquet").exists() and not (path / "shards").exists():
            raise UserError(f"{path} is not a run directory (no results.parquet)")
        return RunDir(path).load(read_only=True)
    if path.suffix == ".parquet" and path.is_file():
        return check_results_table(read_parquet(path), path)
    raise UserError(f"{path}: not a run directory or a results .parquet file")
