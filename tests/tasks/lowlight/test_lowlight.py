"""Tests for the low-light task: DNG writing and rawpy round trips, Bayer packing, the
amplified render, the synthetic SID pairs and their noise, the ``sid:`` list-file source
(built here as a small SID-style tree of DNGs, good and bad lines), the degradations and
the classical baselines. Nothing here needs ../shared (the training data) or a download."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from restorebench import ImageLoadError, UserError
from restorebench.core.build import build_source
from restorebench.core.interfaces import Degraded
from restorebench.score.metrics import psnr
from restorebench.tasks.lowlight.baselines import (
    Camera,
    CameraBM3D,
    CameraGamma,
    CameraHistEq,
    CameraNLMeans,
    Gamma,
    HistEq,
)
from restorebench.tasks.lowlight.degradations import LowLight, Sid, Underexpose
from restorebench.tasks.lowlight.raw import encode_dng, pack_bayer, read_raw, render, write_dng
from restorebench.tasks.lowlight.synthetic import BLACK, WHITE, make_pair, sample_noise

# value of each CFA colour in the test mosaics: R, G (on R's row), B, G2 (on B's row)
COLOUR_VALUES = {"R": 1000, "G": 2000, "B": 3000, "G2": 4000}
LAYOUTS = ["RGGB", "BGGR", "GRBG", "GBRG"]


def _smooth_image(h: int = 64, w: int = 96) -> np.ndarray:
    """A smooth colourful image in [0.05, 0.95] (no saturation, no black)."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    return np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.7 - 0.5 * x * y], axis=-1).astype(np.float32)


def _colour_mosaic(layout: str, h: int = 32, w: int = 48) -> np.ndarray:
    """Each CFA position holds its colour's constant; the green on B's row is G2."""
    b_row = layout.index("B") // 2
    m = np.zeros((h, w), np.uint16)
    for pos, letter in enumerate(layout):
        dy, dx = divmod(pos, 2)
        name = "G2" if letter == "G" and dy == b_row else letter
        m[dy::2, dx::2] = COLOUR_VALUES[name]
    return m


# ---------------------------------------------------------------- DNG and packing


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dng_round_trip_is_bit_exact(tmp_path, layout):
    mosaic = np.random.default_rng(1).integers(0, WHITE + 1, (40, 64)).astype(np.uint16)
    neutral = (1 / 2.1, 1.0, 1 / 1.7)
    write_dng(tmp_path / "x.dng", mosaic, cfa=layout, black_level=BLACK, white_level=WHITE, as_shot_neutral=neutral)
    raw = read_raw(tmp_path / "x.dng")
    assert raw.mosaic.dtype == np.uint16 and np.array_equal(raw.mosaic, mosaic)
    assert raw.black_level == (BLACK,) * 4 and raw.white_level == WHITE
    assert raw.cfa_name == layout
    np.testing.assert_allclose(raw.wb, (2.1, 1.0, 1.7, 1.0), rtol=1e-5)  # camera WB = 1 / AsShotNeutral
    assert render(tmp_path / "x.dng").shape == (40, 64, 3)  # LibRaw renders a DNG at the mosaic's size


def test_dng_per_position_black_levels_follow_the_pattern():
    raw = read_raw(encode_dng(_colour_mosaic("BGGR"), cfa="BGGR", black_level=(500, 510, 520, 530)))
    # BGGR positions: B=500, G2=510 (B's row), G=520, R=530; black_level is indexed R, G, B, G2
    assert raw.black_level == (530, 520, 500, 510)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pack_bayer_orders_channels_r_g_b_g2(layout):
    raw = read_raw(encode_dng(_colour_mosaic(layout), cfa=layout, black_level=BLACK, white_level=WHITE))
    packed = pack_bayer(raw)
    assert packed.shape == (16, 24, 4) and packed.dtype == np.float32
    for channel, name in enumerate(("R", "G", "B", "G2")):
        expected = (COLOUR_VALUES[name] - BLACK) / (WHITE - BLACK)
        np.testing.assert_allclose(packed[..., channel], expected, rtol=1e-6)


def test_rggb_packing_is_the_sid_order():
    mosaic = np.random.default_rng(2).integers(BLACK, WHITE + 1, (32, 32)).astype(np.uint16)
    packed = pack_bayer(read_raw(encode_dng(mosaic)))
    sid = [mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 1::2], mosaic[1::2, 0::2]]  # SID's pack_raw
    for c, plane in enumerate(sid):
        np.testing.assert_allclose(packed[..., c], (plane.astype(np.float32) - BLACK) / (WHITE - BLACK), rtol=1e-6)


def test_corrupt_raw_file_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.ARW"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ImageLoadError, match="broken.ARW"):
        read_raw(path)
    with pytest.raises(ImageLoadError, match="broken.ARW"):
        render(path, ratio=100)


# ---------------------------------------------------------------- rendering and the synthetic pairs


def test_render_with_ratio_matches_the_long_exposure():
    pair = make_pair(_smooth_image(), np.random.default_rng(4), ratio=100, noise=False)
    long, short = render(pair.long_dng), render(pair.short_dng, ratio=100)
    dark = render(pair.short_dng)
    # The noiseless short exposure is round(x / 100) DN: amplified, each pixel is off by at
    # most 50 DN of 15871 (0.3 % of the range) with zero mean; after the tone curve and
    # demosaicing the means agree to ~1e-3. A tolerance of 0.005 (1.3 8-bit levels)
    # is 50 times smaller than the gap to the unamplified render.
    assert abs(short.mean() - long.mean()) < 0.005
    assert long.mean() - dark.mean() > 0.25
    assert psnr(short, long, data_range=1.0) > 30


def test_ratio_one_on_the_long_exposure_is_the_reference():
    clean = _smooth_image()
    out = LowLight(LowLight.Params(ratio=100)).apply(clean, np.random.default_rng(5))
    pair = make_pair(clean, np.random.default_rng(5), ratio=100)  # the draws apply() made
    assert np.array_equal(render(pair.long_dng, ratio=1.0), out.reference)
    assert out.reference.shape == (64, 96, 3) and out.image.shape == (32, 48, 4)
    assert np.abs(out.reference - clean).mean() < 0.06  # LibRaw's BT.709 curve vs the sRGB EOTF


def test_synthetic_pair_is_deterministic():
    a = make_pair(_smooth_image(), np.random.default_rng(6), ratio=250)
    b = make_pair(_smooth_image(), np.random.default_rng(6), ratio=250)
    c = make_pair(_smooth_image(), np.random.default_rng(7), ratio=250)
    assert a.long_dng == b.long_dng and a.short_dng == b.short_dng
    assert a.short_dng != c.short_dng
    d1 = LowLight(LowLight.Params(ratio=300)).apply(_smooth_image(), np.random.default_rng(8))
    d2 = LowLight(LowLight.Params(ratio=300)).apply(_smooth_image(), np.random.default_rng(8))
    assert d1.extras["raw_file"] == d2.extras["raw_file"]
    assert np.array_equal(d1.image, d2.image) and np.array_equal(d1.reference, d2.reference)


def test_short_exposure_noise_follows_the_poisson_gaussian_model():
    clean = np.full((256, 256, 3), 0.6, np.float32)  # a flat patch: each CFA channel is constant
    pair = make_pair(clean, np.random.default_rng(9), ratio=100, iso=1600)
    level = pair.noise
    assert level.shot == pytest.approx(1.6e-3)
    span = WHITE - BLACK
    for dy, dx in ((0, 0), (0, 1), (1, 1)):
        signal = pair.long[dy::2, dx::2].astype(np.float64).mean() - BLACK  # noiseless long, DN
        short = pair.short[dy::2, dx::2].astype(np.float64)
        mean = signal / 100
        assert short.mean() - BLACK == pytest.approx(mean, rel=0.03)
        # variance in DN^2: shot gain * mean + read variance + rounding (1/12)
        expected = level.shot * span * mean + level.read * span**2 + 1 / 12
        assert short.var() == pytest.approx(expected, rel=0.1)


def test_sampled_noise_levels_lie_in_the_documented_ranges():
    levels = [sample_noise(np.random.default_rng(s)) for s in range(200)]
    shots = np.array([lv.shot for lv in levels])
    assert shots.min() >= 1e-4 and shots.max() <= 1.2e-2
    assert all(100 <= lv.iso <= 12000 for lv in levels)
    residual = np.log([lv.read for lv in levels]) - (2.18 * np.log(shots) + 1.20)
    assert abs(residual.mean()) < 0.1 and 0.2 < residual.std() < 0.32


def test_lowlight_input_layout():
    out = LowLight(LowLight.Params(ratio=100)).apply(_smooth_image(65, 97)[..., :1], np.random.default_rng(10))
    assert out.degradation == "lowlight" and out.params == {"ratio": 100.0}
    assert out.image.shape == (32, 48, 4) and out.reference.shape == (64, 96, 3)  # even crop, gray -> RGB
    assert out.extras["cfa"] == "RGGB" and out.extras["white_level"] == WHITE
    assert out.extras["black_level"] == (BLACK,) * 4
    assert out.extras["raw_file"][:4] in (b"II*\x00", b"MM\x00*")
    assert out.image.mean() < 0.01  # not amplified


def test_underexpose_is_a_darker_8bit_image():
    clean = _smooth_image()
    out = Underexpose(Underexpose.Params(ratio=8)).apply(clean, np.random.default_rng(0))
    assert out.image.shape == clean.shape and out.reference is None
    assert np.array_equal(out.image * 255, np.round(out.image * 255))
    assert out.image.mean() < 0.5 * clean.mean()
    noisy = Underexpose(Underexpose.Params(ratio=8, noise=5)).apply(clean, np.random.default_rng(0))
    assert 2 < np.std((noisy.image - out.image) * 255) < 8


# ---------------------------------------------------------------- a SID-style tree


def _write_pair(root: Path, short: str, long: str, seed: int, ratio: float, size: tuple[int, int] = (64, 96)) -> None:
    pair = make_pair(_smooth_image(*size), np.random.default_rng(seed), ratio=ratio, iso=200)
    for name, data in ((short, pair.short_dng), (long, pair.long_dng)):
        (root / "Sony" / name).write_bytes(data)


@pytest.fixture
def sid_tree(tmp_path) -> tuple[Path, Path]:
    root = tmp_path / "SID"
    (root / "Sony" / "short").mkdir(parents=True)
    (root / "Sony" / "long").mkdir()
    _write_pair(root, "short/10003_00_0.04s.dng", "long/10003_00_10s.dng", 0, 250)
    pair = make_pair(_smooth_image(), np.random.default_rng(0), ratio=300, iso=200)  # same long, shorter
    (root / "Sony/short/10003_00_0.033s.dng").write_bytes(pair.short_dng)
    _write_pair(root, "short/20005_00_0.1s.dng", "long/20005_00_10s.dng", 1, 100)
    _write_pair(root, "short/10008_00_0.1s.dng", "long/10008_00_10s.dng", 2, 100)
    small = make_pair(_smooth_image(32, 48), np.random.default_rng(3), ratio=100)
    (root / "Sony/short/10008_00_0.1s.dng").write_bytes(small.short_dng)  # size mismatch
    (root / "Sony/short/10009_00_0.1s.ARW").write_bytes(np.random.default_rng(4).bytes(5000))  # corrupt
    lines = [
        "./Sony/short/10003_00_0.04s.dng ./Sony/long/10003_00_10s.dng ISO200 F9",  # 1
        "./Sony/short/10003_00_0.033s.dng ./Sony/long/10003_00_10s.dng ISO200 F9",  # 2: ratio 303 -> 300
        "./Sony/short/20005_00_0.1s.dng ./Sony/long/20005_00_10s.dng ISO200 F8",  # 3: validation
        "./Sony/short/10006_00_0.1s.dng ./Sony/long/10003_00_10s.dng ISO200 F9",  # 4: missing file
        "",
        "./Sony/short/10003_00_abc.dng ./Sony/long/10003_00_10s.dng ISO200 F9",  # 6: unparsable exposure
        "./Sony/short/10008_00_0.1s.dng ./Sony/long/10008_00_10s.dng ISO200 F9",  # 7: size mismatch
        "./Sony/short/10009_00_0.1s.ARW ./Sony/long/10003_00_10s.dng ISO200 F9",  # 8: corrupt raw
    ]
    list_file = root / "Sony_list.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return root, list_file


def test_sid_source_lists_the_split_with_ratios(sid_tree):
    root, list_file = sid_tree
    test = build_source(f"sid:{list_file}?root={root}")
    keys = [r.key for r in test.list_images()]
    assert keys == [
        "10003_00_0.04s",
        "10003_00_0.033s",
        "10006_00_0.1s",
        "10003_00_abc",
        "10008_00_0.1s",
        "10009_00_0.1s",
    ]
    first, second = test.list_images()[:2]
    assert test.pair(first).ratio == 250 and test.pair(second).ratio == 300
    val = build_source(f"sid:{list_file}?root={root}&split=val").list_images()
    assert [r.key for r in val] == ["20005_00_0.1s"]
    with pytest.raises(UserError, match="no pair of split 'train': the list holds 6 test, 1 val pair"):
        build_source(f"sid:{list_file}?split=train").list_images()
    exclude = root / "exclude.txt"
    exclude.write_text("# misaligned\n10003\n")
    kept = build_source(f"sid:{list_file}?exclude={exclude}").list_images()
    assert [r.key for r in kept] == ["10006_00_0.1s", "10008_00_0.1s", "10009_00_0.1s"]  # scene 10003 left out
    assert len({r.content_hash for r in test.list_images()}) == 6  # a missing file hashes its path


def test_sid_source_loads_pairs_and_names_bad_lines(sid_tree):
    root, list_file = sid_tree
    source = build_source(f"sid:{list_file}?split=all")
    refs = {r.key: r for r in source.list_images()}
    long = source.load(refs["10003_00_0.04s"])
    assert long.shape == (64, 96, 3) and long.dtype == np.float32
    assert np.array_equal(long, render(root / "Sony/long/10003_00_10s.dng"))
    assert source.load_short(refs["10003_00_0.04s"]).mosaic.shape == (64, 96)
    for key, line, words in [
        ("10006_00_0.1s", 4, "missing file .*10006_00_0.1s.dng"),
        ("10003_00_abc", 6, "exposure time .*10003_00_abc.dng"),
        ("10008_00_0.1s", 7, "10008_00_0.1s.dng is 32x48 but .* is 64x96"),
        ("10009_00_0.1s", 8, "cannot decode raw file .*10009_00_0.1s.ARW"),
    ]:
        with pytest.raises(ImageLoadError, match=f"line {line} .*{words}"):
            source.load(refs[key])


def test_sid_degradation_needs_a_sid_source(sid_tree):
    root, list_file = sid_tree
    with pytest.raises(ValueError, match="needs a sid: dataset"):
        Sid().apply(_smooth_image(), np.random.default_rng(0))
    other = build_source("synthetic:deadleaves?n=1&size=32")
    with pytest.raises(ValueError, match="needs a sid: dataset"):
        Sid().degrade(other, other.list_images()[0], _smooth_image(), np.random.default_rng(0))
    source = build_source(f"sid:{list_file}")
    ref = source.list_images()[1]
    out = Sid().degrade(source, ref, source.load(ref), np.random.default_rng(0))
    assert out.degradation == "sid" and out.params == {"ratio": 300.0}
    assert out.image.shape == (32, 48, 4) and out.reference.shape == (64, 96, 3)
    assert out.extras["raw_file"] == (root / "Sony/short/10003_00_0.033s.dng").read_bytes()


def test_sid_run_end_to_end_records_bad_lines_as_failed_units(sid_tree, tmp_path):
    from restorebench.run.pipeline import RunOptions, run_suite

    root, list_file = sid_tree
    summary = run_suite(
        RunOptions(
            tasks=("lowlight",),
            datasets=(f"sid:{list_file}?root={root}&split=all",),
            degradations=("sid",),
            methods=("lowlight/camera",),
            executor="local",
            tracking=False,
            out=tmp_path / "run",
        )
    )
    assert summary.units == 7 and summary.computed == 3 and summary.failed == 4
    frame = summary.results
    ok = frame[(frame["status"] == "ok") & (frame["metric"] == "psnr")]
    assert sorted(ok["image"]) == ["10003_00_0.033s", "10003_00_0.04s", "20005_00_0.1s"]
    assert (ok["value"] > 10).all()  # ISO 200 at ratios 100-300 is very noisy: ~13-15 dB
    errors = " | ".join(summary.errors)
    for line, name in [
        (4, "10006_00_0.1s.dng"),
        (6, "10003_00_abc.dng"),
        (7, "10008_00_0.1s.dng"),
        (8, "10009_00_0.1s.ARW"),
    ]:
        assert f"line {line} " in errors and name in errors


def test_the_sid_card_reads_a_copy_through_the_sid_source(sid_tree, tmp_path):
    from restorebench.run.pipeline import RunOptions, run_suite

    root, list_file = sid_tree
    with pytest.raises(UserError, match="Sony_test_list.txt: missing"):
        build_source(f"card:sid-sony-test?root={root}").list_images()
    list_file.rename(root / "Sony_test_list.txt")
    card = build_source(f"card:sid-sony-test?root={root}")
    assert card.paired is False and len(card.list_images()) == 6  # the test split of the list
    assert card.check == "verified (names of 1 files)"
    summary = run_suite(
        RunOptions(
            tasks=("lowlight",),
            datasets=(f"card:sid-sony-test?root={root}",),
            degradations=("sid",),
            methods=("lowlight/camera",),
            executor="local",
            tracking=False,
            out=tmp_path / "run",
        )
    )
    assert summary.units == 6 and summary.computed == 2 and summary.failed == 4
    ok = summary.results[summary.results["status"] == "ok"]
    assert set(ok["dataset"]) == {f"card:sid-sony-test?root={root}"}


# ---------------------------------------------------------------- baselines


@pytest.fixture(scope="module")
def raw_item() -> Degraded:
    return LowLight(LowLight.Params(ratio=100, iso=400)).apply(_smooth_image(64, 64), np.random.default_rng(11))


def test_camera_beats_the_unamplified_render(raw_item):
    dark = render(raw_item.extras["raw_file"])
    out = Camera().restore_one(raw_item)
    assert out.shape == raw_item.reference.shape
    assert psnr(out, raw_item.reference, data_range=1.0) > psnr(dark, raw_item.reference, data_range=1.0) + 5


@pytest.mark.parametrize("cls", [CameraHistEq, CameraGamma, CameraNLMeans])
def test_camera_variants_give_reference_shaped_images(raw_item, cls):
    out = cls().restore_one(raw_item)
    assert out.shape == raw_item.reference.shape and out.dtype == np.float32
    assert np.isfinite(out).all() and psnr(np.clip(out, 0, 1), raw_item.reference, data_range=1.0) > 10


def test_camera_bm3d_denoises_or_explains(raw_item):
    method = CameraBM3D()
    try:
        method.setup()
    except Exception as exc:
        assert "bm3d" in str(exc)
        return
    out = method.restore_one(raw_item)
    assert out.shape == raw_item.reference.shape
    camera = psnr(Camera().restore_one(raw_item), raw_item.reference, data_range=1.0)
    weak = CameraBM3D(CameraBM3D.Params(sigma_factor=1.0)).restore_one(raw_item)
    # the estimated sigma is too low for demosaiced noise: the default factor denoises more, and better
    assert psnr(out, raw_item.reference, data_range=1.0) > psnr(weak, raw_item.reference, data_range=1.0) > camera


def test_methods_reject_the_wrong_kind_of_input(raw_item):
    dark = Underexpose(Underexpose.Params(ratio=8)).apply(_smooth_image(), np.random.default_rng(0))
    with pytest.raises(ValueError, match="raw inputs.*lowlight/gamma"):
        Camera().restore_one(dark)
    no_file = dataclasses.replace(raw_item, extras={k: v for k, v in raw_item.extras.items() if k != "raw_file"})
    with pytest.raises(ValueError, match=r"needs extras\['raw_file'\] of its 'lowlight' input"):
        Camera().restore_one(no_file)
    with pytest.raises(ValueError, match=r"needs params\['ratio'\] and extras\['raw_file'\]"):
        Camera().restore_one(dataclasses.replace(no_file, params={}))
    with pytest.raises(ValueError, match="sRGB inputs"):
        Gamma().restore_one(raw_item)
    for method in (Gamma(), HistEq()):
        out = method.restore_one(dark)
        assert out.shape == dark.image.shape
        assert psnr(out, _smooth_image(), data_range=1.0) > psnr(dark.image, _smooth_image(), data_range=1.0)


def test_task_and_suite_are_registered():
    from restorebench.core.registry import DEGRADATIONS, SOURCES, TASKS
    from restorebench.run.plan import load_suite

    assert TASKS.get("lowlight").metrics == ("psnr", "ssim")
    assert {"lowlight", "sid", "underexpose"} <= set(DEGRADATIONS.names()) and "sid" in SOURCES
    suite, _ = load_suite("lowlight")
    assert [len(block.methods) for block in suite.tasks] == [5, 3]
    assert "lowlight/sid_unet" in suite.tasks[0].methods and "lowlight/deepupe" in suite.tasks[1].methods
