"""A run whose every unit failed still prints its leaderboard, reports, and closes its MLflow runs,
and exits 1: it scored nothing."""

from __future__ import annotations

import pandas as pd

from tests.runs import cli

BOOM = """
from restorebench import Method

class Boom(Method):
    task = "denoise"
    name = "boom"

    def restore_one(self, item):
        raise RuntimeError("boom")
"""


def _parent_status(uri):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("restorebench").experiment_id
    runs = client.search_runs([exp])
    return {r.info.status for r in runs}, len(runs)


def test_every_unit_failed(tmp_path, image_folder):
    (tmp_path / "boom.py").write_text(BOOM)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = cli(
        "run",
        "--task",
        "denoise",
        "--method",
        "boom:Boom",
        "--dataset",
        f"folder:{image_folder}",
        "--degradation",
        "gaussian?sigma=25",
        "--executor",
        "local",
        "--out",
        tmp_path / "run",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr  # it scored nothing (was: 0, and before that a ValueError)
    assert "Traceback" not in run.stderr
    assert "the run scored nothing: every unit failed" in run.stderr
    assert "| denoise/boom | 1 |" in run.stdout and "3 failed" in run.stdout and "RuntimeError: boom" in run.stdout
    statuses, count = _parent_status(uri)
    assert statuses == {"FINISHED"} and count == 2  # the parent and its one child, none left RUNNING
    report = cli("report", tmp_path / "run", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    board = pd.read_csv(tmp_path / "run" / "report" / "leaderboard.csv")
    assert board[["method", "failed", "images"]].values.tolist() == [["denoise/boom", 3, 3]]
    assert board["psnr"].isna().all()
    assert (
        cli(
            "run",
            "--task",
            "denoise",
            "--method",
            "boom:Boom",
            "--dataset",
            f"folder:{image_folder}",
            "--executor",
            "local",
            "--no-tracking",
            "--fail-on-error",
            cwd=tmp_path,
        ).returncode
        == 1
    )


def test_a_sid_list_whose_every_line_fails(tmp_path):
    root = tmp_path / "SID"
    (root / "Sony" / "short").mkdir(parents=True)
    (root / "Sony" / "long").mkdir()
    (root / "Sony" / "short" / "10009_00_0.1s.ARW").write_bytes(b"not a raw file" * 100)
    (root / "list.txt").write_text(
        "./Sony/short/10006_00_0.1s.ARW ./Sony/long/10006_00_10s.ARW ISO200 F9\n"
        "./Sony/short/10009_00_0.1s.ARW ./Sony/long/10009_00_10s.ARW ISO200 F9\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = cli(
        "run",
        "--task",
        "lowlight",
        "--dataset",
        f"sid:{root / 'list.txt'}?root={root}&split=all",
        "--degradation",
        "sid",
        "--method",
        "lowlight/camera",
        "--executor",
        "local",
        "--out",
        tmp_path / "run",
        "--tracking-uri",
        uri,
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stderr  # it scored nothing
    assert "the run scored nothing: every unit failed" in run.stderr
    assert "2 failed" in run.stdout and "10006_00_0.1s.ARW" in run.stdout
    assert _parent_status(uri)[0] == {"FINISHED"}
    assert cli("report", tmp_path / "run", cwd=tmp_path).returncode == 0
