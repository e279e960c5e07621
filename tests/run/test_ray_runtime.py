"""The Ray runtime a run starts: private, on the loopback interface only; clear errors for bad addresses."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from restorebench.core.errors import UserError
from restorebench.run.ray_runtime import connect
from tests.sockets import LOOPBACK, descendants, listening, stat_field

NICENESS = 16  # the field of /proc/PID/stat after the command name

pytestmark = pytest.mark.ray


def test_a_runs_private_ray_listens_on_loopback_only(image_folder, tmp_path, monkeypatch):
    import logging

    import ray

    from restorebench.run.pipeline import RunOptions, run_suite
    from restorebench.run.ray_runtime import _AUTH_LOGGER

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # as in a fresh process: Ray decides, and says so
    notices: list[str] = []
    catch = logging.Handler()
    catch.emit = lambda record: notices.append(record.getMessage())
    auth_logger = logging.getLogger(_AUTH_LOGGER)
    auth_logger.addHandler(catch)

    seen, commands, config, session, worker_nice = [], [], {}, [], []

    def progress(done, total, failed):  # called on the driver while the runtime is up
        if done and not seen:
            tree = descendants(os.getpid())
            seen.extend(listening(tree))
            commands.extend(_command_line(pid) for pid in tree)
            config.update(ray._private.worker._global_node._ray_params._system_config)
            session.append(ray._private.worker._global_node.get_session_dir_path())
            worker_nice.extend(
                n for pid in tree if _is_worker(_command_line(pid)) and (n := stat_field(pid, NICENESS)) is not None
            )

    try:
        summary = run_suite(
            RunOptions(
                tasks=("denoise",),
                datasets=(f"folder:{image_folder}",),
                degradations=("gaussian?sigma=5",),
                methods=("denoise/median", "denoise/dncnn"),
                out=tmp_path / "run",
                executor="ray",
                tracking=False,
                num_cpus=2,
            ),
            progress=progress,
        )
    finally:
        auth_logger.removeHandler(catch)
    assert summary.computed == 6 and not ray.is_initialized()
    # Ray's token authentication stays on for the private head; only its notice on every run is dropped
    assert notices == [] and auth_logger.filters == []
    assert os.environ.get("RAY_AUTH_MODE") == "token"
    processes = {pid for _, _, pid in seen}
    assert len(seen) >= 4 and len(processes) >= 3, seen  # GCS, raylet, agents, driver, workers
    exposed = [(addr, port, pid) for addr, port, pid in seen if addr not in LOOPBACK]
    assert exposed == []  # was: every socket on all interfaces, the runtime-env agent on the external address
    # a private one-node Ray starts without the dashboard's API server, the autoscaler monitor
    # and the log monitor (2 s of its start, and the monitor held every shutdown for a second)
    started = " ".join(commands)
    assert "gcs_server" in started and "raylet" in started
    for unneeded in ("dashboard/dashboard.py", "/monitor.py", "log_monitor.py"):
        assert unneeded not in started, unneeded
    assert config["task_events_report_interval_ms"] == 0  # no task events: each shutdown flushed them
    # the workers run at the driver's priority (at Ray's default 15 every burst of its own
    # processes preempted them), as the worker processes' niceness shows
    assert config["worker_niceness"] == 0 and worker_nice and set(worker_nice) == {os.nice(0)}
    # the raylet's dashboard agent is Ray's own, started minimal and without its modules (metrics
    # reporter, log, job, event, health): as a `pip install ray` without the dashboard's packages runs it
    (agent,) = [c for c in commands if "dashboard/agent.py" in c]
    assert "/run/minimal_agent.py " in agent and "--minimal" in agent
    agent_log = Path(session[0], "logs", "dashboard_agent.log").read_text()
    assert "Loaded 0 modules." in agent_log
    from ray._private import node, services
    from ray._private.node import Node

    # Ray's own functions are back once the head is up (the next ray.init of this process is Ray's)
    assert (
        services.get_node.__module__ == "ray._private.services"
        and Node.start_monitor.__qualname__ == "Node.start_monitor"
        and services._build_python_executable_command_memory_profileable.__module__ == "ray._private.services"
        and node.wait_for_persisted_port.__module__ == "ray._raylet"
    )


def _is_worker(command: str) -> bool:
    """A Ray worker process (its title ``ray::IDLE`` or ``ray::<task>``), not one of the agents."""
    return command.startswith("ray::") and not command.startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent"))


def _command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_an_unreachable_address_fails_within_seconds():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    start = time.perf_counter()
    with pytest.raises(UserError, match=rf"cannot reach the Ray cluster at 127.0.0.1:{port}: .*refused"):
        connect(f"127.0.0.1:{port}")
    assert time.perf_counter() - start < 10
    with pytest.raises(UserError, match="is not host:port"):
        connect("nonsense")
    with pytest.raises(UserError, match="--num-cpus sizes a local Ray"):
        connect("auto", num_cpus=2)


def test_the_minimal_agent_keeps_only_enabled_modules_marked_minimal():
    from restorebench.run.minimal_agent import minimal_modules

    class Module:
        @staticmethod
        def is_minimal_module() -> bool:
            return False

    class Minimal(Module):
        @staticmethod
        def is_minimal_module() -> bool:
            return True

    class Full(Module):
        pass

    class Disabled(Minimal):
        __ray_dashboard_module_enable__ = False

    assert minimal_modules(Module) == [Minimal]
    assert Full not in minimal_modules(Module) and Disabled not in minimal_modules(Minimal)


def test_only_the_dashboard_agent_is_started_through_the_minimal_agent():
    from ray._private import ray_constants

    from restorebench.run.ray_runtime import _minimal_dashboard_agent

    build = _minimal_dashboard_agent(lambda component, session_dir, unbuffered=True: ["python", "-u"])
    python, unbuffered, script = build(ray_constants.PROCESS_TYPE_DASHBOARD_AGENT, "/s")
    assert (python, unbuffered) == ("python", "-u")
    assert Path(script).is_absolute() and Path(script).read_text().startswith('"""Ray\'s dashboard agent')
    assert build(ray_constants.PROCESS_TYPE_RUNTIME_ENV_AGENT, "/s") == ["python", "-u"]
    # a command Ray already wraps (its memray profiling: python -u -m memray run ...) is left as Ray built it
    memray = ["python", "-u", "-m", "memray", "run", "-o", "/s/x.bin"]
    assert _minimal_dashboard_agent(lambda *a, **k: memray)(ray_constants.PROCESS_TYPE_DASHBOARD_AGENT, "/s") == memray
