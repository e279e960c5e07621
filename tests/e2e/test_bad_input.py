"""Bad input through the command line: one clear line naming the file or option and the fix,
exit 2, never a traceback, never a hang."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.runs import cli, replace_results

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
    replace_results(out, results[results["image"] == "00000"])  # as if the second image's shard were lost...
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
        "--method 'srplug:Up' is for task 'superres', but this run is --task denoise",
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


# ---------------------------------------------------------------- input that can score nothing


def _png(path: Path, pixels) -> Path:
    from PIL import Image

    Image.fromarray(pixels).save(path)
    return path


def _photo(size: int = 48):
    import numpy as np

    return (np.random.default_rng(0).random((size, size, 3)) * 255).astype("uint8")


def test_input_that_scores_nothing_is_refused_before_work_starts(tmp_path):
    """Knowable before any unit runs: exit 2, one message saying what and why, no run folder."""
    import numpy as np

    (tmp_path / "empty.csv").write_text("gt,lq\n")
    _png(tmp_path / "gt.png", _photo())
    _png(tmp_path / "lq.png", _photo(24))
    (tmp_path / "same.csv").write_text("gt,lq\ngt.png,gt.png\n")
    (tmp_path / "pairs.csv").write_text("gt,lq\ngt.png,lq.png\n")
    (tmp_path / "Sony").mkdir()
    (tmp_path / "list.txt").write_text(
        "./Sony/short/00001_00_0.04s.ARW ./Sony/long/00001_00_10s.ARW ISO200 F8\n"
        "./Sony/short/00002_00_0.1s.ARW ./Sony/long/00002_00_10s.ARW ISO200 F8\n"
    )
    masks = tmp_path / "masks"
    masks.mkdir()
    _png(masks / "all_valid.png", np.full((32, 32), 255, np.uint8))
    (masks / "broken.png").write_bytes(b"not a png")
    cases = [
        (["--task", "superres", "--dataset", "manifest:empty.csv", "--degradation", "given?scale=2"],
         "empty.csv lists no pair (it has a header and no row)"),
        (["--task", "denoise", "--dataset", "manifest:same.csv", "--degradation", "given?sigma=25"],
         "row 2: the LQ is the GT file itself"),
        (["--task", "superres", "--dataset", "manifest:pairs.csv", "--degradation", "given?scale=3"],
         "gt: the LR is 24x24, but its HR (48x48, 48x48 after modcrop) needs 16x16 at scale 3"),
        (["--task", "superres", "--dataset", "manifest:pairs.csv", "--degradation", "given"],
         "super-resolution pairs need the factor they stand for"),
        (["--task", "denoise", "--dataset", "manifest:pairs.csv", "--degradation", "given?sigma=25"],
         "the LQ is 24x24, its GT 48x48: they must be the same size"),
        (["--task", "lowlight", "--dataset", f"sid:{tmp_path / 'list.txt'}?split=test", "--degradation", "sid"],
         "no pair of split 'test': the list holds 2 train pair(s)"),
        (["--task", "inpaint", "--dataset", "synthetic:deadleaves?n=2&size=32",
          "--degradation", f"mask?ratio=0.1-0.2&folder={masks}"],
         "holds no usable mask: 2 file(s) rejected (all_valid.png: no hole; broken.png:"),
    ]  # fmt: skip
    for args, needle in cases:
        result = cli("run", *args, "--executor", "local", "--no-tracking", "--out", "r", cwd=tmp_path)
        assert_clean(result, needle)
        assert not (tmp_path / "r").exists(), args  # refused before the run folder was made


def test_a_run_that_scored_nothing_exits_1_and_says_why(tmp_path):
    import numpy as np

    _png(tmp_path / "gt.png", _photo())
    _png(tmp_path / "lq.png", np.full((48, 48), 128, np.uint8))  # a gray LQ beside an RGB GT
    (tmp_path / "pairs.csv").write_text("gt,lq\ngt.png,lq.png\n")
    args = ["--task", "denoise", "--dataset", "manifest:pairs.csv", "--degradation", "given?sigma=25"]
    result = cli("run", *args, "--method", "denoise/median", "--executor", "local", "--no-tracking", cwd=tmp_path)
    assert_clean(result, "the run scored nothing: every unit failed", code=1)
    assert "gt: the LQ has 1 channel (gray), its GT 3 channels (RGB)" in result.stdout  # the pair, not the method


def test_the_gate_cannot_be_switched_off_by_accident(tmp_path, good_run):
    assert_clean(cli("compare", good_run, good_run, "--tolerance", "nan", cwd=tmp_path), "a finite --tolerance >= 0")
    (tmp_path / "folder").mkdir()
    assert_clean(
        cli("compare", good_run, good_run, "--markdown", "folder", cwd=tmp_path), "--markdown folder is a folder"
    )
    assert_clean(
        cli("compare", good_run, good_run, "--metric", "auc", cwd=tmp_path),
        "metric 'auc' is in neither BASE nor CAND; their metrics: psnr, psnr_y, ssim, ssim_y",
    )
    assert cli("compare", good_run, good_run, cwd=tmp_path).returncode == 0


def test_messages_that_blamed_the_wrong_thing(tmp_path):
    assert_clean(
        cli(
            "run",
            "--task",
            "inpaint",
            "--degradation",
            "mask?ratio=0.3-0.4",
            "--method",
            "denoise/median",
            cwd=tmp_path,
        ),
        "--method 'denoise/median' is for task 'denoise', but this run is --task inpaint",
    )
    result = cli("run", "--task", "denoise", "--degradation", "gaussian?sigmaa=25", cwd=tmp_path)
    assert_clean(result, "unknown parameter 'sigmaa'; did you mean 'sigma'?")
    assert result.stderr.index("sigmaa") < result.stderr.index("missing required parameter 'sigma'")
    assert "{" not in result.stderr  # no dict of the input
    (tmp_path / "suite.yaml").write_text(
        "name: s\ntasks:\n  - task: denoise\n    datasets: [bundled:photos]\n"
        "    degradation: ['gaussian?sigma=25']\n    methods: [denoise/median]\n"
    )
    result = cli("run", "suite.yaml", cwd=tmp_path)
    assert_clean(result, "unknown key 'tasks.0.degradation'; did you mean 'degradations'?")
    assert result.stderr.index("unknown key") < result.stderr.index("tasks.0.degradations: missing")
    result = cli(
        "run",
        "--task",
        "superres",
        "--dataset",
        "parquet:/x/nosuch.parquet",
        "--degradation",
        "given?scale=2",
        cwd=tmp_path,
    )
    assert_clean(result, "Parquet /x/nosuch.parquet: no such file or folder")
