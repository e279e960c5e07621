"""Tests for the super-resolution task: the MATLAB-compatible ``imresize`` (against a
slow per-pixel port of MATLAB's algorithm and known values), the ``bicubic``
degradation (Set5 protocol) and the classical upscalers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degraded
from restorebench.core.refs import Ref
from restorebench.imaging import imresize, modcrop
from restorebench.tasks.superres import TASK
from restorebench.tasks.superres.baselines import BicubicUpscale, Bilinear, Lanczos, Nearest
from restorebench.tasks.superres.degradations import Bicubic
from tests.tasks.superres.reference_imresize import slow_imresize

UPSCALERS = [Nearest, Bilinear, BicubicUpscale, Lanczos]
SCALES = [1 / 2, 1 / 3, 1 / 4, 2, 3, 4]


def _random(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape)


# ---------------------------------------------------------------- imresize


@pytest.mark.parametrize("scale", SCALES, ids=lambda s: f"x{s:.3g}")
@pytest.mark.parametrize("shape", [(37, 53, 3), (37, 53)], ids=["rgb", "gray"])
def test_imresize_matches_the_slow_matlab_port(scale, shape):
    img = _random(shape)
    fast, slow = imresize(img, scale), slow_imresize(img, scale)
    assert fast.shape == slow.shape == (math.ceil(37 * scale), math.ceil(53 * scale)) + shape[2:]
    assert fast.dtype == np.float64
    assert np.max(np.abs(fast - slow)) <= 1e-5


@pytest.mark.parametrize("output_shape", [(20, 100), (74, 18), (12, 53)])
def test_imresize_output_shape_with_unequal_scales_matches_the_slow_port(output_shape):
    img = _random((37, 53, 3), seed=1)
    fast = imresize(img, output_shape=output_shape)
    assert fast.shape == output_shape + (3,)
    assert np.max(np.abs(fast - slow_imresize(img, output_shape=output_shape))) <= 1e-5


def test_imresize_without_antialiasing_matches_the_slow_port():
    img = _random((37, 53, 3), seed=2)
    fast = imresize(img, 1 / 3, antialiasing=False)
    assert np.max(np.abs(fast - slow_imresize(img, 1 / 3, antialiasing=False))) <= 1e-5
    assert np.max(np.abs(fast - imresize(img, 1 / 3))) > 1  # antialiasing does change the result


@settings(max_examples=15, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), scale=st.sampled_from([0.3, 0.45, 0.5, 0.77, 1.0, 1.5, 2.0, 2.6]))
def test_imresize_matches_the_slow_port_on_any_small_size(h, w, scale):
    img = _random((h, w, 2), seed=h * 13 + w)
    assert np.max(np.abs(imresize(img, scale) - slow_imresize(img, scale))) <= 1e-5


def test_x2_upscale_of_an_impulse_gives_the_cubic_weights():
    row = np.zeros((1, 9))
    row[0, 4] = 1.0  # 1-based column 5
    out = imresize(row, 2)
    expected = np.zeros(18)
    # u = x/2 + 1/4: output columns 6..13 sit at distances 1.75, 1.25, 0.75, 0.25 (twice) from it
    expected[5:13] = [-0.0234375, -0.0703125, 0.2265625, 0.8671875, 0.8671875, 0.2265625, -0.0703125, -0.0234375]
    np.testing.assert_array_equal(out, np.stack([expected, expected]))  # 1 row -> 2 identical rows


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_constant_image_survives_up_then_down_exactly(scale):
    img = np.full((13, 17, 3), 0.3719)
    up = imresize(img, scale)
    down = imresize(up, 1 / scale)
    assert down.shape == img.shape
    assert np.max(np.abs(up - 0.3719)) <= 1e-12
    assert np.max(np.abs(down - 0.3719)) <= 1e-12


def test_half_downscale_of_a_linear_ramp_is_the_analytic_ramp():
    h, w = 40, 64
    i, j = np.mgrid[1 : h + 1, 1 : w + 1].astype(np.float64)  # 1-based, as in MATLAB
    ramp = 0.75 * i - 0.5 * j + 3.0
    out = imresize(ramp, 0.5)
    assert out.shape == (20, 32)
    # output pixel y samples the input at u = 2y - 0.5; a symmetric, normalised kernel
    # reproduces a linear function exactly wherever its 8-pixel support stays inside
    y, x = np.mgrid[1:21, 1:33].astype(np.float64)
    expected = 0.75 * (2 * y - 0.5) - 0.5 * (2 * x - 0.5) + 3.0
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(out[inner], expected[inner], rtol=0, atol=1e-12)
    assert np.max(np.abs(out - expected)) > 1e-3  # the mirrored border does bend it


def test_imresize_does_not_clip_or_round_and_leaves_its_input_alone():
    img = _random((9, 11, 3)) - 100  # negative values and above 1
    before = img.copy()
    out = imresize(img, 2)
    np.testing.assert_array_equal(img, before)
    assert out.min() < 0 and out.max() > 1 and not np.allclose(out, np.round(out))
    assert imresize(img.astype(np.float32), 2).dtype == np.float64


def test_imresize_rejects_bad_arguments():
    img = np.zeros((8, 8))
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img)
    with pytest.raises(ValueError, match="exactly one"):
        imresize(img, 2, output_shape=(16, 16))
    with pytest.raises(ValueError, match="positive"):
        imresize(img, -2)
    with pytest.raises(ValueError, match="float"):
        imresize(np.zeros((8, 8), np.uint8), 2)


def test_modcrop_keeps_the_top_left_multiple_of_the_scale():
    img = _random((101, 77, 3))
    out = modcrop(img, 3)
    assert out.shape == (99, 75, 3)
    np.testing.assert_array_equal(out, img[:99, :75])
    assert modcrop(img[..., 0], 4).shape == (100, 76)
    assert modcrop(img, 1).shape == img.shape


# ---------------------------------------------------------------- the bicubic degradation


def _smooth(h: int = 96, w: int = 96, channels: int = 3) -> np.ndarray:
    """A smooth test image: low-frequency sinusoids in [0.15, 0.85]."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    planes = [0.5 + 0.35 * np.sin(2 * np.pi * (x * (1 + c) / 2 + y * 0.7) + c) for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.float32)


def _degrade(img: np.ndarray, scale: int) -> Degraded:
    return Bicubic(Bicubic.Params(scale=scale)).apply(img, np.random.default_rng(0))


@pytest.mark.parametrize("scale, hr, lr", [(2, (100, 76), (50, 38)), (3, (99, 75), (33, 25)), (4, (100, 76), (25, 19))])
def test_bicubic_degradation_sizes_reference_and_protocol(scale, hr, lr):
    img = np.random.default_rng(3).random((101, 77, 3)).astype(np.float32)
    out = _degrade(img, scale)
    assert out.image.shape == lr + (3,) and out.image.dtype == np.float32
    assert out.reference.shape == hr + (3,) and out.reference.dtype == np.float32
    np.testing.assert_array_equal(out.reference, modcrop(img, scale))
    assert out.crop_border == scale and out.degradation == "bicubic" and out.params == {"scale": scale}
    # the LR image is exactly on the 8-bit grid: float32(k / 255)
    levels = np.round(out.image.astype(np.float64) * 255)
    assert levels.min() >= 0 and levels.max() <= 255
    np.testing.assert_array_equal(out.image, (levels / 255).astype(np.float32))
    # and it is MATLAB imresize of the cropped HR, rounded
    expected = np.round(np.clip(imresize(modcrop(img, scale), 1 / scale) * 255, 0, 255)) / 255
    np.testing.assert_array_equal(out.image, expected.astype(np.float32))


def test_bicubic_degradation_is_deterministic_and_handles_one_channel():
    img = _smooth(31, 29, channels=1)
    a = Bicubic(Bicubic.Params(scale=2)).apply(img, np.random.default_rng(0))
    b = Bicubic(Bicubic.Params(scale=2)).apply(img, np.random.default_rng(99))
    assert a.image.shape == (15, 14, 1) and a.reference.shape == (30, 28, 1)
    np.testing.assert_array_equal(a.image, b.image)


def test_bicubic_degradation_scale_from_a_reference():
    deg = Bicubic.from_ref(Ref("bicubic", {"scale": "3"}))
    assert deg.params.scale == 3 and isinstance(deg.params.scale, int)
    assert deg.ref == "bicubic?scale=3"


@pytest.mark.parametrize("bad", ["5", "1", "2.5", "x", 0])
def test_bicubic_degradation_rejects_a_bad_scale(bad):
    with pytest.raises(UserError) as info:
        Bicubic.from_ref(Ref("bicubic", {"scale": bad}))
    message = str(info.value)
    assert "scale" in message and "2, 3, 4" in message


def test_bicubic_degradation_requires_a_scale():
    with pytest.raises(UserError, match="scale"):
        Bicubic.from_ref(Ref("bicubic", {}))


# ---------------------------------------------------------------- the upscalers


@pytest.mark.parametrize("cls", UPSCALERS, ids=lambda c: c.name)
@pytest.mark.parametrize("channels", [1, 3])
def test_upscalers_return_the_hr_shape(cls, channels):
    item = _degrade(_smooth(37, 44, channels), 3)
    out = cls().restore([item])[0]
    assert out.shape == item.reference.shape == (36, 42, channels)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    assert cls.task == "superres" and cls.kind == "classical" and cls.uses_true_level and cls.description


@pytest.mark.parametrize("cls", UPSCALERS, ids=lambda c: c.name)
def test_upscalers_keep_a_constant_image(cls):
    item = Degraded(image=np.full((7, 9, 3), 0.4, np.float32), degradation="bicubic", params={"scale": 4})
    np.testing.assert_allclose(cls().restore_one(item), 0.4, atol=1e-6)


def _psnr(a: np.ndarray, b: np.ndarray, border: int) -> float:
    a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    q = np.round(np.clip(a.astype(np.float64), 0, 1) * 255) / 255
    return float(10 * np.log10(1.0 / np.mean((q - b.astype(np.float64)) ** 2)))


@pytest.mark.parametrize("scale", [2, 4])
def test_bicubic_beats_nearest_on_a_smooth_image(scale):
    item = _degrade(_smooth(), scale)
    scores = {cls.name: _psnr(cls().restore_one(item), item.reference, scale) for cls in UPSCALERS}
    assert scores["bicubic"] > scores["nearest"] + 3
    assert scores["bilinear"] > scores["nearest"] and scores["lanczos"] > scores["nearest"]


def test_bicubic_upscale_is_matlab_imresize_of_the_lr():
    item = _degrade(_smooth(50, 61), 3)
    out = BicubicUpscale().restore_one(item)
    np.testing.assert_array_equal(out, imresize(item.image, 3).astype(np.float32))


def test_upscalers_need_a_scale():
    item = Degraded(image=np.zeros((4, 4, 3), np.float32), degradation="gaussian", params={"sigma": 25})
    with pytest.raises(ValueError, match="scale"):
        Nearest().restore_one(item)


def test_task_metadata_and_suite():
    assert TASK.name == "superres" and TASK.metrics == ("psnr_y", "ssim_y", "psnr_y_matlab", "psnr", "ssim")
    assert Path(TASK.suite).is_file() and Path(TASK.suite).parent.name == "superres"
