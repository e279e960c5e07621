"""The gate and the leaderboard read each metric's direction: closer to a target (an
over-saturating colorizer is a regression on ``colorfulness_gap``), descriptive (``saturation``
is never gated), lower is better (``hole_l1`` ranks ascending), and set-level metrics
(``auc_rebal`` is compared by resampling the images' statistics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restorebench.commands.compare import compare
from restorebench.results.board import build_leaderboard
from restorebench.run.pipeline import RunOptions, run_suite
from tests.conftest import write_image

TINT = '''
"""A plugin colorizer that paints every image one colour: v1 a faint tint (washed out), v2 a loud one."""
import numpy as np
from skimage.color import lab2rgb

from restorebench import Method


class Tint(Method):
    task = "colorize"
    name = "tint"
    version = "1"

    def restore_one(self, item):
        a, b = (10.0, 15.0) if self.version == "1" else (90.0, 90.0)
        lightness = item.image[..., 0].astype(np.float64) * 100.0
        lab = np.stack([lightness, np.full_like(lightness, a), np.full_like(lightness, b)], axis=2)
        return np.clip(lab2rgb(lab), 0.0, 1.0).astype(np.float32)
'''


@pytest.fixture
def colour_folder(tmp_path) -> Path:
    """Two crops of moderate colour (the astronaut's face, the cat), colourfulness 35 and 45."""
    from skimage import data

    folder = tmp_path / "colour"
    folder.mkdir()
    write_image(folder / "astronaut.png", data.astronaut()[100:164, 150:230])
    write_image(folder / "chelsea.png", data.chelsea()[100:164, 150:230])
    return folder


@pytest.fixture
def tint_runs(colour_folder, tmp_path, monkeypatch):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "tint_plugin.py").write_text(TINT)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    import tint_plugin

    def run(out: str):
        options = RunOptions(
            tasks=("colorize",),
            datasets=(f"folder:{colour_folder}",),
            degradations=("gray",),
            methods=("tint_plugin:Tint",),
            out=tmp_path / out,
            executor="local",
            tracking=False,
        )
        return run_suite(options).results

    base = run("base")
    monkeypatch.setattr(tint_plugin.Tint, "version", "2")
    return base, run("cand")


def _gaps(results: pd.DataFrame) -> np.ndarray:
    return results[results["metric"] == "colorfulness_gap"].sort_values("image")["value"].to_numpy()


def test_an_over_saturating_candidate_is_a_regression_and_saturation_is_never_gated(tint_runs):
    base, cand = tint_runs
    before, after = _gaps(base), _gaps(cand)
    assert (before < -10).all() and (after > 50).all()  # washed out, then much too colourful
    assert (after.mean() - before.mean()) > 0  # "higher" would have called this an improvement

    result = compare(base, cand, metrics=["colorfulness_gap", "saturation"], tolerance=0.05)
    rows = result.rows.set_index("metric")
    gap = rows.loc["colorfulness_gap"]
    assert gap["verdict"] == "worse" and gap["delta"] > 0 and gap["gain"] < 0 and gap["gain_high"] < 0
    assert gap["gain"] == pytest.approx(np.mean(np.abs(before) - np.abs(after)))
    assert gap["direction"] == "closer to 0 is better"
    sat = rows.loc["saturation"]
    assert sat["cand"] > sat["base"] and sat["verdict"] == "descriptive" and np.isnan(sat["gain"])
    assert result.regressions == 1  # colorfulness_gap only
    assert "colorfulness_gap →0" in result.to_markdown() and "ℹ️ not gated" in result.to_markdown()
    # swapped: the candidate is the faithful one
    assert compare(cand, base, metrics=["colorfulness_gap"]).rows["verdict"].tolist() == ["better"]
    # saturation alone never fails the gate, however much it moved
    alone = compare(base, cand, metrics=["saturation"])
    assert alone.regressions == 0 and alone.rows["verdict"].tolist() == ["descriptive"]


def test_a_set_level_metric_is_compared_on_its_set_value_with_resampled_statistics(tint_runs):
    from restorebench.core.build import build_metric

    base, cand = tint_runs
    result = compare(base, cand, metrics=["auc_rebal"], resamples=500)
    row = result.rows.iloc[0]
    metric = build_metric("auc_rebal")
    stats = {
        side: np.stack(frame[frame["metric"] == "auc_rebal"].sort_values("image")["stats"].to_list())
        for side, frame in (("base", base), ("cand", cand))
    }
    assert row["base"] == metric.group_value(stats["base"]) and row["cand"] == metric.group_value(stats["cand"])
    assert row["delta"] == pytest.approx(row["cand"] - row["base"], abs=1e-15)
    assert row["ci_low"] <= row["delta"] <= row["ci_high"]
    per_image_mean = base[base["metric"] == "auc_rebal"]["value"].mean()
    assert row["base"] != pytest.approx(per_image_mean, abs=1e-6)  # the set's value, not the mean of images'
    assert row["verdict"] == "worse"  # one loud colour everywhere misses every colour class


def test_a_lower_is_better_metric_ranks_ascending_and_gates_the_right_way(image_folder, tmp_path):
    suite = tmp_path / "inpaint.yaml"
    suite.write_text(
        "name: holes\ntasks:\n  - task: inpaint\n"
        f"    datasets: ['folder:{image_folder}']\n"
        "    degradations: ['mask?ratio=0.3-0.4']\n"
        "    methods: [inpaint/mean, inpaint/telea, inpaint/biharmonic]\n"
        "    metrics: [hole_l1, psnr]\n"
    )
    summary = run_suite(RunOptions(suite=str(suite), out=tmp_path / "run", executor="local", tracking=False))
    board = build_leaderboard(summary.results).table
    assert set(board["rank_metric"]) == {"hole_l1"}
    ranked = board.sort_values("rank")
    assert ranked["hole_l1"].is_monotonic_increasing and list(ranked["rank"]) == [1, 2, 3]
    assert ranked["gap"].iloc[0] == 0 and (ranked["gap"] == ranked["hole_l1"] - ranked["hole_l1"].min()).all()
    assert ranked["method"].iloc[-1] == "inpaint/mean"  # the flat fill is furthest from the holes' pixels

    results = summary.results
    worse = results.copy()
    worse.loc[worse["metric"] == "hole_l1", "value"] *= 1.5
    verdicts = compare(results, worse, metrics=["hole_l1"], tolerance=0.001).rows["verdict"]
    assert set(verdicts) == {"worse"}  # a larger L1 is a regression
    assert set(compare(worse, results, metrics=["hole_l1"], tolerance=0.001).rows["verdict"]) == {"better"}
