"""The results cache: unit results by unit id in one SQLite file shared by every run.

A rerun, a resume or a regenerated leaderboard computes only the units whose ids it
does not hold. Only the driver writes it. ``--no-cache`` never opens it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from restorebench.core.errors import UserError
from restorebench.run.units import UnitResult


def default_cache_path() -> Path:
    """``$RESTOREBENCH_CACHE`` or ``~/.cache/restorebench/results.sqlite``."""
    env = os.environ.get("RESTOREBENCH_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "restorebench" / "results.sqlite"


_HINT = "delete it (it only holds results that can be computed again), set $RESTOREBENCH_CACHE elsewhere, or pass --no-cache"
log = logging.getLogger(__name__)


class ResultCache:
    """Unit results by unit id, in SQLite (one writer: the driver).

    Building one touches nothing; :meth:`open` (or ``with``) creates the file and its table:

    >>> with ResultCache("runs/cache.sqlite") as cache:  # doctest: +SKIP
    ...     found = cache.get_many(["3f9a..."])
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self._db: sqlite3.Connection | None = None

    def open(self) -> ResultCache:
        """Open (creating if needed) the SQLite file and its table; returns ``self``.
        A cache that cannot be opened is a :class:`UserError` saying what to do."""
        if self._db is not None:
            return self
        hint = _HINT
        if self.path.is_dir():
            raise UserError(f"the results cache {self.path} is a directory, not a SQLite file", hint=hint)
        db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30)
            db.execute("CREATE TABLE IF NOT EXISTS units (unit_id TEXT PRIMARY KEY, result TEXT NOT NULL, sample BLOB)")
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            raise UserError(f"cannot open the results cache {self.path}: {exc}", hint=hint) from None
        self._db = db
        return self

    def __enter__(self) -> ResultCache:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(
                f"the results cache {self.path} is not open: call open() first, or use `with ResultCache(path) as cache:`"
            )
        return self._db

    def get_many(self, unit_ids: Sequence[str]) -> dict[str, UnitResult]:
        """The cached results of these units (a damaged entry is skipped: its unit is computed again)."""
        found: dict[str, UnitResult] = {}
        ids = list(unit_ids)
        try:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for uid, result, sample in self._conn().execute(
                    f"SELECT unit_id, result, sample FROM units WHERE unit_id IN ({marks})", chunk
                ):
                    try:
                        data = json.loads(result)
                        data["stats"] = {k: np.asarray(v, dtype=np.float64) for k, v in data.get("stats", {}).items()}
                        found[uid] = UnitResult(unit_id=uid, status="ok", cached=True, sample=_unpack(sample), **data)
                    except (ValueError, TypeError, OSError) as exc:
                        log.warning("ignoring a damaged cache entry for unit %s: %s", uid, exc)
        except sqlite3.Error as exc:
            raise UserError(f"the results cache {self.path} is damaged: {exc}", hint=_HINT) from None
        return found

    def put_many(self, results: Iterable[UnitResult]) -> None:
        records = [
            (
                r.unit_id,
                json.dumps(
                    {
                        "metrics": r.metrics,
                        "stats": {k: v.tolist() for k, v in r.stats.items()},  # floats round-trip exactly
                        "metric_errors": r.metric_errors,
                        "runtime_s": r.runtime_s,
                        "megapixels": r.megapixels,
                        "device": r.device,
                    }
                ),
                _pack(r.sample),
            )
            for r in results
            if r.status == "ok"
        ]
        db = self._conn()
        with db:
            db.executemany("INSERT OR REPLACE INTO units VALUES (?, ?, ?)", records)

    def close(self) -> None:
        """Close the file (a cache never opened, or closed already, has nothing to close)."""
        if self._db is not None:
            self._db.close()
            self._db = None


def _pack(sample: dict[str, np.ndarray] | None) -> bytes | None:
    if not sample:
        return None
    buf = io.BytesIO()
    np.savez_compressed(buf, **sample)
    return buf.getvalue()


def _unpack(blob: bytes | None) -> dict[str, np.ndarray] | None:
    if not blob:
        return None
    with np.load(io.BytesIO(blob)) as data:
        return {k: data[k] for k in data.files}


class NoCache:
    """What ``--no-cache`` uses: finds nothing, keeps nothing, opens no file."""

    def open(self) -> NoCache:
        return self

    def __enter__(self) -> NoCache:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def get_many(self, unit_ids: Sequence[str]) -> dict[str, UnitResult]:
        return {}

    def put_many(self, results: Iterable[UnitResult]) -> None:
        pass

    def close(self) -> None:
        pass
