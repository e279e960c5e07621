"""A run directory on a filesystem URI (``--out s3://bucket/runs/x``).

The driver works in a local staging folder (``~/.cache/restorebench/staging/HASH``): it pulls
what the URI holds before the run (so ``--resume`` and the refusal to overwrite results work
as for a local folder), pushes the folder as shards land (at most every ``every_s`` seconds,
so a killed driver loses at most that much), and pushes it once more at the end. A push is a
sync: files removed locally (shards merged by compaction) are removed from the URI too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from restorebench.data import storage

log = logging.getLogger(__name__)


def staging_root() -> Path:
    """``$XDG_CACHE_HOME/restorebench/staging`` (``~/.cache/...`` by default)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "restorebench" / "staging"


class Mirror:
    """A local working copy of a run directory URI."""

    def __init__(self, uri: str, *, every_s: float = 30.0, local: Path | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.local = local or staging_root() / hashlib.sha256(self.uri.encode()).hexdigest()[:16]
        self.every_s = every_s
        self._pushed: dict[str, tuple[int, int]] = {}  # key -> (size, mtime_ns) as last pushed
        self._last_push = 0.0

    def pull(self) -> Path:
        """A fresh staging folder holding what the URI holds; returns it. An earlier staging
        copy is moved aside, never deleted: it may hold results a failed push left behind."""
        if self.local.exists() and any(self.local.iterdir()):
            stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
            aside = self.local.with_name(f"{self.local.name}.previous-{stamp}")
            self.local.rename(aside)
            log.info("an earlier staging copy of %s is kept in %s", self.uri, aside)
        shutil.rmtree(self.local, ignore_errors=True)
        self.local.mkdir(parents=True)
        count = storage.download_tree(self.uri, self.local)
        self._pushed = self._state()
        if count:
            log.info("pulled %d files of %s into %s", count, self.uri, self.local)
        return self.local

    def maybe_push(self) -> None:
        """Push if the last push is older than ``every_s``; a failure is a warning (the results
        are in the staging copy, and the next push tries again), never the end of the run."""
        if time.monotonic() - self._last_push >= self.every_s:
            try:
                self.push()
            except Exception as exc:  # broad: a storage client raises more than OSError; warned, the run goes on
                self._last_push = time.monotonic()
                why = storage.cause(exc)
                log.warning("could not push to %s (%s); retrying in %.0f s", self.uri, why, self.every_s)

    def push(self) -> int:
        """Sync the staging folder to the URI; returns how many files were written."""
        state = self._state()
        changed = sorted(k for k, v in state.items() if self._pushed.get(k) != v)
        written = storage.upload_files(self.local, self.uri, changed)
        gone = sorted(set(self._pushed) - set(state))
        if gone:
            storage.delete_files(self.uri, gone)
        self._pushed = state
        self._last_push = time.monotonic()
        return written

    def _state(self) -> dict[str, tuple[int, int]]:
        out = {}
        for path in self.local.rglob("*"):
            if path.is_file() and not path.name.startswith("."):  # temporary files of atomic writes
                st = path.stat()
                out[path.relative_to(self.local).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out


def local_copy(text: str | Path) -> Path:
    """A run directory or results file named by a path or URI, as a local path: a URI is
    downloaded into a fresh temporary folder (for reading only; the staging copy of a run
    that writes there is left alone)."""
    if not storage.is_uri(str(text)):
        return Path(text)
    target = Path(tempfile.mkdtemp(prefix="restorebench-"))
    if str(text).endswith(".parquet"):  # one file, or a results dataset (a folder): only it is downloaded
        from restorebench.core.errors import ImageLoadError, UserError

        path = target / str(text).rstrip("/").rsplit("/", 1)[1]
        try:
            path.write_bytes(storage.read_bytes(str(text)))
        except ImageLoadError as exc:
            folder = Mirror(str(text), local=path).pull()
            if not any(folder.rglob("*.parquet")):
                raise UserError(str(exc), hint=storage.failure_hint(str(text))) from None
        return path
    return Mirror(str(text), local=target).pull()
