"""Tests for restorebench.score.metrics: PSNR / SSIM against hand-computed values, an
independent float64 reference implementation and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import convolve2d
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restorebench.score.metrics import crop_border, psnr, quantize_8bit, rgb_to_y, ssim

Y_COEFFS = (65.481, 128.553, 24.966)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _noisy_pair(shape, sigma=0.05, seed=0):
    rng = _rng(seed)
    ref = rng.random(shape)
    return np.clip(ref + sigma * rng.standard_normal(shape), 0.0, 1.0), ref


def _y_by_hand(img: np.ndarray) -> np.ndarray:
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return 16.0 + Y_COEFFS[0] * r + Y_COEFFS[1] * g + Y_COEFFS[2] * b


def _ssim_reference(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Straightforward Wang et al. 2004 SSIM: 11x11 Gaussian (sigma 1.5), 'valid' mode."""
    ax = np.arange(11) - 5.0
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    win = np.outer(g, g) / np.outer(g, g).sum()  # symmetric, so convolution == correlation
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x3 = x[..., None] if x.ndim == 2 else x
    y3 = y[..., None] if y.ndim == 2 else y
    scores = []
    for c in range(x3.shape[2]):
        a, b = x3[:, :, c].astype(np.float64), y3[:, :, c].astype(np.float64)
        f = lambda z: convolve2d(z, win, mode="valid")  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cab = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        smap = ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
        scores.append(smap.mean())
    return float(np.mean(scores))


# --------------------------------------------------------------------------- PSNR
@pytest.mark.parametrize("d", [0.5 / 255, 0.01, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(32, 40), (32, 40, 1), (32, 40, 3)])
def test_psnr_constant_offset_matches_analytic(d, shape):
    ref = _rng(1).uniform(0.1, 0.6, size=shape)
    assert psnr(ref + d, ref) == pytest.approx(20 * math.log10(1.0 / d), abs=1e-4)
    assert psnr(ref - d, ref) == pytest.approx(20 * math.log10(1.0 / d), abs=1e-4)


def test_psnr_crop_border_ignores_border_errors():
    ref = np.full((20, 24, 3), 0.5)
    out = ref + 0.02
    out[:3], out[-3:], out[:, :3], out[:, -3:] = 0.0, 1.0, 0.0, 1.0  # big errors in a 3-px frame
    assert psnr(out, ref, crop_border=3) == pytest.approx(20 * math.log10(1 / 0.02), abs=1e-4)
    # Uncropped: MSE mixes the interior (0.02^2) and the frame (0.5^2) pixels.
    n_in, n_all = 14 * 18, 20 * 24
    mse = (n_in * 0.02**2 + (n_all - n_in) * 0.5**2) / n_all
    assert psnr(out, ref) == pytest.approx(10 * math.log10(1 / mse), abs=1e-4)


def test_psnr_y_channel_rgb_by_hand():
    out, ref = _noisy_pair((30, 34, 3), sigma=0.05, seed=2)
    ya, yb = _y_by_hand(out[2:-2, 2:-2]), _y_by_hand(ref[2:-2, 2:-2])
    expected = 10 * math.log10(255.0**2 / np.mean((ya - yb) ** 2))
    assert psnr(out, ref, y_channel=True, crop_border=2) == pytest.approx(expected, abs=1e-4)
    # Y differs from the RGB average, so the scores must differ too.
    assert abs(psnr(out, ref, crop_border=2) - expected) > 0.1


@pytest.mark.parametrize("shape", [(30, 34), (30, 34, 1)])
def test_psnr_y_channel_gray_scores_own_values(shape):
    out, ref = _noisy_pair(shape, sigma=0.03, seed=3)
    expected = 10 * math.log10(255.0**2 / np.mean((255 * out - 255 * ref) ** 2))
    assert psnr(out, ref, y_channel=True) == pytest.approx(expected, abs=1e-4)
    assert psnr(out, ref) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("shape", [(64, 48), (64, 48, 3), (17, 23, 1)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_psnr_matches_skimage(shape, seed):
    out, ref = _noisy_pair(shape, sigma=0.1, seed=seed)
    assert psnr(out, ref) == pytest.approx(peak_signal_noise_ratio(ref, out, data_range=1.0), abs=1e-9)


def test_psnr_refuses_nan_and_inf_found_through_its_mse():
    ok = np.full((8, 8, 3), 0.5)
    for value in (np.nan, np.inf, -np.inf):
        bad = ok.copy()
        bad[3, 4, 1] = value
        for y in (False, True):
            with pytest.raises(ValueError, match="NaN or inf"):
                psnr(bad, bad, y_channel=y)  # inf - inf is NaN: identical images do not pass as inf dB
            with pytest.raises(ValueError, match="NaN or inf"):
                psnr(ok.astype(np.float32), bad.astype(np.float32), y_channel=y)


def test_psnr_identical_is_inf_and_data_range_scales():
    out, ref = _noisy_pair((16, 16, 3), seed=4)
    assert psnr(ref, ref) == float("inf")
    assert psnr(out * 255, ref * 255, data_range=255.0) == pytest.approx(psnr(out, ref), abs=1e-9)


def test_psnr_on_quantized_float32_input():
    out, ref = _noisy_pair((20, 20, 3), seed=5)
    q = quantize_8bit(out)
    expected = 10 * math.log10(1.0 / np.mean((q.astype(np.float64) - ref) ** 2))
    assert psnr(q, ref) == pytest.approx(expected, abs=1e-6)


# --------------------------------------------------------------------------- SSIM
@pytest.mark.parametrize("shape", [(40, 50), (40, 50, 1), (40, 50, 3), (11, 11), (11, 15, 3)])
@pytest.mark.parametrize("sigma", [0.02, 0.2])
def test_ssim_matches_float64_reference(shape, sigma):
    out, ref = _noisy_pair(shape, sigma=sigma, seed=6)
    assert ssim(out, ref) == pytest.approx(_ssim_reference(out, ref, 1.0), abs=1e-6)


def test_ssim_y_channel_and_crop_match_reference():
    out, ref = _noisy_pair((48, 52, 3), sigma=0.08, seed=7)
    expected = _ssim_reference(_y_by_hand(out[4:-4, 4:-4]), _y_by_hand(ref[4:-4, 4:-4]), 255.0)
    assert ssim(out, ref, y_channel=True, crop_border=4) == pytest.approx(expected, abs=1e-6)
    assert ssim(out, ref, crop_border=4) == pytest.approx(
        _ssim_reference(out[4:-4, 4:-4], ref[4:-4, 4:-4], 1.0), abs=1e-6
    )


@pytest.mark.parametrize("shape", [(64, 64), (64, 80, 3), (33, 45, 3)])
@pytest.mark.parametrize("sigma", [0.03, 0.15])
def test_ssim_matches_skimage(shape, sigma):
    # skimage (gaussian_weights, sigma=1.5) uses truncate=3.5 -> an 11-tap normalised
    # Gaussian, filters the whole image with 'reflect' padding and then drops
    # (win_size - 1) // 2 = 5 px per side before the mean. Those remaining pixels are
    # exactly the ones whose window lies inside the image, where padding plays no role,
    # so the two conventions coincide; only float64 summation order differs (~1e-16).
    out, ref = _noisy_pair(shape, sigma=sigma, seed=8)
    expected = structural_similarity(
        ref,
        out,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        channel_axis=-1 if len(shape) == 3 else None,
    )
    assert ssim(out, ref) == pytest.approx(expected, abs=1e-10)  # observed <= 2e-16


@pytest.mark.parametrize("shape", [(32, 32), (32, 32, 3)])
def test_ssim_identity_is_one(shape):
    img = _rng(9).random(shape)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, y_channel=len(shape) == 3) == pytest.approx(1.0, abs=1e-12)


def test_ssim_decreases_with_noise():
    scores = [ssim(*_noisy_pair((64, 64, 3), sigma=s, seed=10)) for s in (0.01, 0.05, 0.1, 0.2)]
    assert all(a > b for a, b in zip(scores, scores[1:])), scores
    assert scores[0] < 1.0 and scores[-1] > 0.0


def test_ssim_invariances():
    out, ref = _noisy_pair((40, 44, 3), sigma=0.1, seed=11)
    base = ssim(out, ref)
    assert ssim(ref, out) == pytest.approx(base, abs=1e-12)  # symmetric
    perm = [2, 0, 1]
    assert ssim(out[..., perm], ref[..., perm]) == pytest.approx(base, abs=1e-12)
    assert ssim(out * 255, ref * 255, data_range=255.0) == pytest.approx(base, abs=1e-9)
    assert ssim(out[..., :1], ref[..., :1]) == pytest.approx(ssim(out[..., 0], ref[..., 0]))
    # float32 input of the same values gives the float64 result (computed in float64)
    o32, r32 = out.astype(np.float32), ref.astype(np.float32)
    assert ssim(o32, r32) == pytest.approx(_ssim_reference(o32, r32, 1.0), abs=1e-6)
    # gray image with y_channel: values * 255 with R = 255 -> same as plain SSIM
    assert ssim(out[..., 0], ref[..., 0], y_channel=True) == pytest.approx(ssim(out[..., 0], ref[..., 0]), abs=1e-9)


# --------------------------------------------------------------- helpers
def test_rgb_to_y_values():
    assert np.allclose(rgb_to_y(np.ones((2, 3, 3))), 235.0, atol=1e-9)
    assert np.allclose(rgb_to_y(np.zeros((2, 3, 3))), 16.0, atol=0)
    red = np.zeros((1, 1, 3))
    red[..., 0] = 1.0
    assert rgb_to_y(red)[0, 0] == pytest.approx(16.0 + 65.481)
    img = _rng(12).random((5, 6, 3))
    y = rgb_to_y(img)
    assert y.shape == (5, 6) and y.dtype == np.float64
    np.testing.assert_allclose(y, _y_by_hand(img), rtol=0, atol=1e-12)
    assert not np.allclose(y, np.round(y))  # not rounded (BasicSR convention)
    gray = _rng(13).random((5, 6))
    np.testing.assert_allclose(rgb_to_y(gray), gray * 255, atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(gray[..., None]), gray * 255, atol=1e-12)


def test_quantize_8bit_rounds_and_clips():
    x = np.array([[-0.2, 0.0, 0.2, 0.101], [0.5, 0.998, 1.0, 1.7]])
    q = quantize_8bit(x)
    expected = np.array([[0, 0, 51, 26], [128, 254, 255, 255]]) / 255.0  # 0.5*255 = 127.5 -> 128
    assert q.dtype == np.float32 and q.shape == x.shape
    np.testing.assert_allclose(q, expected.astype(np.float32), atol=0)
    img = _rng(14).normal(0.5, 0.4, size=(8, 9, 3))
    q = quantize_8bit(img)
    assert q.min() >= 0.0 and q.max() <= 1.0
    k = q.astype(np.float64) * 255
    assert np.allclose(k, np.round(k), atol=1e-4)
    assert np.abs(q - np.clip(img, 0, 1)).max() <= 0.5 / 255 + 1e-6
    np.testing.assert_array_equal(quantize_8bit(q), q)  # idempotent


def test_crop_border():
    img = np.arange(6 * 7 * 3, dtype=np.float64).reshape(6, 7, 3)
    assert crop_border(img, 0) is img
    np.testing.assert_array_equal(crop_border(img, 2), img[2:4, 2:5])
    assert crop_border(img[..., 0], 1).shape == (4, 5)
    with pytest.raises(ValueError, match=">= 0"):
        crop_border(img, -1)
    with pytest.raises(ValueError, match="would leave nothing"):
        crop_border(img, 3)


# --------------------------------------------------------------- validation
def test_shape_mismatch_names_both_shapes():
    a, b = np.zeros((8, 8, 3)), np.zeros((8, 9, 3))
    for fn in (psnr, ssim):
        with pytest.raises(ValueError, match=r"\(8, 8, 3\).*\(8, 9, 3\)"):
            fn(a, b)


def test_ssim_too_small():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((10, 20)), np.zeros((10, 20)))
    with pytest.raises(ValueError, match="at least 11x11.*crop_border=3"):
        ssim(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), crop_border=3)


@pytest.mark.parametrize("fn", [psnr, ssim])
def test_invalid_inputs(fn):
    ok = np.zeros((16, 16, 3))
    with pytest.raises(ValueError, match=">= 0"):
        fn(ok, ok, crop_border=-1)
    with pytest.raises(ValueError, match="C in"):
        fn(np.zeros((16, 16, 2)), np.zeros((16, 16, 2)))
    with pytest.raises(ValueError, match="HxW"):
        fn(np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 16, 3)))
    bad = ok.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad, ok)
    with pytest.raises(TypeError, match="/ 255"):
        fn(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ValueError, match="data_range"):
        fn(ok, ok, data_range=0.0)
    with pytest.raises(ValueError, match="y_channel"):
        fn(ok, ok, data_range=255.0, y_channel=True)


# --------------------------------------------------------------- property
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), d1=st.floats(1e-3, 0.2), d2=st.floats(1e-3, 0.2), y_channel=st.booleans())
def test_psnr_symmetric_and_decreasing_in_offset(seed, d1, d2, y_channel):
    rng = _rng(seed)
    ref = rng.uniform(0.0, 0.7, size=(12, 13, 3))
    out = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1)
    assert psnr(out, ref, y_channel=y_channel) == pytest.approx(psnr(ref, out, y_channel=y_channel), abs=1e-12)
    lo, hi = sorted((d1, d2))
    if hi - lo > 1e-6:
        assert psnr(ref + lo, ref) > psnr(ref + hi, ref)


@pytest.mark.parametrize("strip_rows", [1, 7, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_ssim_in_strips_is_bit_identical(strip_rows, channels):
    """Large images are scored strip by strip (a 36 MP SSIM took ~13 GB); the value is the same float."""
    from restorebench.score.metrics import _ssim_map, _ssim_mean

    rng = np.random.default_rng(channels)
    a = rng.random((131, 97, channels)).squeeze()
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    whole = _ssim_map(a, b, 1.0)
    assert _ssim_mean(a, b, 1.0, strip_rows=strip_rows) == float(whole.mean())


def test_ssim_of_a_large_image_goes_through_strips_with_the_same_value(monkeypatch):
    from restorebench.score import metrics

    rng = np.random.default_rng(5)
    a = rng.random((300, 200, 3)).astype(np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    whole = metrics.ssim(a, b)
    calls = []
    real = metrics._ssim_map
    monkeypatch.setattr(metrics, "SSIM_WHOLE_MAX_PIXELS", 10_000)
    monkeypatch.setattr(metrics, "_ssim_map", lambda *x: calls.append(x[0].shape) or real(*x))
    assert metrics.ssim(a, b) == whole
    assert len(calls) == -(-(300 - 10) // metrics.SSIM_STRIP_ROWS) and calls[0][0] == metrics.SSIM_STRIP_ROWS + 10


def test_psnr_y_matlab_rounds_y_of_the_8bit_images():
    from restorebench.score.metrics import psnr_y_matlab

    rng = np.random.default_rng(3)
    a = rng.random((12, 14, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    ua, ub = (np.clip(np.round(x * 255), 0, 255) for x in (a, b))
    ya = np.round(16 + (65.481 * ua[..., 0] + 128.553 * ua[..., 1] + 24.966 * ua[..., 2]) / 255)
    yb = np.round(16 + (65.481 * ub[..., 0] + 128.553 * ub[..., 1] + 24.966 * ub[..., 2]) / 255)
    crop = (slice(2, -2), slice(2, -2))
    expected = 10 * np.log10(255**2 / np.mean((ya[crop] - yb[crop]) ** 2))
    assert psnr_y_matlab(a, b, crop_border=2) == pytest.approx(expected, abs=1e-12)
    unrounded = psnr(a, b, crop_border=2, y_channel=True)
    assert abs(psnr_y_matlab(a, b, crop_border=2) - unrounded) < 0.3  # close, not equal
    gray = rng.random((10, 10, 1))
    g8 = np.round(gray * 255)
    noisy = np.clip(gray + 0.02, 0, 1)
    n8 = np.round(noisy * 255)
    assert psnr_y_matlab(noisy, gray) == pytest.approx(10 * np.log10(255**2 / np.mean((n8 - g8) ** 2)))
