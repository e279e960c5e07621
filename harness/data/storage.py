"""Filesystem URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://`` ... ) for datasets and run directories.

A URI is opened with pyarrow's filesystems (S3, GCS, HDFS, local), and otherwise with an
installed fsspec implementation (``az://``, ``memory://`` ...), both behind pyarrow's
``FileSystem`` interface. Credentials and endpoints come from the environment the way each
library reads them (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``
...): on a Ray cluster every worker reads images itself, so every node needs them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote

from pydantic import AfterValidator

from restorebench.core.errors import ImageLoadError, UserError


def absolute_path(value: str) -> str:
    """A user's local path made absolute (``~`` expanded), as a parameter stores it, so every
    worker resolves it alike whatever its working directory."""
    return str(Path(value).expanduser().absolute())


LocalPath = Annotated[str, AfterValidator(absolute_path)]  # a parameter holding a local path

_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(text: str | Path) -> bool:
    """Whether ``text`` names a filesystem URI (``scheme://...``) rather than a local path."""
    return isinstance(text, str) and bool(_URI.match(text))


@dataclass(frozen=True)
class RemoteFile:
    """One file under a listed URI: its path relative to the listed folder, its URI, size and mtime."""

    key: str
    uri: str
    size: int
    mtime_ns: int

    @property
    def identity(self) -> str:
        """What stands for the file's content with ``folder:URI?hash=stat``: size and modification
        time (an object store sets a new one on every write), so the driver downloads nothing."""
        return hashlib.sha256(f"remote:{self.uri}:{self.size}:{self.mtime_ns}".encode()).hexdigest()


_OPENED: dict[str, tuple[Any, str]] = {}  # "scheme://netloc" -> (filesystem, the path prefix it maps to)


def open_filesystem(uri: str) -> tuple[Any, str]:
    """``(pyarrow.fs.FileSystem, path inside it)`` for a URI; a clear error for an unknown scheme.

    The filesystem of a bucket (``scheme://netloc``) is made once per process: building an
    S3 client costs ~15 ms, which a worker would otherwise pay for every image it reads."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)(/[^?#]*)?$", uri)
    rest = unquote(match.group(2) or "").rstrip("/") if match else None  # as pyarrow reads the path
    if match and match.group(1) in _OPENED:
        fs, prefix = _OPENED[match.group(1)]
        return fs, prefix + rest
    fs, path = _open(uri)
    if rest is not None and path.endswith(rest):  # the path is a fixed prefix + the URI's path
        _OPENED[match.group(1)] = (fs, path[: len(path) - len(rest)])
    return fs, path


def _open(uri: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:  # ArrowInvalid is a ValueError: not a scheme pyarrow knows
        first = exc
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        fsspec = None
    if fsspec is not None:
        try:
            fs, path = url_to_fs(uri)
        except (ValueError, ImportError) as exc:
            raise UserError(f"cannot open {uri}: {exc}", hint=_SCHEME_HINT) from None
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path
    raise UserError(f"cannot open {uri}: {first}", hint=_SCHEME_HINT) from None


_SCHEME_HINT = "pyarrow reads s3://, gs://, hdfs:// and file://; other schemes need their fsspec package (e.g. adlfs)"


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended (``s3://b/run`` + ``results.parquet``)."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def list_files(uri: str, *, recursive: bool = False) -> list[RemoteFile]:
    """The files under a folder URI, sorted by key; a clear error if it is missing or not a folder."""
    import pyarrow.fs as pafs

    fs, root = open_filesystem(uri)
    try:
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.NotFound:
            raise UserError(f"dataset folder {uri} does not exist", hint="check the bucket and prefix, and credentials")
        if info.type != pafs.FileType.Directory:
            raise UserError(f"dataset folder {uri} is not a folder")
        entries = fs.get_file_info(pafs.FileSelector(root, recursive=recursive))
    except OSError as exc:
        raise UserError(
            f"cannot list {uri}: {exc}", hint="check the endpoint (AWS_ENDPOINT_URL) and credentials"
        ) from None
    base = root.rstrip("/") + "/"
    files = []
    for entry in entries:
        if entry.type != pafs.FileType.File or not entry.path.startswith(base):
            continue
        key = entry.path[len(base) :]
        files.append(RemoteFile(key, join(uri, key), entry.size or 0, entry.mtime_ns or 0))
    return sorted(files, key=lambda f: f.key)


def read_bytes(uri: str) -> bytes:
    """A remote file's bytes; any failure is an :class:`ImageLoadError` naming it (a per-unit error)."""
    try:
        fs, path = open_filesystem(uri)
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except (OSError, UserError) as exc:
        raise ImageLoadError(f"cannot read {uri}: {exc}") from None


def content_hashes(uris: list[str], *, threads: int = 16) -> list[str]:
    """SHA-256 of each remote file's bytes (as :func:`~restorebench.data.images.file_hash` of a
    local copy), read in parallel; an unreadable file hashes its URI (its unit fails when loaded)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(uri: str) -> str:
        try:
            return hashlib.sha256(read_bytes(uri)).hexdigest()
        except ImageLoadError:
            return hashlib.sha256(f"unreadable:{uri}".encode()).hexdigest()

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(uris)))) as pool:
        return list(pool.map(one, uris))


def download_tree(uri: str, local: Path) -> int:
    """Copy every file under a folder URI into ``local`` (created); returns how many. A URI
    that does not exist yet copies nothing."""
    import pyarrow.fs as pafs

    fs, root = open_filesystem(uri)
    try:
        if fs.get_file_info(root).type == pafs.FileType.NotFound:
            return 0
        entries = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    except OSError as exc:
        raise UserError(f"cannot read {uri}: {exc}", hint="check the endpoint and credentials") from None
    base = root.rstrip("/") + "/"
    count = 0
    for entry in entries:
        if entry.type != pafs.FileType.File:
            continue
        target = local / entry.path[len(base) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with fs.open_input_stream(entry.path) as stream:
                target.write_bytes(stream.read())
        except OSError as exc:
            raise UserError(f"cannot read {join(uri, entry.path[len(base) :])}: {exc}") from None
        count += 1
    return count


def upload_files(local: Path, uri: str, keys: list[str]) -> int:
    """Copy the files ``local/KEY`` to ``URI/KEY`` (overwriting); returns how many."""
    fs, root = open_filesystem(uri)
    try:
        for key in keys:
            target = f"{root.rstrip('/')}/{key}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(target) as stream:
                stream.write((local / key).read_bytes())
    except OSError as exc:
        raise UserError(f"cannot write to {uri}: {exc}", hint="check the endpoint, bucket and credentials") from None
    return len(keys)


def delete_files(uri: str, keys: list[str]) -> None:
    """Remove ``URI/KEY`` for each key (missing ones are fine)."""
    fs, root = open_filesystem(uri)
    for key in keys:
        try:
            fs.delete_file(f"{root.rstrip('/')}/{key}")
        except (FileNotFoundError, OSError) as exc:
            if "not found" not in str(exc).lower() and not isinstance(exc, FileNotFoundError):
                raise UserError(f"cannot remove {join(uri, key)}: {exc}") from None
