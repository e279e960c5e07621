"""The run's index of units, on disk: which units the plan named (so a unit named twice runs
once) and, on ``--resume``, which the run directory holds done.

A run of millions of units never holds their ids in Python objects: they live in a SQLite
file in a temporary folder (its page cache a few MB), queried a chunk of units at a time.
"""

from __future__ import annotations

import logging
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from restorebench.run.units import WorkUnit

log = logging.getLogger(__name__)

_CHUNK = 500  # ids per IN (...) query, under SQLite's limit of bound parameters


class RunIndex:
    """Unit ids of one run invocation (plan and done), in a temporary SQLite file.

    >>> with RunIndex() as index:                          # doctest: +SKIP
    ...     fresh = index.add(chunk)                       # the units not seen before
    ...     done = index.done_among([u.unit_id for u in fresh])
    """

    def __init__(self) -> None:
        self._folder: tempfile.TemporaryDirectory | None = None
        self._db: sqlite3.Connection | None = None
        self.count = 0  # distinct units added
        self.duplicates = 0
        self.same_images: list[str] = []  # a few "dataset key = dataset key" pairs of one image twice

    def open(self) -> RunIndex:
        """Create the index's file (in a fresh temporary folder, removed by :meth:`close`)."""
        self._folder = tempfile.TemporaryDirectory(prefix="restorebench-index-")
        db = sqlite3.connect(Path(self._folder.name) / "units.sqlite")
        # a 2 MB page cache: the file's pages stay in the system's cache anyway, and a larger one
        # filled with the index (8 MB at a million units), driver memory growing with the run
        db.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;"
            "CREATE TABLE plan (unit_id TEXT PRIMARY KEY, place TEXT) WITHOUT ROWID;"
            "CREATE TABLE done (unit_id TEXT PRIMARY KEY) WITHOUT ROWID;"
        )
        self._db = db
        return self

    def __enter__(self) -> RunIndex:
        return self.open()

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the run index is not open (use RunIndex().open() or a with block)")
        return self._db

    def add(self, units: Sequence[WorkUnit]) -> list[WorkUnit]:
        """Record ``units`` in the plan; returns those not recorded before (a suite that names a
        unit twice runs it once: the duplicates are counted, and one image under two names noted)."""
        seen = self._found("plan", [u.unit_id for u in units], with_place=True)
        fresh, places = [], {}
        for unit in units:
            place = f"{unit.dataset} {unit.image.key}"
            first = seen.get(unit.unit_id) or places.get(unit.unit_id)
            if first is None:
                places[unit.unit_id] = place
                fresh.append(unit)
                continue
            self.duplicates += 1
            if first != place and len(self.same_images) < 3:
                self.same_images.append(f"{place} = {first}")
        with self.db:
            self.db.executemany("INSERT INTO plan VALUES (?, ?)", places.items())
        self.count += len(fresh)
        return fresh

    def mark_done(self, unit_ids: Iterable[str]) -> int:
        """Record these units as done; returns how many were not recorded before."""
        before = self.db.total_changes
        with self.db:
            self.db.executemany("INSERT OR IGNORE INTO done VALUES (?)", ((u,) for u in unit_ids))
        return self.db.total_changes - before

    def done_among(self, unit_ids: Sequence[str]) -> set[str]:
        """Which of ``unit_ids`` the run directory holds done."""
        return set(self._found("done", unit_ids))

    def planned_among(self, unit_ids: Sequence[str]) -> set[str]:
        """Which of ``unit_ids`` this run's plan names (what a resumed run's compaction keeps)."""
        return set(self._found("plan", unit_ids))

    def _found(self, table: str, unit_ids: Sequence[str], *, with_place: bool = False) -> dict[str, str]:
        column = "place" if with_place else "unit_id"
        return dict(select_in(self.db, f"SELECT unit_id, {column} FROM {table} WHERE unit_id IN ({{marks}})", unit_ids))


def select_in(db: sqlite3.Connection, query: str, ids: Sequence[str]) -> Iterator[tuple]:
    """The rows of ``query`` (whose ``{marks}`` is an ``IN`` list) for ``ids``, a chunk at a time
    (SQLite bounds the parameters of one statement)."""
    for i in range(0, len(ids), _CHUNK):
        chunk = list(ids[i : i + _CHUNK])
        yield from db.execute(query.format(marks=",".join("?" * len(chunk))), chunk)
