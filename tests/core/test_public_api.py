"""The one import name and its plugin API: what a user installs, imports and writes."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest

import restorebench
from tests import REPO
from tests.runs import cli

FACE = {
    "AsIs",
    "Degradation",
    "Degraded",
    "ImageLoadError",
    "ImageRef",
    "Method",
    "Metric",
    "NeuralMethod",
    "NeuralParams",
    "Params",
    "Resources",
    "SkipUnit",
    "Source",
    "Task",
    "UserError",
    "__version__",
    "load_plugins",
    "register",
}


def test_the_plugin_api_is_exactly_its_all():
    assert set(restorebench.__all__) == FACE
    for name in FACE - {"__version__"}:
        assert getattr(restorebench, name).__module__.startswith("restorebench.")
    assert set(dir(restorebench)) == FACE
    with pytest.raises(AttributeError, match="no attribute 'pipeline'"):
        restorebench.pipeline  # noqa: B018


def test_importing_restorebench_is_cheap():
    code = "import sys, restorebench; print(sorted(m for m in ('numpy', 'torch', 'ray', 'mlflow', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_loading_every_plugin_leaves_torch_ray_and_mlflow_unimported():
    # what a driver and each classical Ray worker pay before their first unit
    code = (
        "import sys; from restorebench.plugins import load_plugins; load_plugins(); "
        "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"


def test_old_top_level_names_are_gone():
    code = "import importlib.util as u; print(u.find_spec('harness'), u.find_spec('tasks'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "None None"


def test_a_folder_with_its_own_tasks_and_harness_modules_does_not_break_the_cli(tmp_path):
    (tmp_path / "tasks.py").write_text("raise SystemExit('the user tasks.py was imported')\n")
    (tmp_path / "harness.py").write_text("raise SystemExit('the user harness.py was imported')\n")
    result = cli("list", "methods", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "denoise/median" in result.stdout and "superres/srcnn" in result.stdout


def _readme_plugin() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"```python\n(# my_denoiser\.py.*?)```", text, re.S)
    assert match, "the README's plugin example is gone"
    return match.group(1)


def test_the_readme_plugin_runs_as_its_command_says(tmp_path, image_folder):
    code = _readme_plugin()
    assert len(code.strip().splitlines()) <= 20
    (tmp_path / "my_denoiser.py").write_text(code)
    command = re.search(
        r"restorebench run --task denoise --method '(my_denoiser:MyBox\?size=5)' --method denoise/box",
        (REPO / "README.md").read_text(),
    )
    assert command
    result = cli(
        "run",
        "--task",
        "denoise",
        "--method",
        command.group(1),
        "--method",
        "denoise/box",
        "--dataset",
        f"folder:{image_folder}",
        "--degradation",
        "gaussian?sigma=25",
        "--executor",
        "local",
        "--no-tracking",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "denoise/my_box?size=5" in result.stdout


def test_a_plugin_without_a_task_says_so(tmp_path):
    (tmp_path / "taskless.py").write_text(
        "from restorebench import Method\n\nclass Taskless(Method):\n    name = 'x'\n"
        "    def restore_one(self, item):\n        return item.image\n"
    )
    result = cli("run", "--task", "denoise", "--method", "taskless:Taskless", "--no-tracking", cwd=tmp_path)
    assert result.returncode == 2
    assert "plugin 'taskless:Taskless' has no `task` attribute" in result.stderr
    from restorebench.core.registry import TASKS

    assert f"set task = one of: {', '.join(TASKS.names())}" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_package_folder_is_in_pyprojects_package_list():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for top, name in config["package-dir"].items():
        root = REPO / name
        if not (root / "__init__.py").exists():  # a data folder (datasets/: YAML cards only)
            found.add(top)
            assert not list(root.rglob("*.py")), f"{name}/ is data, not a Python package"
            continue
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root).parts
            found.add(".".join((top, *rel)))
    assert found == listed, f"add to or remove from pyproject's [tool.setuptools] packages: {sorted(found ^ listed)}"


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_name_with_suites_and_checkpoints(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("restorebench-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = next(n for n in names if n.endswith("top_level.txt"))
        assert zf.read(top).decode().split() == ["restorebench"]
    tops = {n.split("/")[0] for n in names if not n.startswith("restorebench-")}
    assert tops == {"restorebench"}
    for required in (
        "restorebench/tasks/denoise/suite.yaml",
        "restorebench/tasks/superres/checkpoints/srcnn_915_x3.safetensors",
        "restorebench/plugins.py",
        "restorebench/tasks/denoise/baselines/priors.py",
        "restorebench/datasets/set5.yaml",
    ):
        assert required in names
