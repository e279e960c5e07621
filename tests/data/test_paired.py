"""Pre-degraded pairs: a BasicSR-style tree, a manifest, a Parquet file and a Hugging Face dataset,
scored with given; pairing errors name the file; the recursive-folder trap is refused."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from restorebench.core.build import build_source
from restorebench.core.errors import UserError
from restorebench.imaging import imresize, modcrop
from restorebench.run.pipeline import RunOptions, run_suite

SCALE = 2


def _hr_images(n=3, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        h, w = 41 + 6 * i, 50 + 4 * i  # not multiples of the scale: modcrop matters
        base = rng.random((h // 4 + 2, w // 4 + 2, 3))
        smooth = np.clip(imresize(base, output_shape=(h, w)), 0, 1)
        out[f"img{i}"] = np.round(smooth * 255).astype(np.uint8)
    return out


def _lr(hr: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """MATLAB's bicubic downscale of the modcropped HR, rounded to uint8 (the bicubic degradation's LR)."""
    return np.clip(np.round(imresize(modcrop(hr.astype(np.float64) / 255, scale), 1 / scale) * 255), 0, 255).astype(
        np.uint8
    )


@pytest.fixture
def basicsr_tree(tmp_path):
    root = tmp_path / "Set3"
    (root / "HR").mkdir(parents=True)
    (root / "LR_bicubic" / "X2").mkdir(parents=True)
    for name, hr in _hr_images().items():
        Image.fromarray(hr).save(root / "HR" / f"{name}.png")
        Image.fromarray(_lr(hr)).save(root / "LR_bicubic" / "X2" / f"{name}x2.png")
    return root


def _run(tmp_path, datasets, degradations, out="run"):
    return run_suite(
        RunOptions(
            tasks=("superres",),
            datasets=tuple(datasets),
            degradations=tuple(degradations),
            methods=("superres/bicubic", "superres/nearest"),
            out=tmp_path / out,
            executor="local",
            tracking=False,
            use_cache=False,
        )
    )


def _scores(summary):
    rows = summary.results
    return rows.set_index(["image", "method", "metric"])["value"].sort_index()


def test_a_basicsr_tree_scores_exactly_as_the_bicubic_degradation(basicsr_tree, tmp_path):
    ref = f"paired:gt={basicsr_tree / 'HR'}&lq={basicsr_tree / 'LR_bicubic' / 'X2'}&lq_template={{stem}}x2"
    paired = _run(tmp_path, [ref], ["given?scale=2"], "paired")
    generated = _run(tmp_path, [f"folder:{basicsr_tree / 'HR'}"], ["bicubic?scale=2"], "generated")
    assert paired.failed == 0 and paired.computed == 3 * 2
    a, b = _scores(paired), _scores(generated)
    a.index = a.index.set_levels([lvl.str.replace(".png", "") for lvl in [a.index.levels[0]]][0], level=0)
    b.index = b.index.set_levels(b.index.levels[0].str.replace(".png", ""), level=0)
    pd.testing.assert_series_equal(a, b, check_exact=True, check_names=False)  # same LR, same protocol


def test_the_recursive_folder_trap_is_refused(basicsr_tree):
    with pytest.raises(UserError, match="looks like ground truth beside degraded inputs") as info:
        build_source(f"folder:{basicsr_tree}?recursive=true").list_images()
    assert "paired:gt=" in str(info.value)
    with pytest.raises(UserError, match="look like pairs: use paired:"):
        build_source(f"folder:{basicsr_tree}").list_images()


def test_pairing_errors_name_the_files(basicsr_tree, tmp_path):
    lr = basicsr_tree / "LR_bicubic" / "X2"
    (lr / "img1x2.png").unlink()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(lr / "strayx2.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(lr / "img0x2.bmp")
    with pytest.raises(UserError) as info:
        build_source(f"paired:gt={basicsr_tree / 'HR'}&lq={lr}&lq_template={{stem}}x2").list_images()
    text = str(info.value)
    assert "HR/img1.png has no LQ: expected" in text and "img1x2.*" in text
    assert "LQ" in text and "strayx2.png has no GT" in text
    assert "img0.png has 2 LQ files" in text


def test_an_lq_of_the_wrong_size_is_refused_before_work_starts_naming_the_sizes(basicsr_tree, tmp_path):
    lr = basicsr_tree / "LR_bicubic" / "X2"
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(lr / "img2x2.png")
    with pytest.raises(UserError, match="1 pair") as info:
        _run(tmp_path, [f"paired:gt={basicsr_tree / 'HR'}&lq={lr}&lq_template={{stem}}x2"], ["given?scale=2"])
    assert "img2: the LR is 10x10, but its HR (58x53, 58x52 after modcrop) needs 29x26 at scale 2" in str(info.value)
    assert not (tmp_path / "run").exists()


def test_given_and_pairs_go_together(basicsr_tree, tmp_path):
    with pytest.raises(UserError, match="reads pre-degraded inputs, but dataset folder:"):
        _run(tmp_path, [f"folder:{basicsr_tree / 'HR'}"], ["given?scale=2"])
    with pytest.raises(UserError, match="holds pre-degraded inputs, but degradation bicubic"):
        _run(
            tmp_path,
            [f"paired:gt={basicsr_tree / 'HR'}&lq={basicsr_tree / 'LR_bicubic' / 'X2'}&lq_template={{stem}}x2"],
            ["bicubic?scale=2"],
        )


def test_a_manifest_with_levels_and_its_errors(basicsr_tree, tmp_path):
    manifest = tmp_path / "pairs.csv"
    pd.DataFrame(
        {
            "gt": [f"Set3/HR/img{i}.png" for i in range(3)],
            "lq": [f"Set3/LR_bicubic/X2/img{i}x2.png" for i in range(3)],
            "key": ["a", "b", "c"],
            "scale": [2, 2, 2],
        }
    ).to_csv(manifest, index=False)
    refs = build_source(f"manifest:{manifest}").list_images()
    assert [r.key for r in refs] == ["a", "b", "c"]
    summary = _run(tmp_path, [f"manifest:{manifest}"], ["given"])  # the level comes from the scale column
    assert summary.failed == 0 and set(summary.results["image"]) == {"a", "b", "c"}
    bad = tmp_path / "bad.csv"
    pd.DataFrame(
        {"gt": ["Set3/HR/img0.png", "missing.png"], "lq": ["Set3/LR_bicubic/X2/img0x2.png", "x.png"], "key": ["a", "a"]}
    ).to_csv(bad, index=False)
    with pytest.raises(UserError) as info:
        build_source(f"manifest:{bad}").list_images()
    assert "row 3: GT" in str(info.value) and "missing.png does not exist" in str(info.value)
    assert "duplicate key 'a' (row 2)" in str(info.value)
    conflicting = tmp_path / "conflict.csv"
    pd.DataFrame({"gt": ["Set3/HR/img0.png"], "lq": ["Set3/LR_bicubic/X2/img0x2.png"], "scale": [3]}).to_csv(
        conflicting, index=False
    )
    with pytest.raises(UserError, match="img0: the source says scale=3, the degradation given"):
        _run(tmp_path, [f"manifest:{conflicting}"], ["given?scale=2"], "conflict")  # refused before any work
    other_task = tmp_path / "sigma.csv"
    pd.DataFrame({"gt": ["Set3/HR/img0.png"], "lq": ["Set3/LR_bicubic/X2/img0x2.png"], "sigma": [25]}).to_csv(
        other_task, index=False
    )
    with pytest.raises(UserError, match="sigma is not a level of superres"):
        _run(tmp_path, [f"manifest:{other_task}"], ["given?scale=2"], "other")


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def test_a_parquet_file_of_image_bytes(basicsr_tree, tmp_path):
    rows = []
    for name, hr in _hr_images().items():
        rows.append({"name": name, "hr": _png(hr), "lr": {"bytes": _png(_lr(hr)), "path": None}})
    pd.DataFrame(rows).to_parquet(tmp_path / "pairs.parquet")
    summary = _run(tmp_path, [f"parquet:{tmp_path / 'pairs.parquet'}?gt=hr&lq=lr&key=name"], ["given?scale=2"])
    assert summary.failed == 0 and sorted(summary.results["image"].unique()) == ["img0", "img1", "img2"]
    with pytest.raises(UserError, match="has no column 'nope'"):
        build_source(f"parquet:{tmp_path / 'pairs.parquet'}?gt=nope&lq=lr").list_images()


def test_a_hugging_face_dataset_with_two_image_columns(tmp_path):
    datasets = pytest.importorskip("datasets")
    images = _hr_images()
    ds = datasets.Dataset.from_dict(
        {"hr": [Image.fromarray(v) for v in images.values()], "lr": [Image.fromarray(_lr(v)) for v in images.values()]},
        features=datasets.Features({"hr": datasets.Image(), "lr": datasets.Image()}),
    )
    ds.save_to_disk(str(tmp_path / "hfpairs"))
    source = build_source(f"hf:{tmp_path / 'hfpairs'}?gt=hr&lq=lr")
    assert source.paired and len(source.list_images()) == 3
    summary = _run(tmp_path, [f"hf:{tmp_path / 'hfpairs'}?gt=hr&lq=lr"], ["given?scale=2"])
    assert summary.failed == 0 and summary.computed == 6
    with pytest.raises(UserError, match="needs both gt=COL and lq=COL"):
        build_source(f"hf:{tmp_path / 'hfpairs'}?gt=hr")


def test_each_task_declares_the_levels_its_pairs_may_state():
    from restorebench.core.build import build_degradation

    assert build_degradation("given?sigma=25", task="denoise").params.sigma == 25.0
    scale = build_degradation("given?scale=4", task="superres").params.scale
    assert scale == 4 and isinstance(scale, int)
    with pytest.raises(UserError, match="unknown parameter 'sigma'") as info:
        build_degradation("given?sigma=25", task="superres")
    assert "the levels superres's pairs may state: scale" in str(info.value)
    with pytest.raises(UserError, match="the levels colorize's pairs may state: none"):
        build_degradation("given?ratio=3", task="colorize")


def _pairs(tmp_path, gt: dict, lq: dict):
    for folder, images in (("gt", gt), ("lq", lq)):
        (tmp_path / folder).mkdir()
        for name, array in images.items():
            Image.fromarray(array).save(tmp_path / folder / f"{name}.png")
    return f"paired:gt={tmp_path / 'gt'}&lq={tmp_path / 'lq'}"


def test_colorization_pairs_of_a_gray_photo_and_its_colour_original(tmp_path):
    """``given`` for colorization: the LQ (a gray scan) becomes the lightness input; scored
    against the colour GT as ``gray`` would be."""
    from skimage import data as skdata

    colour = skdata.astronaut()[100:164, 150:230]
    gray = np.asarray(Image.fromarray(colour).convert("L"))
    options = RunOptions(
        tasks=("colorize",), datasets=(_pairs(tmp_path, {"a": colour}, {"a": gray}),), degradations=("given",),
        methods=("colorize/gray",), out=tmp_path / "run", executor="local", tracking=False, use_cache=False,
    )  # fmt: skip
    summary = run_suite(options)
    assert summary.failed == 0 and summary.scored
    psnr = summary.results.set_index("metric")["value"]["psnr"]
    assert 10 < psnr < 40  # the gray photo's lightness, no colour: a real, finite score against the original


def test_inpainting_pairs_are_refused_before_any_work(tmp_path):
    image = np.zeros((32, 32, 3), np.uint8)
    options = RunOptions(
        tasks=("inpaint",), datasets=(_pairs(tmp_path, {"a": image}, {"a": image + 1}),), degradations=("given",),
        methods=("inpaint/telea",), out=tmp_path / "run", executor="local", tracking=False,
    )  # fmt: skip
    with pytest.raises(UserError, match="inpainting needs the mask of the holes"):
        run_suite(options)
    assert not (tmp_path / "run").exists()
