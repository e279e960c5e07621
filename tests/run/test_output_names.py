"""--save-outputs keeps each image's own name: non-ASCII names stay apart, every name is one safe
path component inside its METHOD folder, and the saved pixels are the ones that were scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from restorebench.core.interfaces import ImageRef
from restorebench.run.outputs import MAX_NAME_BYTES, output_name, output_path
from restorebench.run.units import WorkUnit
from tests.conftest import write_image
from tests.runs import denoise_run

TWINS = ("ünïcødé_图像.png", "ünïcødë_图像.png")  # differ only in a non-ASCII letter (é / ë)


def _unit(key: str, dataset: str = "folder:/data/set") -> WorkUnit:
    image = ImageRef(dataset, key, "0" * 64, key)
    return WorkUnit("u", "denoise", image, "gaussian?sigma=25", "denoise/median", ("psnr",), 0)


def test_non_ascii_names_are_kept_and_scored_pixels_saved(tmp_path):
    from restorebench.data.images import decode_array
    from restorebench.score.metrics import psnr

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    clean = {}
    for name in TWINS:  # two different pictures
        clean[name] = write_image(folder / name, rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    out = tmp_path / "run"
    summary = denoise_run(folder, out, ("denoise/median",), save_outputs=True, use_cache=False)
    assert summary.failed == 0
    saved = sorted(p.name for p in (out / "outputs").rglob("*.png"))
    assert saved == sorted(TWINS)  # one file each, named as its input
    method_dir = next((out / "outputs").rglob(TWINS[0])).parent
    rows = summary.results[summary.results["metric"] == "psnr"].set_index("image")
    for name in TWINS:
        pixels = decode_array((method_dir / name).read_bytes(), name).astype(np.float64) / 255
        reference = decode_array(clean[name].read_bytes(), name).astype(np.float64) / 255
        assert psnr(pixels, reference) == pytest.approx(rows.loc[name, "value"], abs=1e-6)


@pytest.mark.parametrize(
    "key",
    ["../../escaped", "../escaped.png", "/etc/passwd", "..", ".", ".hidden.png", "a\\..\\..\\b", "a\x00b", "sub/dir/x"],
)
def test_a_name_never_leaves_its_method_folder(tmp_path, key):
    path = output_path(tmp_path, _unit(key), "denoise/median")
    method_dir = tmp_path / "folder_data_set" / "gaussian_sigma-25" / "denoise_median"
    assert path.parent == method_dir  # one component, whatever the key holds
    assert not path.name.startswith(".") and "/" not in path.name and "\\" not in path.name
    assert "\0" not in path.name and path.name.endswith(".png")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x")  # the file system takes it
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [path]


def test_names_are_distinct_and_readable():
    keys = [
        *TWINS,
        "sub/a.png",
        "sub_a.png",  # slug gave both 'sub_a'
        "photo.png",
        "photo.jpg",  # a JPEG and a PNG of one name: two outputs
        "%2F.png",
        "/.png",
        "a b.png",
        "a_b.png",
    ]
    names = [output_name(k) for k in keys]
    assert len(set(names)) == len(keys)
    assert names[:6] == [*TWINS, "sub%2Fa.png", "sub_a.png", "photo.png", "photo.jpg.png"]
    assert output_name("00042") == "00042.png"  # synthetic and Hugging Face keys


def test_a_name_too_long_for_a_file_system_is_cut_and_kept_apart():
    a, b = "图" * 120 + "a.png", "图" * 120 + "b.png"
    names = output_name(a), output_name(b)
    assert names[0] != names[1]
    assert all(len(n.encode()) <= MAX_NAME_BYTES and n.startswith("图" * 50) and n.endswith(".png") for n in names)


def test_folders_keep_other_scripts_and_the_ascii_spelling():
    path = output_path(Path("o"), _unit("x.png", "folder:/data/Bilder-ü"), "denoise/median")
    assert path.parts[1:3] == ("folder_data_Bilder-ü", "gaussian_sigma-25")
    other = output_path(Path("o"), _unit("x.png", "folder:/data/Bilder-é"), "denoise/median")
    assert other.parts[1] != path.parts[1]  # slug made both 'folder_data_Bilder'
