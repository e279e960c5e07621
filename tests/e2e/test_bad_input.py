"""Bad input through the command line: one clear line naming the file or option and the fix,
exit 2, never a traceback, never a hang."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.runs import cli

SMALL = [
    "--task",
    "denoise",
    "--method",
    "denoise/median",
    "--dataset",
    "synthetic:deadleaves?n=2&size=32",
    "--degradation",
    "gaussian?sigma=5",
    "--executor",
    "local",
    "--no-tracking",
]


def assert_clean(result, *needles, code=2):
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    assert cli("run", *SMALL, "--out", root / "run", cwd=root).returncode == 0
    return root / "run"


def test_a_suite_that_is_not_utf8(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    assert_clean(cli("run", "latin1.yaml", cwd=tmp_path), "latin1.yaml is not UTF-8 text", "save the file as UTF-8")


def test_a_run_directory_whose_run_json_is_invalid(tmp_path, good_run):
    import shutil

    shutil.copytree(good_run, tmp_path / "run")
    (tmp_path / "run" / "run.json").write_text("{nope")
    assert_clean(cli("run", *SMALL, "--out", "run", "--resume", cwd=tmp_path), "run.json is not valid JSON")
    assert_clean(cli("log", "run", cwd=tmp_path), "run.json is not valid JSON")


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    assert_clean(cli("run", *SMALL, "--out", "taken", cwd=tmp_path), "is a file, not a directory")


def test_a_corrupt_or_foreign_results_parquet(tmp_path, good_run):
    (tmp_path / "corrupt.parquet").write_bytes(b"PAR1 not really")
    assert_clean(cli("report", "corrupt.parquet", cwd=tmp_path), "corrupt.parquet is not a readable Parquet file")
    assert_clean(cli("compare", good_run, "corrupt.parquet", cwd=tmp_path), "is not a readable Parquet file")
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "other.parquet")
    assert_clean(cli("report", "other.parquet", cwd=tmp_path), "is not a restorebench results table")


def test_a_corrupt_shard_is_skipped_on_resume_and_its_units_recomputed(tmp_path):
    out = tmp_path / "run"
    assert cli("run", *SMALL, "--out", out, cwd=tmp_path).returncode == 0
    results = pd.read_parquet(out / "results.parquet")
    first = results[results["image"] == "00000"]
    first.to_parquet(out / "results.parquet")  # as if the second image's shard were lost...
    (out / "shards" / "part-broken.parquet").write_bytes(b"cut short")  # ...in a shard cut short
    result = cli("run", *SMALL, "--out", out, "--resume", "--no-cache", cwd=tmp_path)
    assert result.returncode == 0 and "skipping part-broken.parquet" in result.stderr
    assert "1 computed" in result.stdout and "1 resumed" in result.stdout
    assert (out / "shards" / "part-broken.parquet.corrupt").exists()


@pytest.mark.parametrize("kind", ["garbage", "directory"])
def test_a_damaged_results_cache(tmp_path, kind):
    cache = tmp_path / "cache.sqlite"
    if kind == "garbage":
        cache.write_text("not sqlite")
    else:
        cache.mkdir()
    env = {"RESTOREBENCH_CACHE": str(cache)}
    assert_clean(cli("run", *SMALL, "--out", "a", cwd=tmp_path, env=env), "results cache", "--no-cache")
    assert cli("run", *SMALL, "--out", "b", "--no-cache", cwd=tmp_path, env=env).returncode == 0  # never opened


def test_log_on_a_directory_without_spec_yaml(tmp_path):
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "run.json").write_text('{"run_id": "0123"}')
    assert_clean(cli("log", "half", cwd=tmp_path), "has no spec.yaml")
    (tmp_path / "empty").mkdir()
    assert_clean(cli("log", "empty", cwd=tmp_path), "is not a run directory")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--executor", "ray", "--num-cpus", "0"], "--num-cpus must be at least 1, got 0"),
        (["--executor", "ray", "--num-cpus", "-1"], "--num-cpus must be at least 1, got -1"),
        (["--executor", "foo"], "unknown executor 'foo'"),
        (["--executor", "ray", "--address", "127.0.0.1:9"], "cannot reach the Ray cluster at 127.0.0.1:9"),
    ],
)
def test_options_that_hung_or_misled(tmp_path, args, needle):
    base = [a for a in SMALL if a not in ("--executor", "local")]
    assert_clean(cli("run", *base, *args, "--out", "r", cwd=tmp_path, timeout=60), needle)


def test_messages_that_were_unclear(tmp_path):
    assert_clean(
        cli("run", "--task", "denoise", "--degradation", "gaussian?=&", cwd=tmp_path),
        "degradation 'gaussian?=&' has a parameter without a name",
    )  # was: unknown parameter '(all)'
    (tmp_path / "srplug.py").write_text(
        "from restorebench import Method\n\nclass Up(Method):\n    task, name = 'superres', 'up'\n"
    )
    assert_clean(
        cli("run", "--task", "denoise", "--method", "srplug:Up", cwd=tmp_path),
        "--method 'srplug:Up' is for task 'superres', which this run does not include",
    )
    result = cli("run", *SMALL, "--method", "denoise/median", "--out", "dup", cwd=tmp_path)
    assert result.returncode == 0
    assert "duplicate unit(s) run once: tasks[0] (denoise).methods lists denoise/median twice" in result.stderr


def test_a_broken_symlink_in_a_folder_is_named(tmp_path):
    import shutil

    import skimage

    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(Path(skimage.__file__).parent / "data" / "camera.png", folder / "camera.png")
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")
    args = [a if a != "synthetic:deadleaves?n=2&size=32" else f"folder:{folder}" for a in SMALL]
    result = cli("run", *args, "--out", "r", cwd=tmp_path)
    assert result.returncode == 0 and "1 broken symbolic link(s) skipped: gone.png" in result.stderr
