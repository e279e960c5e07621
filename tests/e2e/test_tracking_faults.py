"""Tracking faults: a real MLflow server that goes down mid-run, and two runs at once on one
SQLite store and one results cache."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.runs import denoise_run
from tests.servers import free_port, stop_group


class MlflowServer:
    """``mlflow server`` on 127.0.0.1, started and stopped by its process id."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port, self.proc = root, port, None
        self.uri = f"http://127.0.0.1:{port}"

    def start(self) -> MlflowServer:
        exe = Path(sys.executable).with_name("mlflow")
        args = [str(exe), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        args += ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"]
        args += ["--artifacts-destination", str(self.root / "artifacts")]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
        self.proc = subprocess.Popen(
            args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("mlflow server did not become healthy in 90 s")

    def stop(self) -> None:
        stop_group(self.proc)  # its own session: the server and its workers


@pytest.mark.slow
def test_a_server_that_goes_down_mid_run_loses_nothing_and_log_catches_up(image_folder, tmp_path):
    from mlflow.tracking import MlflowClient

    from tests.runs import cli

    server = MlflowServer(tmp_path, free_port()).start()
    try:
        stopped: list[bool] = []

        def stop_server(done: int, total: int, failed: int) -> None:
            if done and not stopped:
                server.stop()
                stopped.append(True)

        summary = denoise_run(
            image_folder,
            tmp_path / "run",
            ("denoise/median", "denoise/gaussian"),
            tracking_uri=server.uri,
            progress=stop_server,
        )
        assert stopped and summary.failed == 0 and summary.tracking_error
        assert summary.results["unit_id"].nunique() == summary.units == 6
        assert (tmp_path / "run" / "results.parquet").exists()

        server.start()
        for _ in range(2):  # logging twice keeps one parent run
            result = cli("log", tmp_path / "run", "--tracking-uri", server.uri)
            assert result.returncode == 0, result.stderr
        client = MlflowClient(tracking_uri=server.uri)
        exp = client.get_experiment_by_name("restorebench").experiment_id
        parents = client.search_runs([exp], "tags.`restorebench.run_id` != ''")
        assert len(parents) == 1 and parents[0].info.status == "FINISHED"
        children = client.search_runs([exp], f"tags.mlflow.parentRunId = '{parents[0].info.run_id}'")
        assert len(children) == 2  # one per method
    finally:
        server.stop()


@pytest.mark.slow
def test_two_runs_at_once_share_one_sqlite_store_and_one_cache(image_folder, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    env = {**os.environ, "RESTOREBENCH_CACHE": str(tmp_path / "cache.sqlite"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    exe = str(Path(sys.executable).with_name("restorebench"))
    runs = []
    for name, sigma in (("a", 15), ("b", 25)):
        args = [exe, "run", "--task", "denoise", "--dataset", f"folder:{image_folder}", "--executor", "local"]
        args += ["--degradation", f"gaussian?sigma={sigma}", "--method", "denoise/median", "--method", "denoise/box"]
        args += ["--tracking-uri", uri, "--out", str(tmp_path / name)]
        runs.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in runs]
    assert [p.returncode for p in runs] == [0, 0], outs
    for out, err in outs:
        assert "database is locked" not in out + err and "not logged" not in out
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("restorebench").experiment_id
    assert len(client.search_runs([exp], "tags.`restorebench.run_id` != ''")) == 2
    import pandas as pd

    from restorebench.run.cache import ResultCache

    with ResultCache(tmp_path / "cache.sqlite") as cache:
        ids = [u for d in ("a", "b") for u in pd.read_parquet(tmp_path / d / "results.parquet")["unit_id"].unique()]
        assert len(ids) == 12 and len(cache.get_many(ids)) == 12  # both runs' results are cached
