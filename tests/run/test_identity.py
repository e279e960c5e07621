"""What a unit id means: a plugin named like a built-in and two checkpoints of one network
are distinct methods, in the cache, in the results and on the leaderboard."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from restorebench.neural.checkpoints import save_checkpoint
from restorebench.results.board import build_leaderboard
from tests.runs import denoise_run

IMPOSTOR = """
from restorebench import Method

class Median(Method):
    task = "denoise"
    name = "median"   # the built-in's task, name and (default) parameters

    def restore_one(self, item):
        return item.image * 0.5
"""


def _psnr(summary, method):
    rows = summary.results[(summary.results["metric"] == "psnr") & (summary.results["method"] == method)]
    return rows.set_index("image")["value"].sort_index()


@pytest.fixture
def impostor(tmp_path, monkeypatch):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "impostor.py").write_text(textwrap.dedent(IMPOSTOR))
    monkeypatch.syspath_prepend(str(folder))
    return "impostor:Median"


def test_a_plugin_named_like_a_builtin_never_shares_its_cached_scores(image_folder, tmp_path, impostor):
    builtin = denoise_run(image_folder, tmp_path / "a", ("denoise/median",))
    assert builtin.computed == 3
    plugin = denoise_run(image_folder, tmp_path / "b", (impostor,))
    assert (plugin.computed, plugin.from_cache) == (3, 0)  # was: 0 computed, 3 "from cache"
    assert (_psnr(plugin, "denoise/median") < _psnr(builtin, "denoise/median") - 3).all()
    again = denoise_run(image_folder, tmp_path / "c", ("denoise/median",))
    assert again.from_cache == 3
    assert _psnr(again, "denoise/median").equals(_psnr(builtin, "denoise/median"))  # not overwritten


def test_a_plugin_and_the_builtin_it_imitates_get_two_rows(image_folder, tmp_path, impostor):
    both = denoise_run(image_folder, tmp_path / "both", ("denoise/median", impostor))
    board = build_leaderboard(both.results).table
    assert sorted(board["method"]) == ["denoise/median", "denoise/median@impostor.Median"]
    assert both.computed == 6


def _retrained(path, scale: float):
    """The committed gray and colour DnCNN checkpoints with their first layer scaled."""
    from restorebench.core.build import build_method
    from restorebench.neural.checkpoints import load_checkpoint

    method = build_method("denoise/dncnn?channels=rgb")
    state, meta = load_checkpoint(method.checkpoints()[0])
    first = next(k for k in state if k.endswith("weight"))
    state[first] = state[first] * scale
    return save_checkpoint(path, state, {"architecture": meta["architecture"], "config": meta["config"]})


def test_two_checkpoints_of_one_method_are_two_rows_never_averaged(image_folder, tmp_path):
    other = _retrained(tmp_path / "retrained.safetensors", 0.5)
    summary = denoise_run(
        image_folder, tmp_path / "run", ("denoise/dncnn?channels=rgb", f"denoise/dncnn?channels=rgb&checkpoint={other}")
    )
    board = build_leaderboard(summary.results).table
    labels = sorted(board["method"])
    assert len(labels) == 2 and labels[0] == "denoise/dncnn?channels=rgb"
    assert labels[1].startswith("denoise/dncnn?channels=rgb@") and len(labels[1].split("@")[1]) == 8
    committed, retrained = (board.set_index("method").loc[label, "psnr"] for label in labels)
    assert committed != retrained
    # each row's mean is its own checkpoint's: the old single row averaged both
    per_image = summary.results[summary.results["metric"] == "psnr"].groupby("method")["value"].mean()
    assert np.isclose(per_image[labels[0]], committed) and np.isclose(per_image[labels[1]], retrained)


def test_a_user_label_names_the_row(image_folder, tmp_path):
    other = _retrained(tmp_path / "retrained.safetensors", 0.9)
    summary = denoise_run(
        image_folder,
        tmp_path / "run",
        ("denoise/dncnn?channels=rgb", f"denoise/dncnn?channels=rgb&checkpoint={other}&label=retrained"),
    )
    assert sorted(summary.results["method"].unique()) == [
        "denoise/dncnn?channels=rgb",
        "denoise/dncnn?channels=rgb@retrained",
    ]
