"""A Ray whose internals the lean private start patches were renamed or changed still runs:
Ray's own ``ray.init`` starts it, on 127.0.0.1 only, and one warning line says so."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest

from restorebench.run import minimal_agent, ray_runtime
from tests.runs import denoise_run
from tests.sockets import LOOPBACK, descendants, listening

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HOOKS = list(ray_runtime.LEAN_HOOKS)
PATCHED = [ref for ref, make in ray_runtime.LEAN_HOOKS.items() if make is not None]


def _fallback_run(image_folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> str:
    """A tiny run on the Ray executor, which Ray's own start must have started; its one warning."""
    import ray

    commands: list[str] = []
    exposed: list[tuple] = []

    def progress(done, total, failed):  # on the driver while Ray is up
        if done and not commands:
            tree = descendants(os.getpid())
            commands.extend(_command_line(pid) for pid in tree)
            exposed.extend(s for s in listening(tree) if s[0] not in LOOPBACK)

    with caplog.at_level(logging.WARNING, logger=ray_runtime.__name__):
        summary = denoise_run(
            image_folder,
            tmp_path / "run",
            ("denoise/median",),
            degradations=("gaussian?sigma=5",),
            executor="ray",
            num_cpus=2,
            progress=progress,
        )
    assert summary.computed == 3 and summary.failed == 0 and not ray.is_initialized()
    assert len(summary.results[summary.results.metric == "psnr"]) == 3
    assert exposed == []  # Ray's own start, with the same 127.0.0.1-only settings
    started = " ".join(commands)
    # Ray's own start: with the autoscaler monitor the lean start skips, its agent as Ray starts it
    assert "/monitor.py" in started and "minimal_agent.py" not in started
    # one GCS and one raylet: what a failed lean start had started was stopped
    assert sum("gcs_server" in c for c in commands) == 1 and sum("/raylet " in c for c in commands) == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.name == ray_runtime.__name__]
    assert "\n" not in warning and "starting it with Ray's own ray.init instead" in warning
    return warning


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_each_hook_exists_in_this_ray():
    hooks = ray_runtime._lean_hooks()
    assert not isinstance(hooks, str), hooks  # else every run here would take the slow start
    assert len(hooks) == len(PATCHED) == 7


def _renamed(hook: str) -> dict:
    """LEAN_HOOKS as restorebench would look them up in a Ray that renamed ``hook`` (Ray's own code
    goes on calling its own name, so nothing of Ray need be taken away)."""
    return {(f"{ref}_renamed" if ref == hook else ref): make for ref, make in ray_runtime.LEAN_HOOKS.items()}


@pytest.mark.parametrize("hook", HOOKS)
def test_a_ray_without_a_hook_gets_no_hook_patched(hook, monkeypatch):
    monkeypatch.setattr(ray_runtime, "LEAN_HOOKS", _renamed(hook))
    assert ray_runtime._lean_hooks() == f"{hook}_renamed"  # the start takes Ray's own path, naming it


def test_a_ray_without_a_hook_starts_as_ray_does(image_folder, tmp_path, monkeypatch, caplog):
    # the same path for every hook (the test above): one run shows it completes
    hook = "ray._private.services:get_node"
    monkeypatch.setattr(ray_runtime, "LEAN_HOOKS", _renamed(hook))
    warning = _fallback_run(image_folder, tmp_path, caplog)
    assert f"(it lacks {hook}_renamed)" in warning


@pytest.mark.parametrize("hook", PATCHED)
def test_a_hook_that_raises_during_the_start_gives_rays_own_start(hook, image_folder, tmp_path, monkeypatch, caplog):
    def changed(*args, **kwargs):
        raise TypeError(f"{hook} changed")

    monkeypatch.setitem(ray_runtime.LEAN_HOOKS, hook, lambda original: changed)
    originals = {ref: ray_runtime._resolve(ref) for ref in PATCHED}
    originals = {ref: vars(owner)[name] for ref, (owner, name) in originals.items()}
    warning = _fallback_run(image_folder, tmp_path, caplog)
    assert f"its start failed with them (TypeError: {hook} changed)" in warning
    for ref, original in originals.items():  # Ray's own functions are back
        owner, name = ray_runtime._resolve(ref)
        assert vars(owner)[name] is original, ref


STAND_IN_AGENT = """
import json, sys
import ray.dashboard.utils as dashboard_utils

class Probe:
    @staticmethod
    def is_minimal_module():
        return False

class Minimal(Probe):
    @staticmethod
    def is_minimal_module():
        return True

class Full(Probe):
    pass

get_all = getattr(dashboard_utils, "get_all_modules", None)
found = None if get_all is None else sorted(c.__name__ for c in get_all(Probe))
with open(sys.argv[1], "w") as f:
    json.dump({"argv": sys.argv[1:], "modules": found}, f)
"""


def _run_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """minimal_agent's main, in this process, on a stand-in for Ray's agent script."""
    import json

    import ray.dashboard.utils as dashboard_utils

    script, out = tmp_path / "agent.py", tmp_path / "out.json"
    script.write_text(STAND_IN_AGENT)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    if hasattr(dashboard_utils, "get_all_modules"):  # put back afterwards what main replaces
        monkeypatch.setattr(dashboard_utils, "get_all_modules", dashboard_utils.get_all_modules)
    minimal_agent.main(["minimal_agent.py", str(script), str(out), "--minimal"])
    return json.loads(out.read_text())


def test_the_agent_keeps_only_minimal_modules(tmp_path, monkeypatch, capsys):
    assert _run_agent(tmp_path, monkeypatch) == {
        "argv": [str(tmp_path / "out.json"), "--minimal"],
        "modules": ["Minimal"],
    }
    assert capsys.readouterr().err == ""


def test_an_agent_whose_modules_cannot_be_read_loads_them_as_ray_does(tmp_path, monkeypatch, capsys):
    import ray.dashboard.utils as dashboard_utils

    def changed(module_type):
        raise AttributeError("type object 'Probe' has no attribute 'is_minimal_module_v2'")

    monkeypatch.setattr(minimal_agent, "minimal_modules", changed)
    # where Ray's agents run minimal (no dashboard packages, as here), Ray's own keeps the minimal
    # ones too; with them installed it keeps Full as well
    expected = ["Full", "Minimal"] if dashboard_utils.get_dashboard_dependency_error() is None else ["Minimal"]
    assert _run_agent(tmp_path, monkeypatch)["modules"] == expected
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Ray's agent runs with all its modules: AttributeError" in err


def test_an_agent_without_get_all_modules_runs_rays_agent_as_it_is(tmp_path, monkeypatch, capsys):
    import ray.dashboard.utils as dashboard_utils

    monkeypatch.delattr(dashboard_utils, "get_all_modules")
    assert _run_agent(tmp_path, monkeypatch)["modules"] is None
    assert not hasattr(dashboard_utils, "get_all_modules")
    assert "Ray's agent runs with all its modules: AttributeError" in capsys.readouterr().err
