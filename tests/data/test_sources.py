"""Image sources: references, decoding conventions, folder/bundled/synthetic/hf datasets."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # a hub call would otherwise hang for ~24 s
os.environ["HF_DATASETS_OFFLINE"] = "1"

import hashlib
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage
from PIL import Image

from restorebench.core.build import build_source, get_source
from restorebench.core.errors import ImageLoadError, UserError
from restorebench.data.images import decode_image, read_image, to_float_image
from restorebench.data.synthetic import deadleaves


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- to_float_image


def test_to_float_image_dtypes_and_shapes():
    u8 = to_float_image(np.array([[0, 128, 255]], np.uint8))
    assert u8.dtype == np.float32 and u8.shape == (1, 3, 1)
    assert u8[0, :, 0].tolist() == [0.0, np.float32(128) / np.float32(255), 1.0]
    u16 = to_float_image(np.array([[0, 32768, 65535]], np.uint16))
    assert u16[0, 1, 0] == np.float32(32768) / np.float32(65535) and u16[0, 2, 0] == 1.0
    assert to_float_image(np.array([[True, False]]))[0, :, 0].tolist() == [1.0, 0.0]
    f64 = to_float_image(np.full((2, 2, 3), 0.25))
    assert f64.dtype == np.float32 and f64.shape == (2, 2, 3)


def test_to_float_image_alpha_is_discarded():
    la = np.stack([np.full((2, 2), 51, np.uint8), np.zeros((2, 2), np.uint8)], axis=-1)
    gray = to_float_image(la)
    assert gray.shape == (2, 2, 1) and np.all(gray == np.float32(51) / 255)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 0  # fully transparent red stays red
    rgb = to_float_image(rgba)
    assert rgb.shape == (2, 2, 3) and np.all(rgb[..., 0] == 1.0) and np.all(rgb[..., 1:] == 0.0)


@pytest.mark.parametrize(
    ("arr", "match"),
    [
        (np.full((2, 2), 1.5, np.float32), r"\[0, 1\]"),
        (np.full((2, 2), -0.1), r"\[0, 1\]"),
        (np.full((2, 2), np.nan), r"\[0, 1\]"),
        (np.zeros((2, 2), np.int32), "unsupported image dtype int32"),
        (np.zeros((2, 2, 5), np.uint8), r"shape \(2, 2, 5\)"),
        (np.zeros((2, 2, 3, 1), np.uint8), "shape"),
        (np.zeros((0, 2), np.uint8), "shape"),
    ],
)
def test_to_float_image_rejects(arr, match):
    with pytest.raises(ValueError, match=match):
        to_float_image(arr)


# ---------------------------------------------------------------- folder


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[1, 2] = (10, 20, 30)
    Image.fromarray(rgb).save(d / "a_rgb.png")
    gray16 = np.zeros((3, 4), np.uint16)
    gray16[0, 0], gray16[0, 1], gray16[2, 3] = 65535, 32768, 1
    assert cv2.imwrite(str(d / "b_gray16.png"), gray16)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 1], rgba[..., 3] = 200, 0
    Image.fromarray(rgba, "RGBA").save(d / "c_rgba.png")
    smooth = np.broadcast_to(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], (16, 16, 3))
    Image.fromarray(np.ascontiguousarray(smooth)).save(d / "d_photo.JPG", quality=95)
    tiff16 = np.zeros((2, 3, 3), np.uint16)
    tiff16[0, 0] = (65535, 1000, 0)  # RGB
    assert cv2.imwrite(str(d / "e_rgb16.tiff"), tiff16[..., ::-1])  # cv2 writes BGR
    pal = Image.new("P", (3, 2))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    pal.putpixel((1, 0), 1)
    pal.putpixel((2, 1), 2)
    pal.save(d / "f_palette.png")
    la = np.stack([np.full((2, 2), 77, np.uint8), np.full((2, 2), 9, np.uint8)], -1)
    Image.fromarray(la, "LA").save(d / "g_gray_alpha.png")
    (d / "x_broken.png").write_bytes(np.random.default_rng(0).bytes(300))
    (d / "y_empty.png").write_bytes(b"")
    (d / "notes.txt").write_text("not an image")
    (d / ".hidden.png").write_bytes(b"")
    (d / "sub").mkdir()
    Image.fromarray(rgb).save(d / "sub" / "inner.png")
    return d


FILES = [
    "a_rgb.png",
    "b_gray16.png",
    "c_rgba.png",
    "d_photo.JPG",
    "e_rgb16.tiff",
    "f_palette.png",
    "g_gray_alpha.png",
    "x_broken.png",
    "y_empty.png",
]


def test_folder_lists_images_sorted_with_file_hashes(image_dir: Path):
    src = build_source(f"folder:{image_dir}")
    refs = src.list_images()
    assert [r.key for r in refs] == FILES  # broken and empty files are listed; .txt and hidden are not
    for ref in refs:
        assert ref.dataset == f"folder:{image_dir}" == src.ref
        assert ref.locator == str(image_dir / ref.key)
        assert ref.content_hash == sha256_file(image_dir / ref.key)
    assert refs[-1].content_hash == hashlib.sha256(b"").hexdigest()


def test_folder_recursive(image_dir: Path):
    src = build_source(f"folder:{image_dir}?recursive=true")
    assert src.ref == f"folder:{image_dir}?recursive=true"
    assert [r.key for r in src.list_images()] == sorted(FILES + ["sub/inner.png"])


def test_folder_relative_path_kept_in_ref_absolute_in_locator(image_dir: Path, monkeypatch):
    monkeypatch.chdir(image_dir.parent)
    refs = build_source("folder:imgs").list_images()
    assert refs[0].dataset == "folder:imgs"
    assert refs[0].locator == str(image_dir / "a_rgb.png") and os.path.isabs(refs[0].locator)


def test_folder_load_values(image_dir: Path):
    src = build_source(f"folder:{image_dir}")
    img = {r.key: src.load(r) for r in src.list_images() if not r.key.startswith(("x_", "y_"))}
    for arr in img.values():
        assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[2] in (1, 3)
        assert 0.0 <= arr.min() and arr.max() <= 1.0
    rgb = img["a_rgb.png"]
    assert rgb.shape == (4, 5, 3)
    assert rgb[0, 0].tolist() == [1.0, 0.0, 0.0]  # red stays red (no BGR mix-up)
    assert np.array_equal(rgb[1, 2] * 255, np.float32([10, 20, 30]))
    g16 = img["b_gray16.png"]
    assert g16.shape == (3, 4, 1)
    assert g16[0, 0, 0] == 1.0
    assert g16[0, 1, 0] == np.float32(32768) / np.float32(65535)  # 16 bits kept, not 128/255
    assert g16[2, 3, 0] == np.float32(1) / np.float32(65535)
    rgba = img["c_rgba.png"]
    assert rgba.shape == (4, 4, 3) and np.all(rgba[..., 1] == np.float32(200) / 255) and np.all(rgba[..., [0, 2]] == 0)
    jpg = img["d_photo.JPG"]
    assert jpg.shape == (16, 16, 3) and abs(float(jpg[:, -1].mean()) - 1.0) < 0.03 and float(jpg[:, 0].mean()) < 0.03
    t16 = img["e_rgb16.tiff"]
    assert t16.shape == (2, 3, 3)
    assert t16[0, 0].tolist() == [1.0, np.float32(1000) / np.float32(65535), 0.0]
    pal = img["f_palette.png"]
    assert pal.shape == (2, 3, 3)
    assert (
        pal[0, 1].tolist() == [1.0, 0.0, 0.0]
        and pal[1, 2].tolist() == [0.0, 0.0, 1.0]
        and pal[0, 0].tolist() == [0, 0, 0]
    )
    la = img["g_gray_alpha.png"]
    assert la.shape == (2, 2, 1) and np.all(la == np.float32(77) / 255)


def test_folder_bad_files_raise_image_load_error(image_dir: Path):
    src = build_source(f"folder:{image_dir}")
    refs = {r.key: r for r in src.list_images()}
    with pytest.raises(ImageLoadError, match="x_broken.png") as exc:
        src.load(refs["x_broken.png"])
    assert (
        str(exc.value)
        == f"cannot decode {image_dir / 'x_broken.png'}: not a PNG/JPEG/TIFF/BMP image or corrupt (300 bytes)"
    )
    with pytest.raises(ImageLoadError) as exc:
        src.load(refs["y_empty.png"])
    assert str(exc.value) == f"cannot decode {image_dir / 'y_empty.png'}: not a PNG/JPEG/TIFF/BMP image (0 bytes)"
    assert not isinstance(exc.value, UserError)


def test_read_image_missing_file(tmp_path: Path):
    with pytest.raises(ImageLoadError, match=r"cannot read .*gone\.png"):
        read_image(tmp_path / "gone.png")
    with pytest.raises(ImageLoadError, match="row 3"):
        decode_image(b"garbage", "hf:x row 3")


def test_folder_errors(tmp_path: Path):
    with pytest.raises(UserError, match=r"dataset folder .*missing does not exist") as exc:
        build_source(f"folder:{tmp_path / 'missing'}").list_images()
    assert ".png" in str(exc.value) and ".tiff" in str(exc.value)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(UserError, match="is not a directory"):
        build_source(f"folder:{tmp_path / 'file.png'}").list_images()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(UserError, match=r"no image files in .*empty; accepted extensions: .bmp, .jpeg, .jpg, .png"):
        build_source(f"folder:{tmp_path / 'empty'}").list_images()


# ---------------------------------------------------------------- references and errors


def test_reference_errors():
    from restorebench.core.registry import SOURCES

    assert {"bundled", "folder", "hf", "sid", "synthetic"} <= set(SOURCES.names())
    with pytest.raises(UserError, match=f"unknown dataset source 'nope'; valid choices: {', '.join(SOURCES.names())}"):
        build_source("nope:x")
    with pytest.raises(UserError, match="has no scheme") as exc:
        build_source("photos")
    assert "folder:DIR" in str(exc.value)
    with pytest.raises(UserError, match=r"n='0': Input should be greater than or equal to 1"):
        build_source("synthetic:deadleaves?n=0")
    with pytest.raises(
        UserError, match="unknown parameter 'colour'; valid parameters: gray, n, rmax, rmin, seed, size"
    ):
        build_source("synthetic:deadleaves?colour=1")
    with pytest.raises(UserError, match="need 0 < rmin < rmax"):
        build_source("synthetic:deadleaves?rmin=8&rmax=4")
    with pytest.raises(UserError, match="'photos' or 'photos-train'"):
        build_source("bundled:holiday")
    with pytest.raises(UserError, match="has no target"):
        build_source("folder:")


def test_get_source_caches():
    assert get_source("synthetic:deadleaves?n=2") is get_source("synthetic:deadleaves?n=2")


# ---------------------------------------------------------------- synthetic


def test_deadleaves_references_and_hashes():
    src = build_source("synthetic:deadleaves?n=3&size=64&seed=0&rmin=2.0&gray=false")
    assert src.ref == "synthetic:deadleaves?n=3&size=64"  # defaults left out
    refs = src.list_images()
    assert [r.key for r in refs] == ["00000", "00001", "00002"] and [r.locator for r in refs] == ["0", "1", "2"]
    assert len({r.content_hash for r in refs}) == 3
    longer = build_source("synthetic:deadleaves?n=5&size=64").list_images()
    assert [r.content_hash for r in longer[:3]] == [r.content_hash for r in refs]  # image i does not depend on n
    other = build_source("synthetic:deadleaves?n=3&size=64&seed=1").list_images()
    assert other[0].content_hash != refs[0].content_hash


def test_deadleaves_images_deterministic_and_covered():
    src = build_source("synthetic:deadleaves?n=2&size=48")
    refs = src.list_images()
    a, b = src.load(refs[0]), src.load(refs[0])
    assert a.dtype == np.float32 and a.shape == (48, 48, 3)
    assert np.array_equal(a, b)
    assert np.array_equal(a, build_source("synthetic:deadleaves?n=2&size=48").load(refs[0]))
    assert not np.array_equal(a, src.load(refs[1]))
    seeded = build_source("synthetic:deadleaves?n=2&size=48&seed=7")
    assert not np.array_equal(a, seeded.load(seeded.list_images()[0]))
    assert np.all(a.max(axis=2) > 0)  # no pixel left at the canvas' zero start value
    assert 0.0 <= a.min() and a.max() < 1.0
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 20  # many leaves, not one flat colour


def test_deadleaves_gray_and_function():
    src = build_source("synthetic:deadleaves?n=1&size=32&gray=true")
    assert src.load(src.list_images()[0]).shape == (32, 32, 1)
    img = deadleaves(40, np.random.default_rng(3), rmin=1, rmax=8)
    assert img.shape == (40, 40, 3) and np.all(img.max(axis=2) > 0)
    assert np.array_equal(img, deadleaves(40, np.random.default_rng(3), rmin=1, rmax=8))


# ---------------------------------------------------------------- bundled


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_bundled_photos(no_network):
    src = build_source("bundled:photos")
    refs = src.list_images()
    assert src.ref == "bundled:photos"
    assert [r.key for r in refs] == ["astronaut", "camera", "chelsea", "coffee", "rocket"]
    data = Path(skimage.__file__).parent / "data"
    for ref in refs:
        assert ref.locator == ref.key + (".jpg" if ref.key == "rocket" else ".png")
        assert ref.content_hash == sha256_file(data / ref.locator)
    camera = src.load(refs[1])
    assert camera.shape == (512, 512, 1) and camera.dtype == np.float32
    astronaut = src.load(refs[0])
    assert astronaut.shape == (512, 512, 3) and 0.0 <= astronaut.min() and astronaut.max() <= 1.0
    assert src.load(refs[4]).shape[2] == 3


def test_bundled_train_is_disjoint(no_network):
    train = build_source("bundled:photos-train").list_images()
    test = build_source("bundled:photos").list_images()
    assert len(train) >= 8
    assert not {r.key for r in train} & {r.key for r in test}
    assert not {r.content_hash for r in train} & {r.content_hash for r in test}


# ---------------------------------------------------------------- Hugging Face


def _pictures() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (6 + i, 5, 3), dtype=np.uint8) for i in range(3)]


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    import datasets

    ds = datasets.Dataset.from_dict({"label": [0, 1, 2], "image": [Image.fromarray(p) for p in _pictures()]})
    ds = ds.cast_column("image", datasets.Image())
    ds.save_to_disk(str(tmp_path / "hfds"))
    datasets.DatasetDict({"test": ds, "train": ds.select([0])}).save_to_disk(str(tmp_path / "hfdict"))
    return tmp_path


def test_hf_saved_dataset(hf_dir: Path):
    import datasets

    path = hf_dir / "hfds"
    src = build_source(f"hf:{path}")
    refs = src.list_images()
    assert src.ref == f"hf:{path}"
    assert [(r.key, r.locator) for r in refs] == [("00000", "0"), ("00001", "1"), ("00002", "2")]
    raw = datasets.load_from_disk(str(path)).cast_column("image", datasets.Image(decode=False))
    assert [r.content_hash for r in refs] == [hashlib.sha256(row["bytes"]).hexdigest() for row in raw["image"]]
    for ref, picture in zip(refs, _pictures()):
        img = src.load(ref)
        assert img.dtype == np.float32 and np.array_equal(img * 255, picture.astype(np.float32))


def test_hf_photos_without_a_reference(hf_dir: Path):
    """``reference=none``: the column holds photos taken as they are; pairs are not photos."""
    src = build_source(f"hf:{hf_dir / 'hfds'}?column=image&reference=none")
    assert not src.has_reference and not src.paired
    refs = src.list_images()
    assert np.array_equal(src.load(refs[1]) * 255, _pictures()[1].astype(np.float32))
    with pytest.raises(UserError, match="one image column"):
        build_source(f"hf:{hf_dir / 'hfds'}?gt=image&lq=image&reference=none")


def test_hf_dataset_dict_split_and_limit(hf_dir: Path):
    refs = build_source(f"hf:{hf_dir / 'hfdict'}?column=image&limit=2").list_images()
    assert [r.key for r in refs] == ["00000", "00001"]
    assert refs[0].dataset == f"hf:{hf_dir / 'hfdict'}?column=image&limit=2"
    train = build_source(f"hf:{hf_dir / 'hfdict'}?split=train")
    assert len(train.list_images()) == 1
    with pytest.raises(UserError, match="has no split 'validation'; splits: test, train"):
        build_source(f"hf:{hf_dir / 'hfdict'}?split=validation").list_images()


def test_hf_without_image_column(tmp_path: Path):
    import datasets

    datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).save_to_disk(str(tmp_path / "noimg"))
    with pytest.raises(UserError, match="has no image column; columns: text, label"):
        build_source(f"hf:{tmp_path / 'noimg'}").list_images()


def test_hf_wrong_column(hf_dir: Path):
    with pytest.raises(UserError, match="has no image column 'label'; columns: label, image"):
        build_source(f"hf:{hf_dir / 'hfds'}?column=label").list_images()


def test_hf_unreachable_hub():
    with pytest.raises(UserError, match="could not load Hugging Face dataset") as exc:
        build_source("hf:nobody/no-such-dataset-xyz").list_images()
    assert "save_to_disk" in str(exc.value)
