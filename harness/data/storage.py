"""Filesystem URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://`` ... ) for datasets and run directories.

pyarrow serves ``s3://``, ``gs://``, ``hdfs://`` and ``file://`` by itself (s3fs and gcsfs are
never used); any other scheme goes through an installed fsspec implementation (``az://`` with
adlfs, ``ftp://`` ...) behind pyarrow's ``FileSystem`` interface. Credentials and endpoints come
from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST`` ...): on a Ray cluster every worker
reads images itself, so every node needs them. Every wait on the network is bounded by
``$RESTOREBENCH_STORAGE_TIMEOUT`` (:func:`timeout_s`), and every failure is one line naming
the URI, the cause and what to check.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator

from restorebench.core.errors import ImageLoadError, UserError

T = TypeVar("T")

TIMEOUT_ENV = "RESTOREBENCH_STORAGE_TIMEOUT"
DEFAULT_TIMEOUT_S = 5.0
PYARROW_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "file")  # served by pyarrow alone
S3_ATTEMPTS = 3  # tries of one S3 request
PROBE_TIMEOUTS = 6  # the first contact with a URI gives up after this many timeouts
_SCHEME_HINT = (
    "pyarrow reads s3://, gs://, hdfs:// and file:// by itself; any other scheme needs fsspec "
    "and that scheme's package (e.g. adlfs for az://)"
)


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


def timeout_s() -> float:
    """Seconds a remote request may take to connect, or go without data:
    ``$RESTOREBENCH_STORAGE_TIMEOUT``, 5 by default."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = float("nan")
    if not 0 < value < 86400:
        raise UserError(
            f"{TIMEOUT_ENV}={text} is not a number of seconds",
            hint=f"set it to e.g. 30, or unset it for the default {DEFAULT_TIMEOUT_S:g} s",
        )
    return value


_OPENED: dict[str, tuple[Any, str]] = {}  # "scheme://netloc" -> (filesystem, the path prefix it maps to)


def open_filesystem(uri: str) -> tuple[Any, str]:
    """``(pyarrow.fs.FileSystem, path inside it)`` for a URI; a one-line error for a scheme
    nothing installed serves.

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
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "s3":
        return _open_s3(uri)
    if scheme in ("gs", "gcs"):
        return _open_gcs(uri)
    if scheme not in PYARROW_SCHEMES:
        return _open_fsspec(uri, scheme)
    import pyarrow.fs as pafs

    try:  # hdfs:// loads libhdfs (a Java runtime) here
        return pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot open {uri}: {cause(exc)}", hint=failure_hint(uri, exc)) from None


def _bucket_path(uri: str, scheme: str) -> tuple[str, str]:
    """``(bucket, "bucket/key...")`` of an object store URI, as pyarrow's ``from_uri`` reads it."""
    parts = urlsplit(uri)
    if parts.query or parts.fragment:
        raise UserError(
            f"{uri}: {scheme}:// URIs take no ?query",
            hint="give the region, endpoint and credentials in the environment (AWS_REGION, AWS_ENDPOINT_URL ...)",
        )
    if not parts.netloc:
        raise UserError(f"{uri} names no bucket", hint=f"write {scheme}://BUCKET/FOLDER")
    return parts.netloc, (parts.netloc + unquote(parts.path)).rstrip("/")


def _open_s3(uri: str) -> tuple[Any, str]:
    """pyarrow's S3 client with bounded requests. The region is ``$AWS_REGION`` (or
    ``$AWS_DEFAULT_REGION``); on AWS without one it is asked of S3, as ``from_uri`` does."""
    import pyarrow.fs as pafs

    bucket, path = _bucket_path(uri, "s3")
    seconds = timeout_s()
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and not endpoint:
        try:
            region = pafs.resolve_s3_region(bucket)
        except (ValueError, OSError) as exc:
            raise UserError(
                f"cannot open {uri}: the region of bucket {bucket} could not be asked of S3: {cause(exc)}",
                hint="set AWS_REGION to the bucket's region (AWS_ENDPOINT_URL for an S3-compatible server), "
                "and check the network",
            ) from None
    options: dict[str, Any] = {"region": region or "us-east-1", "connect_timeout": seconds, "request_timeout": seconds}
    if endpoint:
        options["endpoint_override"] = endpoint
    retries = pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS)
    return pafs.S3FileSystem(retry_strategy=retries, **options), path


def _open_gcs(uri: str) -> tuple[Any, str]:
    """pyarrow's GCS client, retrying a failing request for about the timeout (its default
    is 15 minutes); ``$STORAGE_EMULATOR_HOST`` names an emulator (no credentials)."""
    from datetime import timedelta

    import pyarrow.fs as pafs

    _, path = _bucket_path(uri, uri.split("://", 1)[0])
    options: dict[str, Any] = {"retry_time_limit": timedelta(seconds=timeout_s())}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        parts = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
        options |= {"endpoint_override": parts.netloc, "scheme": parts.scheme, "anonymous": True}
    return pafs.GcsFileSystem(**options), path


def _open_fsspec(uri: str, scheme: str) -> tuple[Any, str]:
    """An fsspec filesystem behind pyarrow's interface, given the timeout where it takes one
    (``ftp://``); its constructor may connect (an FTP or SFTP server), so it may fail here."""
    import inspect

    import pyarrow.fs as pafs

    nothing = f"cannot open {uri}: no installed filesystem serves {scheme}://"
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise UserError(nothing, hint=_SCHEME_HINT) from None
    try:
        kind = fsspec.get_filesystem_class(scheme)
    except ValueError:  # "Protocol not known"
        raise UserError(nothing, hint=_SCHEME_HINT) from None
    except ImportError as exc:  # a scheme fsspec knows whose package is missing: "Install adlfs to ..."
        raise UserError(f"cannot open {uri}: {cause(exc)}", hint=_SCHEME_HINT) from None
    options = {"timeout": timeout_s()} if "timeout" in inspect.signature(kind.__init__).parameters else {}
    try:
        fs, path = url_to_fs(uri, **options)
    except Exception as exc:  # whatever the implementation raises: its constructor talks to a server
        raise UserError(f"cannot open {uri}: {cause(exc)}", hint=failure_hint(uri, exc)) from None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


class Unanswered(TimeoutError):
    """A filesystem call that had not returned by its deadline."""


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``, or :class:`Unanswered` once ``seconds`` have passed: a bound for clients
    with no timeout of their own (GCS waits 120 s on a silent server). It runs in a daemon
    thread, left behind on a timeout (a filesystem call cannot be interrupted)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="restorebench-storage", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Unanswered(f"no answer within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _reach(uri: str, doing: str) -> tuple[Any, str, Any]:
    """``(filesystem, path, FileInfo of the path)``: the first contact with a URI (open it,
    look the path up), given up after ``PROBE_TIMEOUTS`` x the timeout whatever the client does."""

    def look() -> tuple[Any, str, Any]:
        fs, path = open_filesystem(uri)
        return fs, path, fs.get_file_info(path)

    limit = PROBE_TIMEOUTS * timeout_s()
    try:
        return within(limit, look)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"cannot {doing} {uri}: {cause(exc)}", hint=failure_hint(uri, exc)) from None


_CAUSES = (  # (pattern in a client's error, what it means), the first match wins
    (r"Could not resolve host: ([^\s;,)]+)", "cannot resolve host {0}"),
    (r"resolve host|Name or service not known|name resolution|CURL error \[6\]", "cannot resolve the host name"),
    (r"Failed to connect to (\S+) port (\d+)", "nothing accepts connections at {0} port {1}"),
    (r"Connection refused|Could not connect to server|CURL error \[7\]", "connection refused"),
    (r"Timeout was reached|timed out|CURL error \[28\]", "no answer within the {timeout:g} s timeout"),
    (r"AccessDenied|Access Denied|InvalidAccessKeyId|SignatureDoesNotMatch|PERMISSION_DENIED", "access denied"),
    (r"OAuth2 access token|UNAUTHENTICATED|NoCredentials|Unable to locate credentials", "no credentials"),
)


def cause(exc: BaseException) -> str:
    """A client's error in a few words for a one-line message ("connection refused",
    "cannot resolve host X", "no answer within 5 s"), else its first line."""
    if isinstance(exc, Unanswered):
        return str(exc)
    if isinstance(exc, UserError):
        return str(exc.args[0])
    text = str(exc)
    for pattern, meaning in _CAUSES:
        found = re.search(pattern, text, flags=re.IGNORECASE)
        if found or (isinstance(exc, TimeoutError) and "{timeout" in meaning):
            return meaning.format(*(found.groups() if found else ()), timeout=_timeout_or_default())
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first or type(exc).__name__
    return first if len(first) <= 200 else first[:200] + "..."


def _timeout_or_default() -> float:
    try:
        return timeout_s()
    except UserError:
        return DEFAULT_TIMEOUT_S


def failure_hint(uri: str, exc: BaseException | None = None) -> str:
    """What to check when ``uri`` cannot be reached, for its scheme."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "s3":
        what = "the network, AWS_ENDPOINT_URL (an S3-compatible server), AWS_REGION and the credentials (AWS_ACCESS_KEY_ID ...)"
    elif scheme in ("gs", "gcs"):
        what = "the network and GOOGLE_APPLICATION_CREDENTIALS (STORAGE_EMULATOR_HOST for an emulator)"
    elif scheme in ("hdfs", "viewfs"):
        what = "the namenode's address, and a Java runtime with Hadoop's libhdfs (JAVA_HOME, HADOOP_HOME, CLASSPATH)"
    else:
        what = "the host, the network and the credentials"
    slow = ""
    if exc is not None and cause(exc).startswith("no answer"):
        slow = f"; on a slow link raise {TIMEOUT_ENV} (now {_timeout_or_default():g} s)"
    return f"check {what}{slow}"


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended (``s3://b/run`` + ``results.parquet``)."""
    return "/".join([uri.rstrip("/"), *(p.strip("/") for p in parts)])


def list_files(uri: str, *, recursive: bool = False) -> list[RemoteFile]:
    """The files under a folder URI, sorted by key; a one-line error if it is missing, not a
    folder, or cannot be reached."""
    import pyarrow.fs as pafs

    fs, root, info = _reach(uri, "list")
    if info.type == pafs.FileType.NotFound:
        raise UserError(f"dataset folder {uri} does not exist", hint="check the bucket and prefix, and credentials")
    if info.type != pafs.FileType.Directory:
        raise UserError(f"dataset folder {uri} is not a folder")
    try:
        entries = fs.get_file_info(pafs.FileSelector(root, recursive=recursive))
    except Exception as exc:  # whatever the client raises (an fsspec one is not always an OSError)
        raise UserError(f"cannot list {uri}: {cause(exc)}", hint=failure_hint(uri, exc)) from None
    base = root.rstrip("/") + "/"
    files = []
    for entry in entries:
        if entry.type != pafs.FileType.File or not entry.path.startswith(base):
            continue
        key = entry.path[len(base) :]
        files.append(RemoteFile(key, join(uri, key), entry.size or 0, entry.mtime_ns or 0))
    return sorted(files, key=lambda f: f.key)


def read_bytes(uri: str) -> bytes:
    """A remote file's bytes; any failure is an :class:`ImageLoadError` naming it and its
    cause in one line (a per-unit error)."""
    try:
        fs, path = open_filesystem(uri)
        with fs.open_input_stream(path) as stream:
            return stream.read()
    except Exception as exc:
        raise ImageLoadError(f"cannot read {uri}: {cause(exc)}") from None


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

    fs, root, info = _reach(uri, "read")
    if info.type == pafs.FileType.NotFound:
        return 0
    base = root.rstrip("/") + "/"
    count, key = 0, ""
    try:
        for entry in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
            if entry.type != pafs.FileType.File:
                continue
            key = entry.path[len(base) :]
            target = local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            with fs.open_input_stream(entry.path) as stream:
                target.write_bytes(stream.read())
            count += 1
    except Exception as exc:
        raise UserError(f"cannot read {join(uri, key)}: {cause(exc)}", hint=failure_hint(uri, exc)) from None
    return count


def upload_files(local: Path, uri: str, keys: list[str]) -> int:
    """Copy the files ``local/KEY`` to ``URI/KEY`` (overwriting); returns how many."""
    try:
        fs, root = open_filesystem(uri)
        for key in keys:
            target = f"{root.rstrip('/')}/{key}"
            fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with fs.open_output_stream(target) as stream:
                stream.write((local / key).read_bytes())
    except Exception as exc:
        raise UserError(f"cannot write to {uri}: {cause(exc)}", hint=failure_hint(uri, exc)) from None
    return len(keys)


def delete_files(uri: str, keys: list[str]) -> None:
    """Remove ``URI/KEY`` for each key (missing ones are fine)."""
    fs, root = open_filesystem(uri)
    for key in keys:
        try:
            fs.delete_file(f"{root.rstrip('/')}/{key}")
        except FileNotFoundError:
            continue
        except Exception as exc:
            if "not found" not in str(exc).lower():
                raise UserError(f"cannot remove {join(uri, key)}: {cause(exc)}", hint=failure_hint(uri, exc)) from None
