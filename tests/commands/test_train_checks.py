"""``restorebench train`` checks what it needs before the first step (a run takes minutes to
hours), never overwrites a committed checkpoint by default, and names what can be trained."""

from __future__ import annotations

import hashlib
import time

import pytest

from restorebench.commands.train import train_method
from restorebench.core.build import build_method
from restorebench.core.errors import UserError

DATA = ["synthetic:deadleaves?n=4&size=64"]


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("model.pt", "checkpoints are written as .safetensors"),
        ("folder", "is a folder"),
        ("file/inside.safetensors", "cannot create its folder"),
    ],
)
def test_a_bad_out_is_refused_before_anything_is_loaded(tmp_path, out, message):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file, not a folder")
    started = time.perf_counter()
    with pytest.raises(UserError, match=message):
        train_method("superres/srcnn?scale=3", data=["folder:/nonexistent/images"], out=tmp_path / out, tracking=False)
    assert time.perf_counter() - started < 5  # refused up front: the missing data folder was never read


def test_without_out_the_checkpoint_goes_to_a_new_file_not_the_committed_one(tmp_path, monkeypatch):
    committed = build_method("superres/srcnn?scale=3").training_output()
    before = hashlib.sha256(committed.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    summary = train_method("superres/srcnn?scale=3", data=DATA, steps=1, tracking=False, threads=1)
    assert hashlib.sha256(committed.read_bytes()).hexdigest() == before
    assert summary.checkpoint.parts[:2] == ("runs", "train") and summary.checkpoint.name == committed.name
    assert (tmp_path / summary.checkpoint).is_file()
    assert f"wrote {summary.checkpoint}" in summary.describe()


def test_only_neural_methods_are_offered_for_training():
    with pytest.raises(UserError) as info:
        train_method("denoise/nosuch", data=DATA, tracking=False)
    text = str(info.value)
    assert "not a method" in text and "denoise/dncnn" in text and "denoise/median" not in text
    with pytest.raises(UserError, match="a classical method, which has nothing to train"):
        train_method("denoise/median", data=DATA, tracking=False)


def test_a_colorizer_refuses_gray_training_data_and_leaves_gray_images_out(tmp_path, caplog):
    from restorebench.commands.train import colour_only

    gray = "synthetic:deadleaves?n=4&size=64&gray=true"
    with pytest.raises(UserError, match="learns colours, but every one of the 4 training images .* is gray"):
        train_method("colorize/deoldify", data=[gray], steps=1, out=tmp_path / "c.safetensors", tracking=False)
    import numpy as np

    rng = np.random.default_rng(0)
    colour, flat = rng.random((8, 8, 3)).astype(np.float32), np.repeat(rng.random((8, 8, 1)), 3, axis=2)
    kept, keys = colour_only([colour, flat, rng.random((8, 8, 1))], ["a", "b", "c"], ["x"], "colorize/eccv16")
    assert keys == ["a"] and kept[0] is colour
    assert "2 of 3 training images are gray and are left out" in caplog.text
