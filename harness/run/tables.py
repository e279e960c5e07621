"""The tidy results table: its columns and Arrow schema, rows from unit results, and
Parquet files read and written safely (atomic writes; a damaged file is a clear error).

One row per (unit, metric): ``run_id, unit_id, task, dataset, image, degradation, method,
metric, value, runtime_s, status, error``, the versions that make rows comparable, and for a
set-level metric (pooled AuC, ...) ``stats``, the image's statistics its reduction combines.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError
from restorebench.results.schema import COLUMNS, conform, schema
from restorebench.results.schema import FLOATS as _FLOATS
from restorebench.run.units import UnitResult, WorkUnit

__all__ = ["COLUMNS", "conform", "rows_for", "schema", "write_parquet_atomic"]


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
    for index, (m, version_of) in enumerate([(m, m) for m in unit.metrics] + oracles):
        value = result.metrics.get(m, float("nan"))
        row = {
            **base,
            "metric": m,
            "metric_index": index,
            "metric_version": metric_versions[version_of],
            "value": value,
        }
        if m in result.stats:
            row["stats"] = result.stats[m]
        if m in published:
            row.update(published=published[m][0], published_source=published[m][1])
        if m in result.metric_errors:
            row.update(status="failed", error=f"{unit.image.key}: metric {m}: {result.metric_errors[m]}")
        rows.append(row)
    return rows


def write_parquet_atomic(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write rows to ``path`` (in :func:`schema`) via a temporary file and a rename."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {c: [r.get(c) for r in rows] for c in COLUMNS}
    for c in _FLOATS:
        columns[c] = [float("nan") if v is None else float(v) for v in columns[c]]
    columns["stats"] = [None if v is None else list(map(float, v)) for v in columns["stats"]]
    table = pa.Table.from_pydict(columns, schema=schema())
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def read_schema(path: Path) -> Any:
    """An empty frame with the columns of a Parquet file (its footer only)."""
    import pandas as pd
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None
    return pd.DataFrame(columns=names)


@contextmanager
def system_allocator():
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


def trim_heap() -> None:
    """Give freed heap pages back to the system: Arrow's own pool (mimalloc or jemalloc, which
    Arrow's C++ code allocates from even under :func:`system_allocator`: 13 MiB kept after
    compacting 200,000 rows, against 5 after 10,000) and glibc's heap (``malloc_trim``)."""
    import ctypes

    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _arrow_read(path: Path, columns: list[str] | None) -> Any:
    import pyarrow.parquet as pq

    with system_allocator():
        return pq.read_table(path, columns=columns)


def _unreadable(path: Path, exc: Exception, hint: str | None = None) -> UserError:
    """The error for a Parquet file pyarrow cannot read (its OSError or ArrowInvalid, a
    ValueError), naming the file and the first line of pyarrow's reason."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return UserError(f"{path} is not a readable Parquet file ({first})", hint=hint)


def read_table(path: Path, columns: list[str] | None) -> Any:
    try:
        return _arrow_read(path, columns)
    except (OSError, ValueError) as exc:
        raise _unreadable(path, exc) from None


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
    except (OSError, ValueError) as exc:
        hint = "it may be truncated or damaged; rerun, or resume the run that wrote it"
        raise _unreadable(path, exc, hint) from None
