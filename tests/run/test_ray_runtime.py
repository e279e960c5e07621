"""The Ray runtime a run starts: private, on the loopback interface only; clear errors for bad addresses."""

from __future__ import annotations

import os
import socket
import time

import pytest

from restorebench.core.errors import UserError
from restorebench.run.ray_runtime import connect
from tests.sockets import LOOPBACK, descendants, listening

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

    seen, commands, config = [], [], {}

    def progress(done, total, failed):  # called on the driver while the runtime is up
        if done and not seen:
            tree = descendants(os.getpid())
            seen.extend(listening(tree))
            commands.extend(_command_line(pid) for pid in tree)
            config.update(ray._private.worker._global_node._ray_params._system_config)

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
    from ray._private import services
    from ray._private.node import Node

    # Ray's own functions are back once the head is up (the next ray.init of this process is Ray's)
    assert (
        services.get_node.__module__ == "ray._private.services"
        and Node.start_monitor.__qualname__ == "Node.start_monitor"
    )


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
