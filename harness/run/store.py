"""Run directories, the tidy results table, resume, and the results cache.

A run directory holds ``spec.yaml`` (the resolved suite), ``run.json`` (ids), the
result shards written as batches land (each to a temporary name, then renamed, so a
crash loses at most the units in flight), ``results.parquet`` (the compacted table) and
``samples/``. The results cache is a SQLite file keyed by unit id, shared by all runs.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError
from restorebench.run.units import UnitResult, WorkUnit

log = logging.getLogger(__name__)

COLUMNS = [
    "run_id",
    "unit_id",
    "task",
    "dataset",
    "image",
    "image_hash",
    "degradation",
    "method",
    "method_kind",
    "method_version",
    "method_checkpoint",
    "non_blind",
    "method_params",
    "metric",
    "metric_version",
    "value",
    "runtime_s",
    "megapixels",
    "device",
    "node",
    "status",
    "error",
    "cached",
    "dataset_check",  # a dataset card's verdict on the copy ("" for other sources)
    "published",  # the value published for this (dataset, degradation, method, metric), if any
    "published_source",
]


def rows_for(
    unit: WorkUnit,
    result: UnitResult,
    *,
    run_id: str,
    method: dict[str, Any],
    metric_versions: dict[str, str],
    dataset_check: str = "",
    published: dict[str, tuple[float, str]] | None = None,
) -> list[dict[str, Any]]:
    """Tidy rows (one per metric) for one unit's result.

    ``method`` holds the method's labels: ``method`` (its reference), ``method_kind``
    and ``method_version``; ``published`` the literature's value per metric, with its source.
    """
    published = published or {}
    base = {
        "run_id": run_id,
        "unit_id": unit.unit_id,
        "task": unit.task,
        "dataset": unit.image.dataset,
        "image": unit.image.key,
        "image_hash": unit.image.content_hash,
        "degradation": unit.degradation,
        **method,
        "runtime_s": result.runtime_s,
        "megapixels": result.megapixels,
        "device": result.device,
        "node": result.node,
        "status": result.status,
        "error": result.error,
        "cached": result.cached,
        "dataset_check": dataset_check,
    }
    rows = []
    oracles = [(f"oracle_{m}", m) for m in unit.metrics if f"oracle_{m}" in result.metrics]
    for m, version_of in [(m, m) for m in unit.metrics] + oracles:
        value = result.metrics.get(m, float("nan"))
        row = {**base, "metric": m, "metric_version": metric_versions[version_of], "value": value}
        if m in published:
            row.update(published=published[m][0], published_source=published[m][1])
        if m in result.metric_errors:
            row.update(status="failed", error=f"{unit.image.key}: metric {m}: {result.metric_errors[m]}")
        rows.append(row)
    return rows


_FLOATS = {"method_params", "value", "runtime_s", "megapixels", "published"}
_BOOLS = {"non_blind", "cached"}


def schema() -> Any:
    """The results table's Arrow schema: every shard and ``results.parquet`` share it, so
    compaction streams them into one file without reading them all."""
    import pyarrow as pa

    kind = {**dict.fromkeys(_FLOATS, pa.float64()), **dict.fromkeys(_BOOLS, pa.bool_())}
    return pa.schema([(c, kind.get(c, pa.string())) for c in COLUMNS])


def _conform(table: Any) -> Any:
    """A table of this or an older version in :func:`schema` (missing columns null)."""
    import pyarrow as pa

    target = schema()
    columns = []
    for f in target:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=target)


def write_parquet_atomic(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write rows to ``path`` (in :func:`schema`) via a temporary file and a rename."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {c: [r.get(c) for r in rows] for c in COLUMNS}
    for c in _FLOATS:
        columns[c] = [float("nan") if v is None else float(v) for v in columns[c]]
    table = pa.Table.from_pydict(columns, schema=schema())
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


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

    def _parts(self) -> list[Path]:
        """The stored tables, oldest first: ``results.parquet``, then the shards in the
        order they were written; a shard cut short by a crash is set aside (its units are
        computed again)."""
        parts = []
        main = self.path / "results.parquet"
        if main.exists():
            check_results_table(_read_schema(main), main)
            parts.append(main)
        for shard in sorted(self.shards.glob("part-*.parquet")):
            try:
                check_results_table(_read_schema(shard), shard)
            except UserError as exc:
                log.warning("skipping %s (its units will be computed again): %s", shard.name, exc)
                shard.rename(shard.with_name(shard.name + ".corrupt"))
                continue
            parts.append(shard)
        return parts

    def load(self):
        """All rows so far (compacted table plus shards), latest row per unit and metric."""
        import pandas as pd

        frames = [check_results_table(read_parquet(p), p) for p in self._parts()]
        if not frames:
            return pd.DataFrame(columns=COLUMNS)
        frame = pd.concat(frames, ignore_index=True)
        return frame.drop_duplicates(["unit_id", "metric"], keep="last").reset_index(drop=True)

    def completed_units(self) -> set[str]:
        """Ids of units that finished successfully (failed ones are retried on resume)."""
        done: set[str] = set()
        for part in self._parts():
            table = _read_table(part, ["unit_id", "status"])
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
            keys = _read_table(part, ["unit_id", "metric"])
            for j, key in enumerate(zip(keys.column("unit_id").to_pylist(), keys.column("metric").to_pylist())):
                latest[key] = (i, j)
        rows_of: dict[int, list[int]] = {}
        for key, (i, j) in latest.items():
            if keep is None or key[0] in keep:
                rows_of.setdefault(i, []).append(j)
        del latest
        target = self.path / "results.parquet"
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        with _system_allocator(), pq.ParquetWriter(tmp, schema()) as writer:
            pending, rows = [], 0
            for i, part in enumerate(parts):
                if i in rows_of:
                    table = _conform(_read_table(part, None))
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
        _trim_heap()
        return self.results()

    def results(self):
        """The compacted table as pandas (after :meth:`compact`)."""
        main = self.path / "results.parquet"
        return check_results_table(read_parquet(main), main)


def _read_schema(path: Path) -> Any:
    """An empty frame with the columns of a Parquet file (its footer only)."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path} is not a readable Parquet file ({first})") from None
    return pd.DataFrame(columns=names)


@contextmanager
def _system_allocator():
    """Arrow allocates from the system allocator while the store reads and merges shards:
    its default (jemalloc) kept the decode buffers, so driver memory grew with the run
    (+56 MiB for 16,000 units against +21 MiB). Each buffer remembers its own pool."""
    import pyarrow as pa

    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _trim_heap() -> None:
    """Give freed heap pages back to the system (glibc's ``malloc_trim``; elsewhere nothing)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _arrow_read(path: Path, columns: list[str] | None) -> Any:
    import pyarrow.parquet as pq

    with _system_allocator():
        return pq.read_table(path, columns=columns)


def _read_table(path: Path, columns: list[str] | None) -> Any:

    try:
        return _arrow_read(path, columns)
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path} is not a readable Parquet file ({first})") from None


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
        return RunDir(path).load()
    if path.suffix == ".parquet" and path.is_file():
        return check_results_table(read_parquet(path), path)
    raise UserError(f"{path}: not a run directory or a results .parquet file")


REQUIRED = ("unit_id", "task", "dataset", "image", "degradation", "method", "metric", "value", "status")


def check_results_table(frame: Any, path: Path) -> Any:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path} is not a restorebench results table: it lacks the columns {', '.join(missing)}",
            hint="give a run directory or the results.parquet that `restorebench run` wrote",
        )
    for column in COLUMNS:  # tables of older versions lack newer columns
        if column not in frame.columns:
            frame[column] = None
    return frame


def read_parquet(path: Path) -> Any:
    """``pandas.read_parquet``, with a corrupt or truncated file a :class:`UserError` naming it."""

    try:  # self_destruct: each column's Arrow buffers are freed as pandas takes it over
        return _arrow_read(path, None).to_pandas(self_destruct=True, split_blocks=True)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"{path} is not a readable Parquet file ({first})",
            hint="it may be truncated or damaged; rerun, or resume the run that wrote it",
        ) from None
