"""Several jobs, one leaderboard: a suite split by ``--shard I/N`` into runs that ``report`` and
``compare`` read as one (overlapping units once), and runs of different protocols refused."""

from __future__ import annotations

import pandas as pd

from tests.runs import cli

ARGS = ["--task", "denoise", "--method", "denoise/median", "--method", "denoise/box"]
ARGS += ["--degradation", "gaussian?sigma=25", "--executor", "local", "--no-tracking", "--no-cache"]
TIMING = ["runtime_ms", "runtime_ms_per_mp"]


def _run(tmp_path, folder, out, *extra):
    result = cli("run", *ARGS, "--dataset", f"folder:{folder}", "--out", out, *extra, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result


def test_jobs_of_image_slices_make_the_leaderboard_of_the_whole(image_folder, tmp_path):
    _run(tmp_path, image_folder, tmp_path / "whole")
    _run(tmp_path, image_folder, tmp_path / "jobs" / "job-0", "--shard", "0/2")
    second = _run(tmp_path, image_folder, tmp_path / "jobs" / "job-1", "--shard", "1/2")
    assert "units: 2 (" in second.stdout  # 1 image x 2 methods: the second half of 3 images
    _run(tmp_path, image_folder, tmp_path / "jobs" / "job-0-again", "--shard", "0/2")  # overlaps job-0
    joined = cli("report", tmp_path / "jobs", "--format", "csv", "--out", tmp_path / "joined", cwd=tmp_path)
    assert joined.returncode == 0, joined.stderr
    whole = cli("report", tmp_path / "whole", "--format", "csv", "--out", tmp_path / "alone", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    ours, theirs = (pd.read_csv(tmp_path / d / "leaderboard.csv").drop(columns=TIMING) for d in ("joined", "alone"))
    pd.testing.assert_frame_equal(ours, theirs)  # each unit once: 3 images, not 5
    assert set(ours["images"]) == {3}
    compared = cli("compare", tmp_path / "whole", tmp_path / "jobs", "--metric", "psnr,ssim", cwd=tmp_path)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert "None: every result was paired." in compared.stdout and compared.stdout.count("➖ same") == 4


def test_runs_of_different_protocols_are_refused_with_what_differs(image_folder, tmp_path):
    _run(tmp_path, image_folder, tmp_path / "jobs" / "a", "--shard", "0/2")
    _run(tmp_path, image_folder, tmp_path / "jobs" / "b", "--shard", "1/2", "--seed", "7")
    result = cli("report", tmp_path / "jobs" / "a", tmp_path / "jobs" / "b", "--out", tmp_path / "r", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "were not scored under one protocol" in result.stderr and "seed: 0 in a; 7 in b" in result.stderr
    assert not (tmp_path / "r").exists()
    bad = cli("run", *ARGS, "--dataset", f"folder:{image_folder}", "--shard", "2/2", cwd=tmp_path)
    assert bad.returncode == 2 and "--shard '2/2' is not I/N with 0 <= I < N" in bad.stderr
