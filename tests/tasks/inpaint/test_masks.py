"""Masks: every generated mask lies in its bin, at every size and seed, identically on every worker;
mask folders are read as documented, and their errors name the file or the bin."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from restorebench.core.build import build_degradation
from restorebench.core.errors import UserError
from restorebench.core.interfaces import ImageRef
from restorebench.run.units import degradation_rng
from restorebench.tasks.inpaint.masks import PAPER_BINS, RatioBin, border_margin, free_form_mask, hole_ratio


@settings(max_examples=80, deadline=None)
@given(
    bin_index=st.integers(0, len(PAPER_BINS) - 1),
    height=st.integers(64, 1024),
    width=st.integers(64, 1024),
    seed=st.integers(0, 2**32 - 1),
    border=st.booleans(),
)
def test_every_mask_lies_in_its_bin(bin_index, height, width, seed, border):
    ratio = RatioBin(*PAPER_BINS[bin_index])
    mask = free_form_mask(height, width, ratio, np.random.default_rng(seed), border=border)
    assert mask.shape == (height, width) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert hole_ratio(mask) in ratio
    if not border:
        m = border_margin(height, width)
        assert mask[:m].min() == mask[-m:].min() == mask[:, :m].min() == mask[:, -m:].min() == 1.0


def test_bins_parse_and_refuse():
    assert RatioBin.parse("0.1-0.2") == RatioBin(0.1, 0.2) and str(RatioBin(0.5, 0.6)) == "0.5-0.6"
    assert 0.2 in RatioBin(0.1, 0.2) and 0.1 not in RatioBin(0.1, 0.2)
    for bad in ("0.2", "0.3-0.1", "a-b", "0.5-1.5"):
        with pytest.raises(ValueError, match="bin"):
            RatioBin.parse(bad)
    with pytest.raises(UserError, match="ratio"):
        build_degradation("mask?ratio=0.6-0.5")


DIGEST = (
    "import hashlib, numpy as np\n"
    "from restorebench import load_plugins\n"
    "from restorebench.core.build import build_degradation\n"
    "from restorebench.core.interfaces import ImageRef\n"
    "from restorebench.run.units import degradation_rng\n"
    "load_plugins()\n"
    "d = build_degradation('mask?ratio=0.3-0.4')\n"
    "image = ImageRef('bundled:photos', 'astronaut', 'abc123')\n"
    "out = d.apply(np.zeros((200, 300, 3), np.float32), degradation_rng(0, image, d.identity()))\n"
    "print(hashlib.sha256(out.extras['mask'].tobytes()).hexdigest())\n"
)


def test_the_same_seed_gives_the_same_mask_in_every_process():
    d = build_degradation("mask?ratio=0.3-0.4")
    image = ImageRef("bundled:photos", "astronaut", "abc123")
    here = d.apply(np.zeros((200, 300, 3), np.float32), degradation_rng(0, image, d.identity())).extras["mask"]
    there = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True, check=True).stdout.strip()
    assert hashlib.sha256(here.tobytes()).hexdigest() == there
    other = d.apply(np.zeros((200, 300, 3), np.float32), degradation_rng(1, image, d.identity())).extras["mask"]
    assert not np.array_equal(here, other)


def test_the_degraded_input_is_white_in_the_holes_and_carries_the_mask():
    d = build_degradation("mask?ratio=0.2-0.3&border=false")
    clean = np.random.default_rng(0).random((64, 80, 3)).astype(np.float32)
    out = d.apply(clean, np.random.default_rng(5))
    mask = out.extras["mask"]
    assert hole_ratio(mask) in RatioBin(0.2, 0.3) and out.extras["hole_ratio"] == hole_ratio(mask)
    np.testing.assert_array_equal(out.image[mask == 1], clean[mask == 1])
    assert (out.image[mask == 0] == 1.0).all()


def _write_masks(folder, ratios, size=(40, 50), holes_white=False):
    folder.mkdir()
    for i, ratio in enumerate(ratios):
        valid = np.ones(size, bool)
        valid.flat[: int(round(ratio * valid.size))] = False
        pixels = (~valid if holes_white else valid).astype(np.uint8) * 255
        Image.fromarray(pixels).save(folder / f"m{i:02d}.png")
    return folder


def test_a_mask_folder_gives_a_mask_of_the_bin_resized_to_the_image(tmp_path):
    folder = _write_masks(tmp_path / "masks", [0.05, 0.15, 0.35, 0.36, 0.55])
    d = build_degradation(f"mask?folder={folder}&ratio=0.3-0.4")
    clean = np.zeros((80, 100, 3), np.float32)
    picks = set()
    for seed in range(12):
        mask = d.apply(clean, np.random.default_rng(seed)).extras["mask"]
        assert mask.shape == (80, 100)
        assert 0.3 < hole_ratio(mask) <= 0.4  # nearest resizing by 2 keeps the ratio here
        picks.add(hole_ratio(mask))
    assert len(picks) == 2  # both masks of the bin are used
    again = d.apply(clean, np.random.default_rng(3)).extras["mask"]
    np.testing.assert_array_equal(again, d.apply(clean, np.random.default_rng(3)).extras["mask"])


def test_invert_and_threshold(tmp_path):
    folder = _write_masks(tmp_path / "white", [0.25], holes_white=True)
    d = build_degradation(f"mask?folder={folder}&ratio=0.2-0.3&invert=true")
    assert hole_ratio(d.apply(np.zeros((40, 50, 1), np.float32), np.random.default_rng(0)).extras["mask"]) == 0.25
    gray = tmp_path / "gray"
    gray.mkdir()
    Image.fromarray(np.where(np.arange(100).reshape(10, 10) < 30, 100, 200).astype(np.uint8)).save(gray / "g.png")
    d = build_degradation(f"mask?folder={gray}&ratio=0.2-0.3")  # 100 < 127.5: hole; 200: valid
    assert hole_ratio(d.apply(np.zeros((10, 10, 3), np.float32), np.random.default_rng(0)).extras["mask"]) == 0.3


def test_mask_folder_errors_name_the_folder_file_or_bin(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        build_degradation(f"mask?folder={tmp_path / 'nowhere'}&ratio=0.1-0.2")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="holds no usable mask \\(no mask file in it\\)"):  # before any work
        build_degradation(f"mask?folder={empty}&ratio=0.1-0.2")
    folder = _write_masks(tmp_path / "some", [0.0, 1.0, 0.15])
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(
        UserError, match=r"no mask of .* has a hole ratio in bin 0.4-0.5 \(its 1 masks range 0.150-0.150\)"
    ):
        build_degradation(f"mask?folder={folder}&ratio=0.4-0.5")
    from restorebench.tasks.inpaint.masks import scan_mask_folder

    masks, skipped = scan_mask_folder(folder)
    assert [m.path.name for m in masks] == ["m02.png"]
    assert sorted(s.split(":")[0] for s in skipped) == ["broken.png", "m00.png", "m01.png"]
