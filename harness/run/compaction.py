"""Compaction: a run's stored rows (the results dataset's files, then the shards, oldest first)
into one new file per task of ``results.parquet/``, each (unit, metric) once, in bounded memory.

Two passes, a row group at a time. The first, newest row group first, marks the rows that
stay: a (unit, metric)'s latest row, of the units to keep; the keys already met live in a
temporary SQLite file, not in Python objects, and each row group's flags (a bit per row) in a
file beside it. The second copies the marked rows, oldest first, into one Parquet writer per task.
A fresh run's shards (each unit once, nothing dropped) skip the first pass.

(DuckDB did this with a window over whole rows until a resumed run of a million units needed
more than its 48 MB to sort them; pyarrow and SQLite need only a row group.)
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from restorebench.core.refs import slug
from restorebench.run.index import select_in

ROW_GROUP_ROWS = 16384  # rows per row group written (32768 cost the copy 17 MiB more), and the most read at once
BATCH_ROWS = 8192  # rows turned into Python objects at a time, to mark them

Keep = Callable[[Sequence[str]], set[str]]
"""Which of these unit ids to keep (e.g. those the resumed run's plan names)."""


def compact_parts(
    parts: Sequence[Path],
    dataset: Path,
    *,
    name: Callable[[], str],
    keep: Keep | None = None,
    deduplicate: bool = True,
    prefer_ok: bool = False,
) -> list[Path]:
    """Write ``parts``' rows into ``dataset/<task>/<name()>``, one file per task; returns them.
    ``deduplicate``: the latest row of each (unit, metric) only (a resumed run's parts may hold
    a unit twice); ``prefer_ok``: its latest ``ok`` row where it has one (several runs of one
    suite); ``keep``: only the units it returns."""
    from restorebench.run.tables import system_allocator, trim_heap

    with tempfile.TemporaryDirectory(prefix="restorebench-compact-") as folder:
        with system_allocator():
            flags = _mark(parts, Path(folder), keep, deduplicate, prefer_ok) if keep or deduplicate else None
            written = _copy(parts, flags, dataset, name)
    trim_heap()
    return written


class _Keys:
    """The (unit, metric) pairs met so far, in a temporary SQLite file (a 2 MB page cache)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    @classmethod
    def open(cls, folder: Path) -> _Keys:
        """An empty set in a new file of ``folder``."""
        db = sqlite3.connect(folder / "keys.sqlite")
        db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;"
            "CREATE TABLE keys (unit_id TEXT, metric TEXT, PRIMARY KEY (unit_id, metric)) WITHOUT ROWID;"
        )
        return cls(db)

    def among(self, unit_ids: Sequence[str]) -> set[tuple[str, str]]:
        """The pairs met so far of these units."""
        return set(select_in(self.db, "SELECT unit_id, metric FROM keys WHERE unit_id IN ({marks})", unit_ids))

    def add(self, pairs: list[tuple[str, str]]) -> None:
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?)", pairs)


Flags = Callable[[int, int, int], Any]
"""The flags (a bool per row) of part ``n``'s row group ``group`` of ``count`` rows."""


def _mark(parts: Sequence[Path], folder: Path, keep: Keep | None, deduplicate: bool, prefer_ok: bool) -> Flags:
    """Mark the rows that stay, newest row group first (with ``prefer_ok``, the ``ok`` rows in a
    first sweep, the others in a second); each row group's flags go to a file of their own
    (``np.packbits``), so memory holds one row group's."""
    import numpy as np
    import pyarrow.parquet as pq

    def path(n: int, group: int) -> Path:
        return folder / f"{n}-{group}.npy"

    def flags(n: int, group: int, count: int) -> Any:
        return np.unpackbits(np.load(path(n, group)), count=count).astype(bool)

    keys = _Keys.open(folder) if deduplicate else None
    columns = ["unit_id", "metric", "status"] if prefer_ok else ["unit_id", "metric"]
    try:
        for sweep in ("ok", "other") if prefer_ok else ("all",):
            for n in reversed(range(len(parts))):
                file = pq.ParquetFile(parts[n])
                for group in reversed(range(file.num_row_groups)):
                    table = file.read_row_group(group, columns=columns, use_threads=False)
                    stay = np.ones(table.num_rows, bool)
                    for stop in range(table.num_rows, 0, -BATCH_ROWS):  # newest rows first
                        start = max(0, stop - BATCH_ROWS)
                        rows = table.slice(start, stop - start)
                        status = rows.column("status").to_pylist() if prefer_ok else None
                        stay[start:stop] = _stay(rows, status, sweep, keep, keys)
                    if sweep == "other":
                        stay |= flags(n, group, len(stay))
                    np.save(path(n, group), np.packbits(stay))
    finally:
        if keys is not None:
            keys.db.close()
    return flags


def _stay(rows: Any, status: list[str] | None, sweep: str, keep: Keep | None, keys: _Keys | None) -> Any:
    """Flags of a slice's rows (in row order), read newest first: in this sweep's status, of a
    unit kept, its (unit, metric) not met before (in ``keys``, or later in the slice)."""
    import numpy as np

    units = rows.column("unit_id").to_pylist()[::-1]
    metrics = [m or "" for m in rows.column("metric").to_pylist()[::-1]]
    stay = np.ones(len(units), bool)
    if status is not None:
        ok = np.array([s == "ok" for s in status[::-1]], bool)
        stay &= ok if sweep == "ok" else ~ok
    distinct = list(dict.fromkeys(units))
    if keep is not None:
        kept = keep(distinct)
        stay &= np.fromiter((u in kept for u in units), bool, len(units))
    if keys is not None:
        met, new = keys.among(distinct), []
        for row, pair in enumerate(zip(units, metrics)):
            if not stay[row]:
                continue
            if pair in met:
                stay[row] = False
            else:
                met.add(pair)
                new.append(pair)
        keys.add(new)
    return stay[::-1]


def _copy(parts: Sequence[Path], flags: Flags | None, dataset: Path, name: Callable[[], str]) -> list[Path]:
    """The flagged rows of ``parts`` (every row without ``flags``) into one file per task."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from restorebench.results.schema import conform, schema
    from restorebench.run.tables import trim_heap

    writers: dict[str, tuple[Any, Path, Path]] = {}
    waiting: dict[str, list[Any]] = {}  # rows of each task not written yet (under a row group's worth)
    # a part's row group is read whole: the shards' are a batch's rows or ROW_GROUP_ROWS (merged),
    # the dataset's ROW_GROUP_ROWS (32768 in earlier versions)

    def write(task: str, rows: Any | None) -> None:
        if rows is not None:
            waiting.setdefault(task, []).append(rows)
        held = waiting.get(task, [])
        if held and (rows is None or sum(len(r) for r in held) >= ROW_GROUP_ROWS):
            if task not in writers:
                folder = dataset / slug(task)
                folder.mkdir(parents=True, exist_ok=True)
                target = folder / name()
                tmp = folder / f".{target.name}.tmp"
                writers[task] = (pq.ParquetWriter(tmp, schema()), tmp, target)
            writers[task][0].write_table(pa.concat_tables(held), row_group_size=ROW_GROUP_ROWS)
            waiting[task] = []

    try:
        for n, part in enumerate(parts):
            file = pq.ParquetFile(part)
            for group in range(file.num_row_groups):
                table = file.read_row_group(group, use_threads=False)
                if flags is not None:
                    table = table.filter(pa.array(flags(n, group, table.num_rows)))
                if table.num_rows:
                    table = conform(table)
                    for task in pc.unique(table.column("task")).to_pylist():
                        write(task, table.filter(pc.equal(table.column("task"), task)))
                del table
                trim_heap()  # what a row group's reads freed goes back
        for task in list(waiting):
            write(task, None)
    finally:
        for writer, _, _ in writers.values():
            writer.close()
    for _, tmp, target in writers.values():
        os.replace(tmp, target)
    return [target for _, _, target in writers.values()]
