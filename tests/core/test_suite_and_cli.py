"""Suite validation, registries and the command line (exit codes, messages, end to end)."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pandas as pd
import pytest

from restorebench.core.errors import UserError
from restorebench.core.registry import Registry
from restorebench.core.suite import narrow, parse_suite, read_suite, resolve
from tests import REPO
from tests.runs import cli as run_cli


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """The console script with the environment of the moment (the test's isolated cache)."""
    return run_cli(*args, cwd=cwd, env={"HF_HUB_OFFLINE": "1"})


def _suite(**task) -> dict:
    entry = {
        "task": "denoise",
        "datasets": ["bundled:photos"],
        "degradations": ["gaussian?sigma=25"],
        "methods": ["denoise/median"],
    }
    entry.update(task)
    return {"name": "t", "seed": 0, "tasks": [entry]}


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"methods": ["denoise/nope"]}, ["tasks[0].methods[0]", "unknown method 'denoise/nope'", "denoise/median"]),
        ({"degradations": ["gaussian?sigma=-5"]}, ["tasks[0].degradations[0]", "sigma"]),
        ({"degradations": ["saltpepper?density=1.5"]}, ["density"]),
        ({"degradations": ["gaussian?sigma=25&colour=1"]}, ["unknown parameter 'colour'", "sigma"]),
        ({"degradations": ["blur?radius=2"]}, ["unknown degradation 'blur'", "gaussian", "saltpepper"]),
        ({"datasets": ["nowhere:x"]}, ["tasks[0].datasets[0]", "folder"]),
        ({"task": "deblur"}, ["unknown task 'deblur'", "denoise"]),
        ({"metrics": ["lpips"]}, ["tasks[0].metrics[0]", "unknown metric 'lpips'", "psnr_y"]),
    ],
)
def test_invalid_suites_name_the_key_and_the_choices(change, needles):
    with pytest.raises(UserError) as err:
        resolve(parse_suite(_suite(**change), origin="my.yaml"), origin="my.yaml")
    message = str(err.value)
    assert message.startswith("my.yaml")
    for needle in needles:
        assert needle in message


def test_schema_errors_name_the_key(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ntasks:\n  - task: denoise\n    datasets: [bundled:photos]\n    degradation: [gaussian]\n")
    with pytest.raises(UserError) as err:
        read_suite(path)
    assert "unknown key 'tasks.0.degradation'" in str(err.value) and "degradations" in str(err.value)
    path.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match="malformed YAML"):
        read_suite(path)


def test_narrow_keeps_methods_of_their_own_task():
    suite = parse_suite(_suite(methods=["denoise/median", "denoise/box"]))
    narrowed = narrow(suite, methods=["denoise/box"], degradations=["saltpepper?density=0.2"])
    assert narrowed.tasks[0].methods == ["denoise/box"]
    assert narrowed.tasks[0].degradations == ["saltpepper?density=0.2"]
    with pytest.raises(UserError, match="not in suite"):
        narrow(suite, tasks=["superres"])


def test_narrow_merges_blocks_the_options_made_equal():
    data = _suite()
    data["tasks"].append({**data["tasks"][0], "methods": ["denoise/box"], "degradations": ["saltpepper?density=0.2"]})
    suite = parse_suite(data)
    both = narrow(suite, methods=["denoise/wiener"], degradations=["gaussian?sigma=15"])
    assert len(both.tasks) == 1 and both.tasks[0].methods == ["denoise/wiener"]
    assert len(narrow(suite, datasets=["bundled:photos-train"]).tasks) == 2  # still different blocks


def test_registry_rejects_duplicates_and_lists_choices():
    reg: Registry = Registry("widget")

    class A:
        name = "a"

    class B:
        name = "a"

    reg.register()(A)
    reg.register()(A)  # registering the same object again is harmless
    with pytest.raises(ValueError, match="already registered"):
        reg.register()(B)
    with pytest.raises(UserError, match="valid choices: a"):
        reg.get("b")


def test_plugin_method_by_module_and_class(tmp_path, image_folder, monkeypatch):
    """A third-party method given as module:Class runs without touching the harness."""
    (tmp_path / "myplugin.py").write_text(
        textwrap.dedent(
            """
            from restorebench.core.interfaces import Method

            class Darken(Method):
                name = "darken"
                task = "denoise"
                version = "7"

                def restore_one(self, item):
                    return item.image * 0.5
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from restorebench.run.pipeline import RunOptions, run_suite

    summary = run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gaussian?sigma=0",),
            methods=("myplugin:Darken", "denoise/identity"),
            out=tmp_path / "run",
            executor="local",
            tracking=False,
        )
    )
    frame = summary.results
    assert set(frame["method"]) == {"denoise/darken", "denoise/identity"}
    psnr = frame[frame.metric == "psnr"].groupby("method")["value"].mean()
    assert psnr["denoise/identity"] == float("inf") or psnr["denoise/identity"] > 60
    assert psnr["denoise/darken"] < 15
    assert (frame.loc[frame.method == "denoise/darken", "method_version"] == "7").all()


def test_cli_bad_usage_exits_2_with_a_message(tmp_path):
    result = cli("run", "--task", "denoise", "--method", "denoise/nope", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert "unknown method 'denoise/nope'" in result.stderr and "Traceback" not in result.stderr
    result = cli("run", "--degradation", "gaussian?sigma=-1", "--out", str(tmp_path / "r"))
    assert result.returncode == 2 and "sigma" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [")
    result = cli("run", str(bad))
    assert result.returncode == 2 and "malformed YAML" in result.stderr
    result = cli("list", "widgets")
    assert result.returncode == 2 and "tasks, methods" in result.stderr


def test_cli_list():
    methods = cli("list", "methods")
    assert methods.returncode == 0
    for name in ("denoise/median", "denoise/nlmeans", "denoise/bm3d", "denoise/wavelet"):
        assert name in methods.stdout
    assert "classical" in methods.stdout and "cpus=1" in methods.stdout
    assert "gaussian" in cli("list", "degradations").stdout
    assert "psnr_y" in cli("list", "metrics").stdout
    assert "folder:" in cli("list", "datasets").stdout
    assert "denoise" in cli("list", "tasks").stdout


def test_cli_list_checkpoints_shows_each_committed_checkpoint_with_its_provenance():
    from safetensors import safe_open

    listed = cli("list", "checkpoints")
    assert listed.returncode == 0, listed.stderr
    lines = {line.split("  ")[1]: line for line in listed.stdout.splitlines()}
    committed = {}
    for path in sorted((REPO / "tasks").glob("*/checkpoints/*.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["restorebench"])
        if "method" in meta:  # what `restorebench train` wrote (not e.g. colorize's feature network)
            committed[path] = meta
    assert committed and sorted(lines) == sorted(p.name for p in committed)
    for path, meta in committed.items():
        line = lines[path.name]
        assert f"steps={meta['steps']}" in line and meta["command"] in line
        assert f"val_psnr={meta['metrics']['val_psnr']:.2f}" in line


@pytest.mark.ray
def test_cli_run_end_to_end_on_a_folder(image_folder, tmp_path):
    """The issue's acceptance command, on Ray and in-process, then `report`."""
    args = [
        "run",
        "--task",
        "denoise",
        "--dataset",
        f"folder:{image_folder}",
        "--degradation",
        "gaussian?sigma=25",
        "--method",
        "denoise/median",
        "--method",
        "denoise/nlmeans",
        "--num-cpus",
        "2",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
    ]
    ray_run = cli(*args, "--out", str(tmp_path / "ray"), cwd=tmp_path)
    assert ray_run.returncode == 0, ray_run.stderr
    assert "denoise/nlmeans" in ray_run.stdout and "MLflow:" in ray_run.stdout
    local = cli(*args, "--out", str(tmp_path / "local"), "--executor", "local", "--no-cache", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    a = pd.read_parquet(tmp_path / "ray" / "results.parquet").set_index(["unit_id", "metric"])["value"].sort_index()
    b = pd.read_parquet(tmp_path / "local" / "results.parquet").set_index(["unit_id", "metric"])["value"].sort_index()
    pd.testing.assert_series_equal(a, b, check_exact=True)
    rep = cli("report", str(tmp_path / "ray"))
    assert rep.returncode == 0, rep.stderr
    board = pd.read_csv(tmp_path / "ray" / "report" / "leaderboard.csv")
    assert list(board.sort_values("rank")["method"]) == ["denoise/nlmeans", "denoise/median"]
    assert "## denoise" in (tmp_path / "ray" / "report" / "LEADERBOARD.md").read_text()


def test_cli_run_prints_a_bad_image_once_with_its_unit_count(image_folder, tmp_path):
    (image_folder / "c_broken.png").write_bytes(b"not a png" * 50)
    proc = cli(
        "run",
        "--task",
        "denoise",
        "--dataset",
        f"folder:{image_folder}",
        "--degradation",
        "gaussian?sigma=25",
        "--method",
        "denoise/median",
        "--method",
        "denoise/identity",
        "--executor",
        "local",
        "--no-tracking",
        "--out",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    failed = [line for line in proc.stdout.splitlines() if line.strip().startswith("failed:")]
    assert len(failed) == 1 and "c_broken.png" in failed[0] and failed[0].endswith("(2 units)")
    assert "2 failed" in proc.stdout
