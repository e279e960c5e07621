"""Filesystem URIs that cannot be served or reached: one line naming the URI, the cause and
what to check, within a bound. Every server here is a port on 127.0.0.1: a closed one
(nothing listens), or a silent one (a socket that listens and never answers)."""

from __future__ import annotations

import importlib.util
import logging
import socket
import sys
import time
from datetime import timedelta

import pytest

from tests.runs import cli
from tests.servers import free_port

RUN = ["run", "--task", "denoise", "--degradation", "gaussian?sigma=25", "--method", "denoise/median"]
RUN += ["--executor", "local", "--no-tracking"]


@pytest.fixture
def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


@pytest.fixture
def silent_port():
    """A port that accepts connections (the kernel completes them) and never sends a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


def _env(tmp_path, port: int, **extra: str) -> dict[str, str]:
    """S3 and GCS clients pointed at 127.0.0.1:PORT (nothing else is contacted), private caches."""
    endpoint = f"http://127.0.0.1:{port}"
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL_S3": endpoint,
        "STORAGE_EMULATOR_HOST": endpoint,
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "RESTOREBENCH_CACHE": str(tmp_path / "cache.sqlite"),
        **extra,
    }


def _failed(*args, env: dict[str, str], within_s: float) -> tuple[str, str]:
    """Run the CLI; it must exit 2 within ``within_s`` printing one error line and one hint
    line (no traceback). Returns (message, hint)."""
    started = time.monotonic()
    result = cli(*args, env=env, timeout=120)
    elapsed = time.monotonic() - started
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("  hint: "), result.stderr
    assert elapsed < within_s, f"{elapsed:.1f} s: {lines[0]}"
    return lines[0][len("error: ") :], lines[1][len("  hint: ") :]


def test_schemes_nothing_serves_and_servers_that_refuse_are_one_line_errors(tmp_path, closed_port):
    env = _env(tmp_path, closed_port, RESTOREBENCH_STORAGE_TIMEOUT="2")
    out = ["--out", str(tmp_path / "out")]
    ftp = f"ftp://127.0.0.1:{closed_port}/photos"  # fsspec's FTP client connects when it is made
    message, hint = _failed(*RUN, *out, "--dataset", f"folder:{ftp}", env=env, within_s=30)
    assert message == f"cannot open {ftp}: connection refused"
    assert hint == "check the host, the network and the credentials"

    message, hint = _failed(*RUN, *out, "--dataset", "folder:nosuchfs://x/y", env=env, within_s=30)
    assert message == "cannot open nosuchfs://x/y: no installed filesystem serves nosuchfs://"
    assert hint.startswith("pyarrow reads s3://, gs://, hdfs:// and file:// by itself")

    hdfs = f"hdfs://127.0.0.1:{closed_port}/photos"  # no Java here; with one, the namenode refuses
    message, _ = _failed(*RUN, *out, "--dataset", f"folder:{hdfs}", env=env, within_s=30)
    assert message.startswith(f"cannot open {hdfs}: ") or message.startswith(f"cannot list {hdfs}: ")


@pytest.mark.slow
def test_buckets_on_a_closed_port_fail_within_seconds_for_datasets_and_run_directories(
    tmp_path, closed_port, image_folder
):
    env = _env(tmp_path, closed_port)  # the default timeout
    refused = f"nothing accepts connections at 127.0.0.1 port {closed_port}"
    out = ["--out", str(tmp_path / "out")]
    message, hint = _failed(*RUN, *out, "--dataset", "folder:s3://bench/photos", env=env, within_s=30)
    assert message == f"cannot list s3://bench/photos: {refused}"
    assert hint.startswith("check the network, AWS_ENDPOINT_URL") and "s3fs" not in message + hint

    message, hint = _failed(*RUN, *out, "--dataset", "folder:gs://bench/photos", env=env, within_s=30)
    assert message == "cannot list gs://bench/photos: connection refused"
    assert "STORAGE_EMULATOR_HOST" in hint

    # --out s3://... (the staging mirror) and reading a run directory back
    dataset = ["--dataset", f"folder:{image_folder}"]
    message, _ = _failed(*RUN, *dataset, "--out", "s3://bench/runs/r1", env=env, within_s=30)
    assert message == f"cannot read s3://bench/runs/r1: {refused}"
    report = ["report", "s3://bench/runs/r1", "--out", str(tmp_path / "report")]
    assert _failed(*report, env=env, within_s=30)[0] == f"cannot read s3://bench/runs/r1: {refused}"
    parquet = ["report", "s3://bench/runs/r1/results.parquet", "--out", str(tmp_path / "report")]
    assert _failed(*parquet, env=env, within_s=30)[0] == f"cannot read s3://bench/runs/r1/results.parquet: {refused}"


@pytest.mark.slow
def test_a_silent_server_is_given_up_after_the_timeout(tmp_path, silent_port, image_folder):
    env = _env(tmp_path, silent_port, RESTOREBENCH_STORAGE_TIMEOUT="1")
    out = ["--out", str(tmp_path / "out")]
    slow_link = "on a slow link raise RESTOREBENCH_STORAGE_TIMEOUT (now 1 s)"
    # S3: 3 tries of 1 s each
    message, hint = _failed(*RUN, *out, "--dataset", "folder:s3://bench/photos", env=env, within_s=15)
    assert message == "cannot list s3://bench/photos: no answer within the 1 s timeout"
    assert hint.endswith(slow_link)
    # GCS has no timeout of its own (it waits 120 s): the first contact gives up after 6 x 1 s
    message, hint = _failed(*RUN, *out, "--dataset", "folder:gs://bench/photos", env=env, within_s=15)
    assert message == "cannot list gs://bench/photos: no answer within 6 s"
    assert hint.endswith(slow_link)
    ftp = f"ftp://127.0.0.1:{silent_port}/photos"  # waits for the server's greeting
    message, _ = _failed(*RUN, *out, "--dataset", f"folder:{ftp}", env=env, within_s=15)
    assert message == f"cannot open {ftp}: no answer within the 1 s timeout"
    dataset = ["--dataset", f"folder:{image_folder}"]
    message, _ = _failed(*RUN, *dataset, "--out", "s3://bench/runs/r1", env=env, within_s=15)
    assert message == "cannot read s3://bench/runs/r1: no answer within the 1 s timeout"


@pytest.fixture
def storage(monkeypatch):
    """The storage module with no filesystem cached yet (the environment decides a new one)."""
    from restorebench.data import storage

    monkeypatch.setattr(storage, "_OPENED", {})
    return storage


def test_s3_and_gcs_need_nothing_but_pyarrow_and_take_the_timeout(monkeypatch, storage):
    import pyarrow.fs as pafs

    for name in ("s3fs", "gcsfs", "fsspec", "fsspec.core"):
        monkeypatch.setitem(sys.modules, name, None)  # not importable: `import s3fs` raises
    for key, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "eu-west-3",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",  # nothing is contacted: making a client is offline
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9",
        "RESTOREBENCH_STORAGE_TIMEOUT": "2.5",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    s3, path = storage.open_filesystem("s3://bench/a%20b/photos/")
    assert isinstance(s3, pafs.S3FileSystem) and path == "bench/a b/photos"
    options = s3.__reduce__()[1][0]
    assert (options["region"], options["endpoint_override"]) == ("eu-west-3", "http://127.0.0.1:9")
    assert (options["connect_timeout"], options["request_timeout"]) == (2.5, 2.5)
    gcs, path = storage.open_filesystem("gs://bench/photos")
    assert isinstance(gcs, pafs.GcsFileSystem) and path == "bench/photos"
    options = gcs.__reduce__()[1][0]
    assert options["retry_time_limit"] == timedelta(seconds=2.5)
    assert (options["endpoint_override"], options["scheme"], options["anonymous"]) == ("127.0.0.1:9", "http", True)


def test_an_s3_uri_never_falls_back_to_s3fs(monkeypatch, storage):
    from restorebench.core.errors import UserError

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with pytest.raises(UserError) as caught:  # pyarrow refuses a query; s3fs is not the way out
        storage.open_filesystem("s3://bench/runs/r1?bogus=1")
    assert caught.value.args[0] == "s3://bench/runs/r1?bogus=1: s3:// URIs take no ?query"
    assert "s3fs" not in str(caught.value)


@pytest.mark.skipif(
    importlib.util.find_spec("fsspec") is None or importlib.util.find_spec("adlfs") is not None,
    reason="needs fsspec without adlfs",
)
def test_a_scheme_whose_fsspec_package_is_missing_says_which_and_the_hint_agrees(storage):
    from restorebench.core.errors import UserError

    with pytest.raises(UserError) as caught:
        storage.open_filesystem("az://container/photos")
    message, hint = caught.value.args[0], caught.value.hint
    assert message.startswith("cannot open az://container/photos: Install adlfs")
    assert "adlfs for az://" in hint and "pyarrow reads s3://" in hint


def test_a_bad_timeout_setting_is_a_one_line_error(monkeypatch, storage):
    from restorebench.core.errors import UserError

    for bad in ("abc", "0", "-3", "nan"):
        monkeypatch.setenv("RESTOREBENCH_STORAGE_TIMEOUT", bad)
        with pytest.raises(UserError) as caught:
            storage.timeout_s()
        assert caught.value.args[0] == f"RESTOREBENCH_STORAGE_TIMEOUT={bad} is not a number of seconds"
    monkeypatch.delenv("RESTOREBENCH_STORAGE_TIMEOUT")
    assert storage.timeout_s() == storage.DEFAULT_TIMEOUT_S == 5


def test_worker_reads_and_mirror_pushes_to_a_closed_port_fail_in_one_line(
    monkeypatch, storage, tmp_path, closed_port, caplog
):
    from restorebench.core.errors import ImageLoadError, UserError
    from restorebench.run.mirror import Mirror

    for key, value in _env(tmp_path, closed_port).items():
        monkeypatch.setenv(key, value)
    refused = f"nothing accepts connections at 127.0.0.1 port {closed_port}"
    started = time.monotonic()
    with pytest.raises(ImageLoadError) as caught:  # a worker's read: that unit fails, the run goes on
        storage.read_bytes("s3://bench/photos/a.png")
    assert str(caught.value) == f"cannot read s3://bench/photos/a.png: {refused}"

    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "results.parquet").write_bytes(b"x")
    mirror = Mirror("s3://bench/runs/r1", local=tmp_path / "staging", every_s=0)
    with pytest.raises(UserError) as pushed:
        mirror.push()
    assert pushed.value.args[0] == f"cannot write to s3://bench/runs/r1: {refused}"
    with caplog.at_level(logging.WARNING, logger="restorebench.run.mirror"):
        mirror.maybe_push()  # during a run: a warning, and the run goes on
    assert [r.getMessage() for r in caplog.records] == [
        f"could not push to s3://bench/runs/r1 (cannot write to s3://bench/runs/r1: {refused}); retrying in 0 s"
    ]
    assert time.monotonic() - started < 30
