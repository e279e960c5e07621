"""Degraded inputs and metrics are bit-identical across executors: in-process, a private Ray
with one worker and with two, a cluster of two simulated nodes, and a rerun."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _run(images: Path, out: Path, **extra):
    from restorebench.run.pipeline import RunOptions, run_suite

    options = RunOptions(
        tasks=("denoise",),
        datasets=(f"folder:{images}",),
        degradations=("gaussian?sigma=25", "saltpepper?density=0.05"),
        methods=("denoise/identity", "denoise/median", "denoise/gaussian"),
        out=out,
        tracking=False,
        use_cache=False,
        save_outputs=True,  # the identity's output is the degraded input, as the worker made it
        **extra,
    )
    return run_suite(options)


def _inputs(run_dir: Path) -> dict[str, str]:
    """SHA-256 of each degraded input (the identity method's saved outputs)."""
    return {
        p.relative_to(run_dir / "outputs").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((run_dir / "outputs").rglob("*.png"))
        if "identity" in p.as_posix()
    }


def _values(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index(["unit_id", "metric"])["value"].sort_index()


def test_inputs_and_metrics_are_bit_identical_on_every_executor(image_folder, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    runs = {
        "in-process": _run(image_folder, tmp_path / "local", executor="local"),
        "one worker": _run(image_folder, tmp_path / "one", executor="ray", num_cpus=1),
        "two workers": _run(image_folder, tmp_path / "two", executor="ray", num_cpus=2),
    }
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
        runs["two nodes"] = _run(image_folder, tmp_path / "nodes", executor="ray")
    finally:
        ray.shutdown()
        cluster.shutdown()
    runs["rerun"] = _run(image_folder, tmp_path / "rerun", executor="local")

    assert len(set(runs["two nodes"].results["node"])) == 2  # both nodes computed units
    reference = runs["in-process"]
    inputs = _inputs(reference.run_dir)
    assert len(inputs) == 3 * 2  # images x degradations
    for name, summary in runs.items():
        assert summary.failed == 0, (name, summary.errors)
        pd.testing.assert_series_equal(_values(summary.results), _values(reference.results), check_exact=True)
        assert _inputs(summary.run_dir) == inputs, name


def _colorize(images: Path, out: Path, **extra):
    from restorebench.run.pipeline import RunOptions, run_suite

    options = RunOptions(
        tasks=("colorize",),
        datasets=(f"folder:{images}",),
        degradations=("gray",),
        methods=("colorize/gray", "colorize/mean_ab"),
        out=out,
        tracking=False,
        **{"use_cache": False, **extra},
    )
    return run_suite(options)


def test_set_level_values_are_bit_identical_on_every_executor(image_folder, tmp_path):
    """The pooled and class-balanced AuCs (set-level: each image's statistics, reduced per
    group on the driver) are the same bits in-process, on Ray with two workers, on a rerun and
    from the results cache."""
    runs = {
        "in-process": _colorize(image_folder, tmp_path / "local", executor="local"),
        "two workers": _colorize(image_folder, tmp_path / "two", executor="ray", num_cpus=2),
        "rerun": _colorize(image_folder, tmp_path / "rerun", executor="local"),
    }
    _colorize(image_folder, tmp_path / "cache-fill", executor="local", use_cache=True)
    runs["from the cache"] = _colorize(image_folder, tmp_path / "cached", executor="local", use_cache=True)
    assert runs["from the cache"].from_cache == 2 * 2 and runs["from the cache"].computed == 0
    reference = runs["in-process"]
    values = reference.board.values.set_index(["method", "metric"])["value"]
    assert values[("colorize/gray", "auc_rebal")] < values[("colorize/gray", "auc")]  # gray loses on rare colours
    stats = reference.results.dropna(subset=["stats"])
    assert set(stats["metric"]) == {"auc", "auc_rebal"} and len(stats) == 2 * 2 * 2  # methods x images x metrics
    for name, summary in runs.items():
        assert summary.failed == 0 and len(summary.skipped) == 2, (name, summary.errors)  # the gray camera
        pd.testing.assert_frame_equal(summary.board.values, reference.board.values, check_exact=True)
        pd.testing.assert_series_equal(_values(summary.results), _values(reference.results), check_exact=True)
        mine = summary.results.dropna(subset=["stats"]).set_index(["unit_id", "metric"]).sort_index()["stats"]
        theirs = stats.set_index(["unit_id", "metric"]).sort_index()["stats"]
        assert all(a.tobytes() == b.tobytes() for a, b in zip(mine, theirs)), name
