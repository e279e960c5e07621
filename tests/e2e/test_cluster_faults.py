"""Faults a cluster run survives: a worker killed with SIGKILL, a node removed mid-run, the
driver killed with SIGKILL and resumed. Every unit ends up in the results exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

SLOW = textwrap.dedent(
    """
    import time

    from restorebench.core.interfaces import Method


    class Sleepy(Method):
        '''Returns its input after a pause: long enough to be caught mid-task.'''

        name = "sleepy"
        task = "denoise"

        def restore_one(self, item):
            time.sleep(0.25)
            return item.image
    """
)


@pytest.fixture(scope="module")
def sleepy_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sleepy")
    (folder / "sleepy_plugin.py").write_text(SLOW)
    return folder


@pytest.fixture
def many_images(image_folder) -> Path:
    for i in range(9):  # 12 images
        (image_folder / f"z{i}.png").write_bytes((image_folder / "a_astronaut.png").read_bytes())
    return image_folder


def _env_path(folder: Path) -> str:
    return os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])


def _options(images: Path, out: Path, **extra):
    from restorebench.run.pipeline import RunOptions

    settings = {
        "tasks": ("denoise",),
        "datasets": (f"folder:{images}",),
        "degradations": ("gaussian?sigma=25", "gaussian?sigma=5"),
        "methods": ("sleepy_plugin:Sleepy", "denoise/median"),
        "out": out,
        "executor": "ray",
        "tracking": False,
        "use_cache": False,
    }
    return RunOptions(**{**settings, **extra})


def _exactly_once(summary) -> pd.DataFrame:
    frame = summary.results
    assert summary.failed == 0, summary.errors
    assert frame["unit_id"].nunique() == summary.units
    assert frame.groupby(["unit_id", "metric"]).size().max() == 1
    assert (frame["status"] == "ok").all()
    return frame


def _task_workers() -> list[int]:
    """Ray worker processes running one of the run's tasks (their title is ray::<function>)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if title.startswith(b"ray::_run_batch_task"):
                pids.append(int(entry.name))
    return pids


def _values(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index(["image", "degradation", "method", "metric"])["value"].sort_index()


@pytest.mark.ray
@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_and_repeats_nothing(sleepy_dir, many_images, tmp_path, monkeypatch):
    import ray

    from restorebench.run.pipeline import run_suite
    from restorebench.run.ray_runtime import start_local_ray

    monkeypatch.syspath_prepend(str(sleepy_dir))
    local = _exactly_once(run_suite(_options(many_images, tmp_path / "local", executor="local")))
    start_local_ray(2, runtime_env={"env_vars": {"PYTHONPATH": _env_path(sleepy_dir)}})
    killed: list[int] = []

    def kill_one(done: int, total: int, failed: int) -> None:
        if done and not killed:
            deadline = time.time() + 10
            while not killed and time.time() < deadline:
                workers = _task_workers()
                if workers:
                    os.kill(workers[0], signal.SIGKILL)
                    killed.append(workers[0])
                time.sleep(0.05)

    try:
        summary = run_suite(_options(many_images, tmp_path / "ray"), progress=kill_one)
    finally:
        ray.shutdown()
    assert killed, "no Ray worker was caught running a task"
    frame = _exactly_once(summary)
    assert _values(frame).equals(_values(local))  # and the retried units give the same numbers


@pytest.mark.ray
@pytest.mark.slow
def test_a_node_removed_mid_run_loses_and_repeats_nothing(sleepy_dir, many_images, tmp_path, monkeypatch):
    import ray
    from ray.cluster_utils import Cluster

    from restorebench.run.pipeline import run_suite

    monkeypatch.syspath_prepend(str(sleepy_dir))
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    node = cluster.add_node(num_cpus=2)
    removed: list[tuple[int, int]] = []

    def remove_node(done: int, total: int, failed: int) -> None:
        if done and not removed:
            cluster.remove_node(node)
            removed.append((done, total))

    try:
        ray.init(
            address=cluster.address,
            runtime_env={"env_vars": {"PYTHONPATH": _env_path(sleepy_dir)}},
            log_to_driver=False,
            configure_logging=False,
        )
        cluster.wait_for_nodes()
        assert ray.cluster_resources()["CPU"] == 3
        summary = run_suite(_options(many_images, tmp_path / "run"), progress=remove_node)
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed and removed[0][0] < removed[0][1]  # the node went away mid-run
    _exactly_once(summary)  # whichever node finished which units (the removed one may have finished none)


def test_a_driver_killed_mid_run_resumes_to_the_uninterrupted_results(sleepy_dir, many_images, tmp_path):
    env = {**os.environ, "PYTHONPATH": _env_path(sleepy_dir), "MLFLOW_DISABLE_TELEMETRY": "true"}
    out = tmp_path / "run"
    args = [sys.executable, "-m", "restorebench.cli", "run", "--task", "denoise", "--dataset", f"folder:{many_images}"]
    args += ["--degradation", "gaussian?sigma=25", "--method", "sleepy_plugin:Sleepy", "--method", "denoise/median"]
    args += ["--executor", "local", "--no-tracking", "--no-cache"]
    proc = subprocess.Popen([*args, "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "shards").glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "results.parquet").exists()  # killed before it could compact
    done = pd.concat([pd.read_parquet(p) for p in (out / "shards").glob("part-*.parquet")])["unit_id"].nunique()
    assert 2 <= done < 24
    resumed = subprocess.run(
        [*args, "--out", str(out), "--resume"], env=env, capture_output=True, text=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"({24 - done} computed, 0 from cache, {done} resumed, 0 failed)" in resumed.stdout
    whole = subprocess.run(
        [*args, "--out", str(tmp_path / "whole")], env=env, capture_output=True, text=True, timeout=120
    )
    assert whole.returncode == 0, whole.stderr
    final, reference = (pd.read_parquet(d / "results.parquet") for d in (out, tmp_path / "whole"))
    assert len(final) == len(reference) and final.groupby(["unit_id", "metric"]).size().max() == 1
    assert _values(final).equals(_values(reference))
