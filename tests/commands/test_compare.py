"""The regression gate on real runs: pairing, bootstrap CIs, verdicts, mismatches, exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restorebench.commands.compare import compare, load_side, paired_bootstrap_ci
from restorebench.core.errors import UserError
from restorebench.run.pipeline import RunOptions, run_suite
from tests import REPO as ROOT
from tests.runs import cli

METHODS = ("denoise/median", "denoise/box")

PLUGIN = '''
"""A plugin denoiser: median 3x3; version 2 adds noise to its output (a deliberate regression)."""
import os

import numpy as np
from scipy.ndimage import median_filter

from restorebench.core.interfaces import Method


class MyModel(Method):
    name = "mymodel"
    task = "denoise"
    version = os.environ.get("MYMODEL_VERSION", "1")

    def restore_one(self, item):
        out = median_filter(item.image, size=(3, 3, 1), mode="reflect")
        if self.version == "2":
            out = out + np.random.default_rng(0).normal(0.0, 0.08, out.shape).astype(out.dtype)
        return out
'''


def _run(folder: Path, out: Path, methods=METHODS, **kw):
    options = dict(
        tasks=("denoise",),
        datasets=(f"folder:{folder}",),
        degradations=("gaussian?sigma=25", "saltpepper?density=0.1"),
        methods=methods,
        out=out,
        executor="local",
        tracking=False,
    )
    return run_suite(RunOptions(**{**options, **kw}))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return cli("compare", *args, cwd=ROOT, timeout=120)


@pytest.fixture
def two_runs(image_folder, tmp_path) -> tuple[Path, Path]:
    """The same suite run twice into two run directories (the second from the results cache)."""
    _run(image_folder, tmp_path / "base")
    _run(image_folder, tmp_path / "cand")
    return tmp_path / "base", tmp_path / "cand"


# ---------------------------------------------------------------- the bootstrap


def test_bootstrap_ci_matches_a_plain_loop_over_the_same_draws():
    deltas = np.random.default_rng(7).normal(0.3, 1.0, size=12)
    resamples, seed = 500, 3
    index = np.random.default_rng(seed).integers(0, deltas.size, size=(resamples, deltas.size))
    means = []
    for row in index:
        total = 0.0
        for i in row:
            total += deltas[i]
        means.append(total / deltas.size)
    expected = np.quantile(means, [0.025, 0.975])
    low, high = paired_bootstrap_ci(deltas, resamples=resamples, seed=seed)
    assert (low, high) == pytest.approx(tuple(expected), abs=1e-12)
    assert low < deltas.mean() < high
    assert paired_bootstrap_ci(deltas, resamples=resamples, seed=seed) == (low, high)  # seeded
    assert paired_bootstrap_ci(deltas, resamples=resamples, seed=seed + 1) != (low, high)
    narrow = paired_bootstrap_ci(deltas, resamples=resamples, seed=seed, level=0.5)
    assert low < narrow[0] < narrow[1] < high


def test_bootstrap_ci_of_constant_and_single_deltas():
    assert paired_bootstrap_ci(np.full(5, 0.1), resamples=200, seed=0) == (0.1, 0.1)
    assert paired_bootstrap_ci(np.array([-0.7]), resamples=200, seed=0) == (-0.7, -0.7)
    with pytest.raises(ValueError):
        paired_bootstrap_ci(np.array([]), resamples=200, seed=0)


# ---------------------------------------------------------------- verdicts


def test_identical_runs_are_the_same_and_pass_the_gate(two_runs, tmp_path):
    base, cand = two_runs
    result = compare(load_side(str(base), None), load_side(str(cand), None), metrics=["psnr,ssim"])
    assert len(result.rows) == 2 * 2 * len(METHODS)
    assert set(result.rows["verdict"]) == {"same"} and result.regressions == 0 and result.mismatches == []
    assert (result.rows["n"] == 3).all() and (result.rows["delta"] == 0).all()
    # A run directory and a results .parquet are both accepted; --markdown also writes the file.
    proc = _cli(base, cand / "results.parquet", "--markdown", tmp_path / "comment.md")
    assert proc.returncode == 0, proc.stderr
    assert "✅ no regression" in proc.stdout and "❌" not in proc.stdout
    assert proc.stdout.count("➖ same") == 2 * len(METHODS)
    assert (tmp_path / "comment.md").read_text().strip() == proc.stdout.strip()


def test_a_worse_plugin_version_fails_the_gate(image_folder, tmp_path, monkeypatch):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "mymodel_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    import mymodel_plugin

    methods = ("denoise/median", "mymodel_plugin:MyModel")
    _run(image_folder, tmp_path / "base", methods=methods)
    monkeypatch.setattr(mymodel_plugin.MyModel, "version", "2")
    cand = _run(image_folder, tmp_path / "cand", methods=methods)
    assert set(cand.results["method"]) == {"denoise/median", "denoise/mymodel"}
    assert cand.computed == 3 * 2  # only the plugin's units changed; the median came from the cache

    proc = _cli(tmp_path / "base", tmp_path / "cand")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("| denoise |")]
    assert len(lines) == 4
    assert all("❌ worse" in line for line in lines if "denoise/mymodel (v1 → v2)" in line)
    assert all("➖ same" in line for line in lines if "denoise/median" in line)
    assert "❌ 2 regression(s)" in proc.stdout

    proc = _cli(tmp_path / "base", tmp_path / "cand", "--json", "--metric", "psnr", "--metric", "ssim")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["regressions"] >= 1 and doc["metrics"] == ["psnr", "ssim"]
    rows = pd.DataFrame(doc["rows"])
    mine = rows[rows["method"] == "denoise/mymodel"]
    assert (mine["verdict"] == "worse").all() and (mine["ci_high"] < 0).all() and (mine["delta"] < -0.05).all()
    assert set(mine["base_version"]) == {"1"} and set(mine["cand_version"]) == {"2"}
    assert (rows.loc[rows["method"] == "denoise/median", "verdict"] == "same").all()
    # Swapped, the change is an improvement, which passes the gate.
    assert _cli(tmp_path / "cand", tmp_path / "base").returncode == 0


# ---------------------------------------------------------------- mismatches


def test_mismatches_are_reported_and_the_rest_compared(two_runs, tmp_path):
    base_dir, cand_dir = two_runs
    base, cand = load_side(str(base_dir), None).frame(), load_side(str(cand_dir), None).frame()
    # CAND lacks one image; box is only in BASE; median's psnr under another version for
    # saltpepper; one median unit failed in CAND.
    cand = cand[(cand["image"] != "b_camera.png") & (cand["method"] != "denoise/box")].copy()
    salt = (cand["degradation"] == "saltpepper?density=0.1") & (cand["metric"] == "psnr")
    cand.loc[salt, "metric_version"] = "2"
    failed = (cand["image"] == "c_coffee.jpg") & (cand["degradation"] == "gaussian?sigma=25")
    cand.loc[failed, ["status", "value"]] = ["failed", np.nan]
    result = compare(base, cand, metrics=("psnr", "ssim"))

    rows = result.rows.set_index(["degradation", "metric"])
    assert set(result.rows["method"]) == {"denoise/median"}
    assert set(rows.index) == {
        ("gaussian?sigma=25", "psnr"),
        ("gaussian?sigma=25", "ssim"),
        ("saltpepper?density=0.1", "ssim"),
    }
    assert rows.loc[("gaussian?sigma=25", "psnr"), "n"] == 1 and rows.loc[("saltpepper?density=0.1", "ssim"), "n"] == 2
    assert rows.loc[("gaussian?sigma=25", "psnr"), "cand_failed"] == 1
    text = "\n".join(result.mismatches)
    assert "b_camera.png" in text and "only in BASE" in text
    assert "denoise/box on" in text and "method only in BASE" in text
    assert "metric `psnr` version 1 in BASE vs 2 in CAND: 2 image(s) not compared" in text
    assert "CAND: denoise/median" in text and "1 of 2 unit(s) failed" in text  # b_camera.png is gone
    assert "image(s) failed in CAND: c_coffee.jpg" in text
    markdown = result.to_markdown()
    assert "### Mismatches" in markdown and "b_camera.png" in markdown.split("### Mismatches")[1]


def test_nothing_pairable_exits_2_with_a_reason(two_runs, tmp_path):
    base_dir, cand_dir = two_runs
    cand = load_side(str(cand_dir), None).frame()
    cand["metric_version"] = "9"
    cand.to_parquet(tmp_path / "other.parquet", index=False)
    proc = _cli(base_dir, tmp_path / "other.parquet")
    assert proc.returncode == 2 and "nothing to compare" in proc.stderr and "version 1 in BASE vs 9" in proc.stderr
    with pytest.raises(UserError, match="nothing to compare"):
        compare(load_side(str(base_dir), None).frame(), cand[cand["method"] == "none"])
    with pytest.raises(UserError, match="unknown metric 'psnrr'"):
        compare(load_side(str(base_dir), None).frame(), cand, metrics=["psnrr"])
    proc = _cli(base_dir, tmp_path / "missing")
    assert proc.returncode == 2 and "not a run directory" in proc.stderr


# ---------------------------------------------------------------- MLflow run ids


def test_an_mlflow_run_id_is_a_side(image_folder, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    small = dict(methods=("denoise/median",), degradations=("gaussian?sigma=25",))
    logged = _run(image_folder, tmp_path / "logged", tracking=True, tracking_uri=uri, **small)
    assert logged.tracking_error is None and logged.mlflow_run_id
    _run(image_folder, tmp_path / "local", **small)
    proc = _cli(f"runs:/{logged.mlflow_run_id}", tmp_path / "local", "--tracking-uri", uri, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["rows"]) == 1 and doc["rows"][0]["n"] == 3 and doc["regressions"] == 0 and doc["mismatches"] == []
    pd.testing.assert_frame_equal(load_side(logged.mlflow_run_id, uri), logged.results)
    with pytest.raises(UserError, match=f"cannot read results.parquet of MLflow run {'0' * 32}"):
        load_side("0" * 32, uri)


# ---------------------------------------------------------------- a candidate that crashes

CRASHER = '''
import os

from scipy.ndimage import median_filter

from restorebench import Method


class Crasher(Method):
    """A median filter; as version "2" it crashes on the images named in CRASH_ON ("*": all)."""

    name = "crasher"
    task = "denoise"
    version = "1"

    def restore_one(self, item):
        crash_on = os.environ.get("CRASH_ON", "")
        if self.version == "2" and crash_on:
            raise RuntimeError("the new model crashed")
        return median_filter(item.image, size=(3, 3, 1), mode="reflect")
'''


@pytest.fixture
def crasher(tmp_path, monkeypatch):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "crasher_plugin.py").write_text(CRASHER)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    import crasher_plugin

    return crasher_plugin.Crasher


def test_a_candidate_that_fails_on_every_image_is_a_regression(image_folder, tmp_path, monkeypatch, crasher):
    methods = ("denoise/median", "crasher_plugin:Crasher")
    _run(image_folder, tmp_path / "base", methods=methods)
    monkeypatch.setattr(crasher, "version", "2")
    monkeypatch.setenv("CRASH_ON", "*")
    cand = _run(image_folder, tmp_path / "cand", methods=methods)
    assert cand.failed == 3 * 2
    result = compare(load_side(str(tmp_path / "base"), None), load_side(str(tmp_path / "cand"), None))
    failed = result.rows[result.rows["verdict"] == "failed"]
    assert len(failed) == 2 and set(failed["method"]) == {"denoise/crasher"}  # one per degradation
    assert (failed["newly_failed"] == 3).all() and (failed["cand_failed"] == 3).all() and failed["cand"].isna().all()
    assert result.regressions == 2
    proc = _cli(tmp_path / "base", tmp_path / "cand")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # was: "no regression", exit 0
    assert "❌ 2 regression(s) (2 failed, 0 worse" in proc.stdout and "💥 failed" in proc.stdout
    assert all("| 0/3 |" in line for line in proc.stdout.splitlines() if "denoise/crasher" in line and "💥" in line)


def test_one_newly_failed_image_turns_a_same_row_into_a_regression(image_folder, tmp_path, monkeypatch, crasher):
    methods = ("crasher_plugin:Crasher",)
    _run(image_folder, tmp_path / "base", methods=methods)
    base = load_side(str(tmp_path / "base"), None).frame()
    cand = base.copy()
    broken = (cand["image"] == "b_camera.png") & (cand["degradation"] == "gaussian?sigma=25")
    cand.loc[broken, ["status", "error", "value"]] = ["failed", "b_camera.png: RuntimeError: boom", float("nan")]
    result = compare(base, cand)
    row = result.rows.set_index("degradation").loc["gaussian?sigma=25"]
    assert (row["verdict"], row["n"], row["newly_failed"], row["cand_failed"]) == ("failed", 2, 1, 1)
    assert result.rows.set_index("degradation").loc["saltpepper?density=0.1", "verdict"] == "same"
    assert result.regressions == 1
