"""Datasets and run directories on an S3-protocol server (moto, started on 127.0.0.1): workers
read the images themselves, the run directory lands in the bucket, and report, log, compare
and --resume read it back."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from tests.runs import cli
from tests.servers import S3Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    server = S3Server().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def env(s3, tmp_path):
    """The server's credentials and endpoint, and private caches (staging, results)."""
    return {**s3.env, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "RESTOREBENCH_CACHE": str(tmp_path / "cache.sqlite")}


def _remote_results(s3: S3Server, key: str) -> pd.DataFrame:
    """The results dataset under ``key`` (a folder of Parquet files, one subfolder per task)."""
    frames = []
    for part in sorted(k for k in s3.keys(key) if k.endswith(".parquet")):
        with s3.filesystem().open_input_file(f"{s3.bucket}/{part}") as f:
            frames.append(pd.read_parquet(io.BytesIO(f.read())))
    return pd.concat(frames, ignore_index=True)


def _values(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index(["image", "degradation", "method", "metric"])["value"].sort_index()


def test_a_run_reads_a_bucket_folder_on_ray_workers_and_writes_its_run_directory_to_the_bucket(
    s3, env, image_folder, tmp_path
):
    for path in sorted(image_folder.iterdir()):
        s3.put(path, f"photos/{path.name}")
    args = ["run", "--task", "denoise", "--degradation", "gaussian?sigma=25", "--method", "denoise/median"]
    args += ["--method", "denoise/gaussian", "--no-tracking"]
    remote = cli(
        *args,
        "--dataset",
        f"folder:s3://{s3.bucket}/photos",
        "--out",
        f"s3://{s3.bucket}/runs/r1",
        "--num-cpus",
        "2",
        env=env,
        cwd=tmp_path,
    )
    assert remote.returncode == 0, remote.stderr
    assert f"run directory: s3://{s3.bucket}/runs/r1" in remote.stdout
    keys = s3.keys("runs/r1")
    assert {"runs/r1/run.json", "runs/r1/spec.yaml"} <= set(keys)
    assert [k for k in keys if k.startswith("runs/r1/results.parquet/denoise/part-")]  # the dataset, by task
    assert not [k for k in keys if "/shards/" in k]  # compaction's merged shards are gone from the bucket too

    local = cli(
        *args,
        "--dataset",
        f"folder:{image_folder}",
        "--out",
        tmp_path / "local",
        "--executor",
        "local",
        "--no-cache",
        env=env,
        cwd=tmp_path,
    )
    assert local.returncode == 0, local.stderr
    theirs = _remote_results(s3, "runs/r1/results.parquet")
    ours = pd.read_parquet(tmp_path / "local" / "results.parquet")
    assert len(theirs) == len(ours) == 3 * 2 * 4  # images x methods x denoise metrics
    pd.testing.assert_series_equal(_values(theirs), _values(ours), check_exact=True)
    assert set(theirs["image"]) == {"a_astronaut.png", "b_camera.png", "c_coffee.jpg"}
    assert set(theirs["image_hash"]) == set(ours["image_hash"])  # content hashes: the same noise as a local copy

    # the same --out again: refused as a local folder would be; --resume completes nothing new
    def bucket_run(*extra):
        dataset, out = f"folder:s3://{s3.bucket}/photos", f"s3://{s3.bucket}/runs/r1"
        return cli(*args, "--dataset", dataset, "--out", out, "--executor", "local", *extra, env=env, cwd=tmp_path)

    again = bucket_run()
    assert again.returncode == 2 and "already holds results" in again.stderr and "--resume" in again.stderr
    resumed = bucket_run("--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "6 resumed" in resumed.stdout or "resumed: 6" in resumed.stdout, resumed.stdout

    report = cli("report", f"s3://{s3.bucket}/runs/r1", "--out", tmp_path / "report", env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "denoise/median" in (tmp_path / "report" / "LEADERBOARD.md").read_text()
    compare = cli("compare", f"s3://{s3.bucket}/runs/r1", f"s3://{s3.bucket}/runs/r1/results.parquet", env=env)
    assert compare.returncode == 0, compare.stderr
    logged = cli("log", f"s3://{s3.bucket}/runs/r1", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", env=env)
    assert logged.returncode == 0, logged.stderr
    assert '"parent_run_id"' in s3.filesystem().open_input_file(f"{s3.bucket}/runs/r1/run.json").read().decode()


def test_missing_bucket_folders_and_unknown_schemes_are_clear_errors(s3, env, tmp_path):
    args = ["run", "--task", "denoise", "--degradation", "gaussian?sigma=25", "--method", "denoise/median"]
    args += ["--executor", "local", "--no-tracking", "--out", tmp_path / "out"]
    missing = cli(*args, "--dataset", f"folder:s3://{s3.bucket}/nothing-here", env=env)
    assert missing.returncode == 2
    assert f"s3://{s3.bucket}/nothing-here does not exist" in missing.stderr and "Traceback" not in missing.stderr
    unknown = cli(*args, "--dataset", "folder:nosuchfs://x/y", env=env)
    assert unknown.returncode == 2 and "cannot open nosuchfs://x/y" in unknown.stderr
    assert "Traceback" not in unknown.stderr
