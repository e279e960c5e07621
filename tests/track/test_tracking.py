"""MLflow: a parent run with one child per (task, dataset, degradation, method), read back."""

from __future__ import annotations

import numpy as np
import pytest

from restorebench.run.pipeline import RunOptions, run_suite
from tests.runs import denoise_run


@pytest.fixture
def logged_run(image_folder, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = denoise_run(
        image_folder,
        tmp_path / "run",
        ("denoise/identity", "denoise/median"),
        degradations=("gaussian?sigma=15", "saltpepper?density=0.1"),
        tracking_uri=uri,
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


def test_a_set_level_metric_is_logged_as_the_groups_value(image_folder, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = run_suite(
        RunOptions(
            tasks=("colorize",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gray",),
            methods=("colorize/gray",),
            out=tmp_path / "run",
            executor="local",
            tracking_uri=uri,
        )
    )
    client = MlflowClient(tracking_uri=uri)
    (child,) = _children(client, summary.mlflow_run_id)
    values = summary.board.values.set_index("metric")
    rows = summary.results[summary.results["metric"] == "auc_rebal"]
    assert child.data.metrics["auc_rebal"] == values.loc["auc_rebal", "value"]  # the set's, as the leaderboard's
    assert child.data.metrics["auc_rebal_mean"] == pytest.approx(rows["value"].mean(), rel=1e-12)  # per image
    assert child.data.metrics["auc_rebal"] != pytest.approx(child.data.metrics["auc_rebal_mean"], abs=1e-6)
    assert "colorfulness" not in child.data.metrics and "colorfulness_mean" in child.data.metrics
    assert child.data.params["rank_metric"] == "auc_rebal"


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


def _children(client, pid):
    exp = client.get_run(pid).info.experiment_id
    return client.search_runs([exp], filter_string=f"tags.mlflow.parentRunId = '{pid}'")


def _parents(client, run_id):
    exp = client.get_experiment_by_name("restorebench").experiment_id
    return client.search_runs([exp], filter_string=f"tags.`restorebench.run_id` = '{run_id}'")


def test_per_image_csv_has_one_row_per_image(logged_run, tmp_path):
    import pandas as pd
    from mlflow.tracking import MlflowClient

    summary, uri = logged_run
    client = MlflowClient(tracking_uri=uri)
    child = _children(client, summary.mlflow_run_id)[0]
    path = client.download_artifacts(child.info.run_id, "per_image.csv", str(tmp_path))
    table = pd.read_csv(path)
    assert len(table) == 3 and table["image"].is_unique  # was 3 x 3: one row per (image, runtime value)
    assert list(table.columns[:4]) == ["image", "status", "error", "runtime_s"]
    assert {"psnr", "ssim", "psnr_y", "ssim_y"} <= set(table.columns) and table["psnr"].notna().all()


def test_logging_a_run_twice_keeps_one_parent(logged_run):
    from mlflow.tracking import MlflowClient

    from restorebench.commands.log import log_run_dir

    summary, uri = logged_run
    client = MlflowClient(tracking_uri=uri)
    before = {c.info.run_id for c in _children(client, summary.mlflow_run_id)}
    _, again = log_run_dir(summary.run_dir, uri)
    assert again == summary.mlflow_run_id
    assert len(_parents(client, summary.run_id)) == 1
    assert {c.info.run_id for c in _children(client, again)} == before
    assert client.get_run(again).info.status == "FINISHED"


def test_a_log_that_broke_halfway_is_completed_by_the_next(image_folder, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from restorebench.commands.log import log_run_dir
    from restorebench.core.errors import UserError
    from restorebench.track import runs

    summary = denoise_run(
        image_folder,
        tmp_path / "run",
        ("denoise/identity", "denoise/median"),
        degradations=("gaussian?sigma=15", "saltpepper?density=0.1"),
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    real, calls = runs._log_child, []

    def dies_on_the_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionError("the server went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(runs, "_log_child", dies_on_the_third)
    with pytest.raises(UserError, match="could not log .* ConnectionError: the server went away"):
        log_run_dir(summary.run_dir, uri)
    client = MlflowClient(tracking_uri=uri)
    (parent,) = _parents(client, summary.run_id)
    assert parent.info.status == "FAILED"  # was: left RUNNING
    monkeypatch.setattr(runs, "_log_child", real)
    _, pid = log_run_dir(summary.run_dir, uri)
    assert pid == parent.info.run_id and client.get_run(pid).info.status == "FINISHED"
    children = _children(client, pid)
    keys = sorted((c.data.tags["degradation"], c.data.tags["method"]) for c in children)
    assert len(keys) == 4 and len(set(keys)) == 4 and all(c.info.status == "FINISHED" for c in children)


def test_each_network_of_a_method_has_its_own_tag(image_folder, tmp_path):
    from mlflow.tracking import MlflowClient

    from restorebench.core.build import build_method
    from restorebench.neural.inference import checkpoint_sha256

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    summary = denoise_run(image_folder, tmp_path / "run", ("denoise/dncnn",), tracking_uri=uri)
    gray, rgb = (
        checkpoint_sha256(build_method(f"denoise/dncnn?channels={c}").checkpoints()[0]) for c in ("gray", "rgb")
    )
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_run(summary.mlflow_run_id).info.experiment_id
    for sha in (gray, rgb):  # the README's search finds the child by either network's hash
        (child,) = client.search_runs([exp], f"tags.method = 'denoise/dncnn' and tags.checkpoints LIKE '%{sha}%'")
        assert {child.data.tags["checkpoint_sha256_1"], child.data.tags["checkpoint_sha256_2"]} == {gray, rgb}
    assert child.data.tags["checkpoint_sha256"] == ""  # one hash per tag, never two joined
    single = denoise_run(image_folder, tmp_path / "one", ("denoise/dncnn?channels=rgb",), tracking_uri=uri)
    (one,) = client.search_runs(
        [exp], f"tags.method = 'denoise/dncnn?channels=rgb' and tags.checkpoint_sha256 = '{rgb}'"
    )
    assert one.data.tags["mlflow.parentRunId"] == single.mlflow_run_id


def test_two_processes_creating_one_fresh_sqlite_store_both_log(image_folder, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    dirs = []
    for name in ("a", "b"):
        denoise_run(image_folder, tmp_path / name, ("denoise/identity",), degradations=("gaussian?sigma=5",))
        dirs.append(tmp_path / name)
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    exe = str(Path(sys.executable).with_name("restorebench"))
    procs = [
        subprocess.Popen(
            [exe, "log", str(d), "--tracking-uri", uri], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for d in dirs
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("restorebench").experiment_id
    parents = client.search_runs([exp], "tags.`restorebench.run_id` != ''")
    assert len(parents) == 2 and all(p.info.status == "FINISHED" for p in parents)


def test_restorebenchs_experiments_open_on_the_runs_table(image_folder, tmp_path):
    from mlflow.tracking import MlflowClient

    from restorebench.core.build import build_method
    from restorebench.track.client import experiment_id
    from restorebench.track.training import TrainingTracker

    kind = "mlflow.experimentKind"  # MLflow 3's UI opens an experiment without it on the GenAI overview
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    # one made before restorebench tagged its experiments (its artifacts in tmp_path, not the working directory)
    old = client.create_experiment("restorebench", artifact_location=(tmp_path / "artifacts").as_uri())
    assert kind not in client.get_experiment(old).tags
    summary = denoise_run(
        image_folder, tmp_path / "run", ("denoise/identity",), degradations=("gaussian?sigma=5",), tracking_uri=uri
    )
    assert summary.tracking_error is None and client.get_run(summary.mlflow_run_id).info.experiment_id == old
    recipe = build_method("denoise/dncnn").recipe()
    training = TrainingTracker(uri, "denoise/dncnn", recipe, {"sources": ["folder:images"], "sha256": "0" * 64}).open()
    assert training.error is None and training.run_id  # a fresh experiment, created tagged
    for name in ("restorebench", "restorebench-training"):
        assert client.get_experiment_by_name(name).tags[kind] == "custom_model_development", name
    # a kind someone chose for an experiment is theirs: only a missing one is set
    chosen = client.create_experiment(
        "chosen", artifact_location=(tmp_path / "chosen").as_uri(), tags={kind: "genai_development"}
    )
    assert experiment_id(client, uri, "chosen") == chosen
    assert client.get_experiment(chosen).tags[kind] == "genai_development"
