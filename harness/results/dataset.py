"""A set of results, read out of core: Parquet files (one run's dataset, several runs') or a
frame, seen through DuckDB as one deduplicated table.

Results are data, not memory: a run of millions of units is a folder of Parquet files that
DuckDB scans in bounded memory (``memory_limit``, spilling to a temporary folder), and every
aggregation of the results layer is a query over it. Where the same unit appears more than
once it counts once: in one run (a resume that recomputed a failed unit) its latest row;
across runs (two jobs whose image slices overlap) its ``ok`` row if it has one.

Why DuckDB rather than Polars' streaming engine: its aggregations, window functions and joins
spill to disk under a memory limit, it reads Parquet list columns (a set-level metric's
``stats``) and pandas frames alike, and its ``COPY ... TO`` writes Parquet as it streams, so
compaction, the leaderboard, ``compare`` and MLflow's per-image tables are one engine.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restorebench.core.errors import UserError

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

MEMORY_LIMIT_ENV = "RESTOREBENCH_DUCKDB_MEMORY"
DEFAULT_MEMORY_LIMIT = "48MB"  # DuckDB's own default is 80 % of the machine; past it, it spills to disk
REQUIRED = ("unit_id", "task", "dataset", "image", "degradation", "method", "metric", "value", "status")


def connect(
    database: str | os.PathLike[str] = ":memory:", *, memory_limit: str | None = None, threads: int | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that stays within ``memory_limit`` (default
    ``$RESTOREBENCH_DUCKDB_MEMORY``, else 48 MB) and spills what does not fit to a temporary
    folder, on at most 2 threads (memory grows with threads)."""
    import duckdb

    con = duckdb.connect(str(database))
    spill = Path(tempfile.gettempdir()) / f"restorebench-duckdb-{os.getpid()}"
    limit = memory_limit or os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)
    con.execute(f"SET memory_limit = '{limit}'")
    con.execute(f"SET temp_directory = '{_quoted(str(spill))}'")
    con.execute(f"SET threads = {threads or max(1, min(os.cpu_count() or 1, 2))}")
    con.execute("SET preserve_insertion_order = false")
    return con


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def sql_list(paths: Sequence[str | os.PathLike[str]]) -> str:
    """``['a.parquet', 'b.parquet']`` for a DuckDB ``read_parquet``."""
    return "[" + ", ".join(f"'{_quoted(str(p))}'" for p in paths) + "]"


class ResultsSet:
    """Results rows from Parquet files or a frame, for queries (``view``) or, when small, as a
    frame (:meth:`frame`). Each (unit, metric) counts once: its latest row (files in the order
    given, rows in file order), or with ``prefer_ok`` (several runs) its ``ok`` row if it has
    one. ``deduplicated``: the files are known to hold each once (one compacted run), so the
    window that picks it is skipped (a window sorts whole rows: large sets are deduplicated
    into a temporary copy instead, :func:`restorebench.run.read.read_runs`)."""

    def __init__(
        self,
        files: Sequence[str | os.PathLike[str]] = (),
        *,
        frame: Any = None,
        deduplicated: bool = False,
        prefer_ok: bool = False,
        same_schema: bool = False,
        holds: Any = None,
    ) -> None:
        self.files = [str(f) for f in files]
        self.holds = holds  # what the files live in as long as the set does (a temporary folder)
        self._frame = frame
        self.deduplicated = deduplicated or (frame is not None)
        self.prefer_ok = prefer_ok
        self.same_schema = (
            same_schema  # every file has the same columns: no schema unification (it reads every footer first)
        )

    @classmethod
    def of_frame(cls, frame: pd.DataFrame) -> ResultsSet:
        return cls(frame=frame)

    @property
    def empty(self) -> bool:
        return not self.files if self._frame is None else len(self._frame) == 0

    def view(self, con: duckdb.DuckDBPyConnection, name: str = "results") -> str:
        """Create (or replace) the view ``name`` of these rows in ``con``; returns ``name``."""
        if self._frame is not None or not self.files:
            con.register(f"{name}_frame", _arrow(self._frame if self._frame is not None else _empty(), numbered=True))
            source = f"SELECT * FROM {name}_frame"
        else:
            union = "" if self.same_schema else "union_by_name = true, "
            source = (
                f"SELECT * FROM read_parquet({sql_list(self.files)}, {union}filename = true, file_row_number = true)"
            )
        if self.deduplicated or self._frame is not None or not self.files:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {_with_columns(source, con)}")
            return name
        con.execute("SET threads = 1")  # the window sorts every row: in a small memory limit, on one thread
        order = " ".join(f"WHEN '{_quoted(f)}' THEN {i}" for i, f in enumerate(self.files))
        first = "(status = 'ok') DESC, " if self.prefer_ok else ""
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * EXCLUDE (_ord) FROM ("
            f"SELECT *, CASE filename {order} END AS _ord FROM ({_with_columns(source, con)})) "
            "QUALIFY row_number() OVER (PARTITION BY unit_id, metric "
            f"ORDER BY {first}_ord DESC, file_row_number DESC) = 1"
        )
        return name

    def frame(self) -> pd.DataFrame:
        """The rows as a pandas frame in the results table's columns (for small sets and tests)."""
        if self._frame is not None:
            return self._frame
        from restorebench.results.schema import COLUMNS, to_frame

        con = connect()
        try:
            view = self.view(con)
            table = con.sql(
                f"SELECT {', '.join(COLUMNS)} FROM {view} ORDER BY filename, file_row_number"
            ).to_arrow_table()
        finally:
            con.close()
        return to_frame(table)


def _with_columns(source: str, con: duckdb.DuckDBPyConnection) -> str:
    """``source`` with every column of the results table (older files lack newer ones: NULL),
    the bookkeeping columns ``filename`` / ``file_row_number`` dropped from what callers see
    except for ordering, and a check that the rows are a results table."""
    from restorebench.results.schema import COLUMN_TYPES

    have = {row[0] for row in con.execute(f"DESCRIBE {source}").fetchall()}
    missing = [c for c in REQUIRED if c not in have]
    if missing:
        raise UserError(
            f"not a restorebench results table: it lacks the columns {', '.join(missing)}",
            hint="give a run directory or the results that `restorebench run` wrote",
        )
    columns = [c if c in have else f"CAST(NULL AS {kind}) AS {c}" for c, kind in COLUMN_TYPES.items()]
    extra = [c for c in ("filename", "file_row_number") if c in have]
    return f"SELECT {', '.join(columns + extra)} FROM ({source})"


def _arrow(frame: Any, *, numbered: bool = False) -> Any:
    """A frame as Arrow in the results schema; ``numbered``: with the ``filename`` and
    ``file_row_number`` a Parquet scan gives (the frame's own row order)."""
    import pyarrow as pa

    from restorebench.results.schema import to_arrow

    table = to_arrow(frame)
    if numbered:
        table = table.append_column("filename", pa.array([""] * table.num_rows, pa.string()))
        table = table.append_column("file_row_number", pa.array(range(table.num_rows), pa.int64()))
    return table


def _empty() -> Any:
    import pandas as pd

    from restorebench.results.schema import COLUMN_TYPES

    return pd.DataFrame(columns=list(COLUMN_TYPES))
