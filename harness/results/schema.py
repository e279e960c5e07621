"""The tidy results table: its columns and types, as Arrow, DuckDB and pandas see them.

One row per (unit, metric): ``run_id, unit_id, task, dataset, image, degradation, method,
metric, value, runtime_s, status, error``, the versions that make rows comparable, and for a
set-level metric (pooled AuC, ...) ``stats``, the image's statistics its reduction combines.
Shards, compacted datasets and the frames tests build all share this schema.
"""

from __future__ import annotations

from typing import Any

_FLOAT, _BOOL, _TEXT, _LIST, _INT = "DOUBLE", "BOOLEAN", "VARCHAR", "DOUBLE[]", "INTEGER"
COLUMN_TYPES: dict[str, str] = {
    "run_id": _TEXT,
    "unit_id": _TEXT,
    "task": _TEXT,
    "dataset": _TEXT,
    "image": _TEXT,
    "image_hash": _TEXT,
    "degradation": _TEXT,
    "method": _TEXT,
    "method_kind": _TEXT,
    "method_version": _TEXT,
    "method_checkpoint": _TEXT,
    "non_blind": _BOOL,
    "method_params": _FLOAT,
    "metric": _TEXT,
    "metric_index": _INT,  # the metric's place in its unit's list (the suite's order: the first ranks)
    "metric_version": _TEXT,
    "value": _FLOAT,
    "stats": _LIST,  # a set-level metric's per-image statistics (null for other metrics)
    "runtime_s": _FLOAT,
    "megapixels": _FLOAT,
    "device": _TEXT,
    "node": _TEXT,
    "status": _TEXT,
    "error": _TEXT,
    "cached": _BOOL,
    "dataset_check": _TEXT,  # a dataset card's verdict on the copy ("" for other sources)
    "published": _FLOAT,  # the value published for this (dataset, degradation, method, metric), if any
    "published_source": _TEXT,
}
COLUMNS = list(COLUMN_TYPES)
FLOATS = {c for c, t in COLUMN_TYPES.items() if t == _FLOAT}
BOOLS = {c for c, t in COLUMN_TYPES.items() if t == _BOOL}


def schema() -> Any:
    """The Arrow schema every shard and compacted file shares."""
    import pyarrow as pa

    kind = {
        _FLOAT: pa.float64(),
        _BOOL: pa.bool_(),
        _TEXT: pa.string(),
        _LIST: pa.list_(pa.float64()),
        _INT: pa.int32(),
    }
    return pa.schema([(c, kind[t]) for c, t in COLUMN_TYPES.items()])


def conform(table: Any) -> Any:
    """An Arrow table of this or an older version in :func:`schema` (missing columns null)."""
    import pyarrow as pa

    target = schema()
    columns = [
        table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
        for f in target
    ]
    return pa.Table.from_arrays(columns, schema=target)


def to_arrow(frame: Any) -> Any:
    """A pandas frame of results rows as an Arrow table in :func:`schema` (extra columns dropped)."""
    import numpy as np
    import pyarrow as pa

    columns = {}
    for field in schema():
        if field.name not in frame.columns:
            columns[field.name] = pa.nulls(len(frame), field.type)
        elif field.name == "stats":
            values = [None if _missing(v) else np.asarray(v, dtype=np.float64).tolist() for v in frame["stats"]]
            columns["stats"] = pa.array(values, field.type)
        else:
            columns[field.name] = pa.array(
                frame[field.name].astype(object).where(frame[field.name].notna(), None), field.type, from_pandas=True
            )
    return pa.table(columns, schema=schema())


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def to_frame(table: Any) -> Any:
    """An Arrow table of results rows as pandas (``stats`` as numpy arrays)."""
    import numpy as np

    frame = table.to_pandas(split_blocks=True)
    if "stats" in frame.columns:
        frame["stats"] = [None if v is None else np.asarray(v, dtype=np.float64) for v in frame["stats"]]
    return frame
