"""The command line a user expects: --version, suggestions, defaults in --help, list and list --json."""

from __future__ import annotations

import json

import restorebench
from tests.runs import cli


def test_version():
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"restorebench {restorebench.__version__}"


def test_a_misspelt_method_gets_a_suggestion():
    result = cli("run", "--task", "denoise", "--method", "denoise/medain", "--no-tracking")
    assert result.returncode == 2
    assert "did you mean 'denoise/median'?" in result.stderr and "Traceback" not in result.stderr


def test_help_shows_the_defaults_in_brackets():
    text = cli("run", "--help").stdout
    for default in (
        "[default: runs/SUITE-TIME]",
        "[default: ray]",
        "[default: $RAY_ADDRESS, else a private local Ray]",
    ):
        assert default in " ".join(text.split()), default  # rich markup used to swallow the bracketed ones


def test_list_methods_shows_parameters_with_defaults_and_json():
    text = cli("list", "methods").stdout
    median = next(line for line in text.splitlines() if line.startswith("denoise/median "))
    assert "size=null" in median
    dncnn = next(line for line in text.splitlines() if line.startswith("denoise/dncnn "))
    assert 'model="blind"' in dncnn and "tile=0" in dncnn and "params=210,960" in dncnn
    records = json.loads(cli("list", "methods", "--json").stdout)
    by_name = {r["name"]: r for r in records}
    assert by_name["denoise/median"]["parameters"] == {"size": None}
    assert by_name["denoise/gaussian"]["kind"] == "classical"
    degradations = {r["name"]: r for r in json.loads(cli("list", "degradations", "--json").stdout)}
    assert degradations["gaussian"]["parameters"] == {"sigma": "(required)", "clip": False}
    assert degradations["gaussian"]["level"] == "sigma"


def test_list_metrics_says_what_each_number_means():
    lines = {line.split()[0]: line for line in cli("list", "metrics").stdout.splitlines()[1:]}
    assert "higher is better" in lines["psnr"] and " dB " in lines["psnr"] and "mean over images" in lines["psnr"]
    assert "lower is better" in lines["hole_l1"]
    assert "closer to 0 is better" in lines["colorfulness_gap"]
    assert "descriptive (not ranked)" in lines["saturation"]
    assert "pooled over every pixel of the set" in lines["auc"]
    assert "auc_rebal[?prior=FILE]" in lines
    records = {r["name"]: r for r in json.loads(cli("list", "metrics", "--json").stdout)}
    assert records["psnr"] | {"description": ""} == {
        "name": "psnr",
        "version": "v1",
        "direction": "higher",
        "target": None,
        "unit": "dB",
        "aggregation": "mean",
        "aggregation_detail": "mean over images",
        "parameters": "",
        "reference": True,
        "description": "",
    }
    assert (records["colorfulness_gap"]["direction"], records["colorfulness_gap"]["target"]) == ("target", 0.0)
    assert (records["auc_rebal"]["aggregation"], records["auc_rebal"]["version"]) == ("set", "v2")
    assert records["saturation"]["direction"] == "none"
    assert (records["niqe"]["direction"], records["niqe"]["reference"]) == ("lower", False)
    assert "niqe[?model=FILE]" in lines


def test_list_without_an_argument_lists_what_can_be_listed():
    result = cli("list")
    assert result.returncode == 0
    for what in ("tasks", "methods", "degradations", "metrics", "datasets", "checkpoints"):
        assert f"  {what} " in result.stdout
    assert "did you mean 'metrics'?" in cli("list", "metrix").stderr
