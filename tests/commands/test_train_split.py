"""`restorebench train`'s validation split: the same images are held out however they and their folder are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(24):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"im{i:02d}.png")
    monkeypatch.chdir(tmp_path)
    return folder


def _held_out(data: str, out: Path) -> list[str]:
    import torch

    from restorebench.commands.train import train_method

    threads = torch.get_num_threads()
    try:
        summary = train_method("superres/srcnn?scale=2", data=[data], steps=1, out=out, tracking=False, threads=1)
    finally:
        torch.set_num_threads(threads)
    return sorted(name.rsplit("/", 1)[1] for name in summary.metadata["data"]["validation"])


def test_the_same_images_are_held_out_however_they_and_their_folder_are_named(photos: Path, tmp_path: Path) -> None:
    relative = _held_out("folder:photos", tmp_path / "a.safetensors")
    absolute = _held_out(f"folder:{photos}", tmp_path / "b.safetensors")
    (tmp_path / "renamed").mkdir()
    for file in photos.iterdir():  # the same images under other names, in another folder
        shutil.copy(file, tmp_path / "renamed" / f"copy_{file.name}")
    renamed = _held_out("folder:renamed", tmp_path / "c.safetensors")
    assert relative == absolute == [name.removeprefix("copy_") for name in renamed]
    # the recipe's 5 % of 24 images, by the hash of each one's content: at least one, never all
    assert 1 <= len(relative) < 24
