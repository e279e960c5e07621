"""MLflow: a parent run with one child per (task, dataset, degradation, method), read back."""

from __future__ import annotations

import numpy as np
import pytest

from restorebench.run.pipeline import RunOptions, run_suite


@pytest.fixture
def logged_run(image_folder, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gaussian?sigma=15", "saltpepper?density=0.1"),
            methods=("denoise/identity", "denoise/median"),
            out=tmp_path / "run",
            executor="local",
            tracking_uri=uri,
        )
    )
    return summary, uri


def test_parent_and_child_runs_carry_the_results(logged_run):
    from mlflow.tracking import MlflowClient

    summary, uri = logged_run
    assert summary.tracking_error is None and summary.mlflow_run_id
    client = MlflowClient(tracking_uri=uri)
    parent = client.get_run(summary.mlflow_run_id)
    assert parent.data.params["suite"] and parent.data.metrics["units"] == 3 * 2 * 2
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{summary.mlflow_run_id}'"
    )
    assert len(children) == 2 * 2
    results = summary.results
    for child in children:
        tags, metrics = child.data.tags, child.data.metrics
        rows = results[(results.method == tags["method"]) & (results.degradation == tags["degradation"])]
        for name in ("psnr", "ssim", "psnr_y", "ssim_y"):
            values = rows.loc[rows.metric == name, "value"]
            assert metrics[f"{name}_mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert metrics[f"{name}_median"] == pytest.approx(np.median(values), rel=1e-12)
        assert metrics["runtime_s_mean"] > 0
        assert child.data.params["images"] == "3"
        assert tags["task"] == "denoise" and tags["method_version"] == "1" and tags["device"].startswith("cpu")
        assert "git_commit" in tags and "checkpoint_sha256" in tags
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"per_image.csv", "sample_grid.png"} <= artifacts
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"spec.yaml", "results.parquet", "leaderboard"} <= parent_artifacts
    board = {a.path for a in client.list_artifacts(parent.info.run_id, "leaderboard")}
    assert {"leaderboard/LEADERBOARD.md", "leaderboard/leaderboard.csv"} <= board


def test_unreachable_mlflow_keeps_the_results(image_folder, tmp_path):
    summary = run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gaussian?sigma=15",),
            methods=("denoise/median",),
            out=tmp_path / "run",
            executor="local",
            tracking_uri="http://127.0.0.1:9",  # nothing listens on the discard port
        )
    )
    assert summary.tracking_error is not None
    assert (tmp_path / "run" / "results.parquet").exists() and len(summary.results) == 3 * 4
