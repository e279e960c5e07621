"""Faults: a worker that dies, a plugin found by entry point, an interrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

PLUGIN = textwrap.dedent(
    """
    import os
    import time

    from restorebench.core.interfaces import Method


    class CrashOnGray(Method):
        '''Kills its worker process on gray images: a segfaulting extension, say.'''

        name = "crash_on_gray"
        task = "denoise"

        def restore_one(self, item):
            if item.image.shape[2] == 1:
                os._exit(1)
            return item.image


    class Segfault(Method):
        '''Crashes the interpreter (a null pointer read in native code).'''

        name = "segfault"
        task = "denoise"

        def restore_one(self, item):
            import ctypes

            return ctypes.string_at(0)


    class Slow(Method):
        name = "slow"
        task = "denoise"

        def restore_one(self, item):
            time.sleep(0.4)
            return item.image
    """
)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plugins")
    (folder / "faulty_plugins.py").write_text(PLUGIN)
    return folder


@pytest.mark.ray
def test_a_dying_worker_fails_only_its_unit(plugin_dir, image_folder, tmp_path, monkeypatch):
    import ray

    from restorebench.run.pipeline import RunOptions, run_suite

    monkeypatch.syspath_prepend(str(plugin_dir))
    path = os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    try:
        summary = run_suite(
            RunOptions(
                tasks=("denoise",),
                datasets=(f"folder:{image_folder}",),
                degradations=("gaussian?sigma=25",),
                methods=("faulty_plugins:CrashOnGray", "denoise/median"),
                out=tmp_path / "run",
                executor="ray",
                tracking=False,
            )
        )
    finally:
        ray.shutdown()
    units = summary.results.drop_duplicates("unit_id").set_index(["image", "method"])["status"]
    assert units[("b_camera.png", "denoise/crash_on_gray")] == "failed"
    assert (units.drop(("b_camera.png", "denoise/crash_on_gray")) == "ok").all()
    error = summary.results.query("image == 'b_camera.png' and method == 'denoise/crash_on_gray'")["error"].iloc[0]
    assert "b_camera.png" in error and "Ray task failed" in error


def test_a_crash_under_the_local_executor_says_which_unit_and_what_to_do(plugin_dir, image_folder, tmp_path):
    """A method that segfaults takes an in-process run with it: a line names the method, the
    image and the unit, says that --executor ray isolates crashes and how to resume."""
    from tests.runs import cli

    env = {"PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")])}
    args = ["run", "--task", "denoise", "--method", "faulty_plugins:Segfault", "--dataset", f"folder:{image_folder}"]
    args += ["--degradation", "gaussian?sigma=25", "--executor", "local", "--no-tracking", "--out", tmp_path / "run"]
    result = cli(*args, cwd=tmp_path, env=env)
    assert result.returncode in (-signal.SIGSEGV, 128 + signal.SIGSEGV), (result.returncode, result.stderr[-2000:])
    assert "Fatal Python error: Segmentation fault" in result.stderr  # faulthandler's traceback of the crash
    line = next(x for x in result.stderr.splitlines() if x.startswith("error: the restorebench process ended"))
    assert "denoise/segfault was restoring a_astronaut.png (folder:" in line and "gaussian?sigma=25; unit " in line
    assert f"--resume --out {tmp_path / 'run'}" in line and "--executor ray isolates it" in result.stderr


def test_entry_point_plugins_are_registered(plugin_dir, monkeypatch):
    """A package that declares `restorebench.methods` entry points is picked up."""
    dist = plugin_dir / "faulty_plugins-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: faulty-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[restorebench.methods]\ndenoise/slow = faulty_plugins:Slow\n")
    monkeypatch.syspath_prepend(str(plugin_dir))
    from restorebench import plugins
    from restorebench.core import registry
    from restorebench.core.build import build_method

    plugins.load_plugins()
    plugins._load_entry_points()
    assert registry.METHODS.get("denoise/slow").__name__ == "Slow"
    assert build_method("denoise/slow").ref == "denoise/slow"


def test_an_interrupted_run_keeps_its_results_and_resumes(plugin_dir, image_folder, tmp_path):
    """SIGINT mid-run: exit 130, finished batches are on disk, --resume computes only the rest."""
    for i in range(8):  # 11 images x 1 unit each, 0.4 s per unit
        (image_folder / f"z{i}.png").write_bytes((image_folder / "a_astronaut.png").read_bytes())
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(plugin_dir), os.environ.get("PYTHONPATH", "")]),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    out = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "restorebench.cli",
        "run",
        "--task",
        "denoise",
        "--dataset",
        f"folder:{image_folder}",
        "--degradation",
        "gaussian?sigma=25",
        "--method",
        "faulty_plugins:Slow",
        "--executor",
        "local",
        "--no-tracking",
        "--out",
        str(out),
    ]
    # a shell's background jobs ignore SIGINT and children inherit that: give the run Python's default
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "shards").glob("part-*.parquet"))) < 2:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    saved = pd.concat([pd.read_parquet(p) for p in (out / "shards").glob("part-*.parquet")])
    done = saved["unit_id"].nunique()
    assert 2 <= done < 11
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{11 - done} computed" in resumed.stdout and f"{done} resumed" in resumed.stdout
    final = pd.read_parquet(out / "results.parquet")
    assert final["unit_id"].nunique() == 11 and (final["status"] == "ok").all()
