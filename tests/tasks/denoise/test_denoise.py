"""Tests for the denoising task: its degradations (real noise statistics), the classical
baselines (shapes, determinism, real PSNR gains, exact kernels) and the default suite."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pydantic import ValidationError

from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degraded
from restorebench.core.refs import Ref
from restorebench.tasks.denoise import baselines as B
from restorebench.tasks.denoise.degradations import GaussianNoise, SaltPepperNoise
from restorebench.tasks.denoise.levels import noise_level

ALL_METHODS = [B.Identity, B.Box, B.Gaussian, B.Binomial, B.Median, B.Bilateral, B.Wiener, B.NLMeans, B.TV, B.Wavelet]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (data range 1) of ``a`` clipped to [0, 1] and rounded to 8 bits, against ``b``."""
    q = np.round(np.clip(a.astype(np.float64), 0, 1) * 255) / 255
    return float(10 * np.log10(1.0 / np.mean((q - b.astype(np.float64)) ** 2)))


def _gaussian(img, sigma, seed=0, clip=False):
    return GaussianNoise(GaussianNoise.Params(sigma=sigma, clip=clip)).apply(img, np.random.default_rng(seed))


def _saltpepper(img, density, seed=0, salt_ratio=0.5):
    deg = SaltPepperNoise(SaltPepperNoise.Params(density=density, salt_ratio=salt_ratio))
    return deg.apply(img, np.random.default_rng(seed))


def _smooth(size: int = 64, channels: int = 3) -> np.ndarray:
    """A smooth test image: low-frequency sinusoids in [0.15, 0.85]."""
    y, x = np.mgrid[0:size, 0:size] / size
    planes = [0.5 + 0.35 * np.sin(2 * np.pi * (x * (1 + c) / 2 + y * 0.7) + c) for c in range(channels)]
    return np.stack(planes, axis=-1).astype(np.float32)


def _deadleaves(size: int = 64, channels: int = 3, seed: int = 7) -> np.ndarray:
    """Dead-leaves-like image: opaque discs of random grey/colour (radius 6-24) over a gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    img = np.repeat((0.3 + 0.4 * x / size)[..., None], channels, axis=-1)
    for _ in range(30):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(6, 24)
        img[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = rng.uniform(0.1, 0.9, channels)
    return img.astype(np.float32)


# ---------------------------------------------------------------- degradations


@pytest.mark.parametrize("sigma", [5, 25, 50])
def test_gaussian_noise_has_the_right_std_and_zero_mean(sigma):
    clean = np.full((256, 256, 3), 0.5, np.float32)
    out = _gaussian(clean, sigma)
    assert out.image.dtype == np.float32 and out.image.shape == clean.shape
    assert out.degradation == "gaussian" and out.params == {"sigma": float(sigma), "clip": False}
    noise = out.image.astype(np.float64) - 0.5
    assert noise.std() == pytest.approx(sigma / 255, rel=0.02)
    assert abs(noise.mean()) < 5 * (sigma / 255) / np.sqrt(noise.size)


def test_gaussian_noise_is_not_clipped_unless_asked():
    clean = np.full((64, 64, 3), 0.5, np.float32)
    unclipped = _gaussian(clean, 50).image
    assert unclipped.min() < 0 and unclipped.max() > 1
    clipped = _gaussian(clean, 50, clip=True).image
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert np.array_equal(clipped, np.clip(unclipped, 0, 1))  # same draws, then clipped


def test_gaussian_zero_sigma_is_the_identity():
    clean = _smooth(16)
    assert np.array_equal(_gaussian(clean, 0).image, clean)


@pytest.mark.parametrize(
    "make", [lambda img, s: _gaussian(img, 25, seed=s), lambda img, s: _saltpepper(img, 0.1, seed=s)]
)
def test_degradations_are_pure_functions_of_the_rng(make):
    clean = _smooth(32)
    a, b, c = make(clean, 1).image, make(clean, 1).image, make(clean, 2).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.array_equal(clean, _smooth(32))  # the input is not modified


@pytest.mark.parametrize(("density", "salt_ratio"), [(0.1, 0.5), (0.3, 0.2), (0.02, 0.9)])
def test_saltpepper_corrupts_the_expected_number_of_whole_pixels(density, salt_ratio):
    clean = np.full((256, 256, 3), 0.5, np.float32)
    out = _saltpepper(clean, density, salt_ratio=salt_ratio).image
    assert out.dtype == np.float32
    changed = (out != 0.5).any(axis=-1)
    assert np.array_equal(changed, (out != 0.5).all(axis=-1))  # whole pixels, all channels together
    salt = (out == 1).all(axis=-1)
    pepper = (out == 0).all(axis=-1)
    assert np.array_equal(changed, salt | pepper)
    n, k = changed.size, int(changed.sum())
    assert abs(k - density * n) < 5 * np.sqrt(n * density * (1 - density))
    assert abs(salt.sum() - salt_ratio * k) < 5 * np.sqrt(k * salt_ratio * (1 - salt_ratio))


def test_saltpepper_extremes_and_gray_images():
    clean = _smooth(32, channels=1)
    assert np.array_equal(_saltpepper(clean, 0.0).image, clean)
    full = _saltpepper(clean, 1.0, salt_ratio=1.0).image
    assert full.shape == clean.shape and np.all(full == 1)
    params = _saltpepper(clean, 0.25, salt_ratio=0.4).params
    assert params == {"density": 0.25, "salt_ratio": 0.4}


def test_references_parse_and_validate():
    deg = GaussianNoise.from_ref(Ref("gaussian", {"sigma": "25", "clip": "true"}))
    assert deg.params.sigma == 25.0 and deg.params.clip is True
    assert deg.ref == "gaussian?clip=true&sigma=25"
    assert SaltPepperNoise.from_ref(Ref.parse("saltpepper?density=0.1")).params.salt_ratio == 0.5


@pytest.mark.parametrize(
    ("cls", "params", "field"),
    [
        (GaussianNoise, {"sigma": "-1"}, "sigma"),
        (GaussianNoise, {"sigma": "nan"}, "sigma"),
        (GaussianNoise, {}, "sigma"),
        (GaussianNoise, {"sigma": "5", "sgima": "5"}, "sgima"),
        (SaltPepperNoise, {"density": "1.5"}, "density"),
        (SaltPepperNoise, {"density": "-0.1"}, "density"),
        (SaltPepperNoise, {"density": "0.1", "salt_ratio": "2"}, "salt_ratio"),
    ],
)
def test_bad_parameters_are_user_errors_naming_the_parameter(cls, params, field):
    with pytest.raises(UserError, match=field):
        cls.from_ref(Ref(cls.name, params))
    with pytest.raises(ValidationError):
        cls.Params(**params)


# ---------------------------------------------------------------- methods


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("cls", ALL_METHODS, ids=lambda c: c.name)
def test_method_shapes_determinism_and_gain_at_sigma_25(cls, channels):
    clean = _deadleaves(channels=channels)
    item = _gaussian(clean, 25, seed=3)
    method = cls()
    method.setup()
    out = method.restore_one(item)
    assert out.shape == clean.shape and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.array_equal(out, method.restore([item])[0])  # deterministic
    gain = _psnr(out, clean) - _psnr(item.image, clean)
    if cls is B.Identity:
        assert np.array_equal(out, item.image)
    else:
        assert gain > 2, f"{cls.name}: {gain:.2f} dB"


@pytest.mark.parametrize("cls", ALL_METHODS[1:], ids=lambda c: c.name)
def test_methods_run_on_salt_and_pepper_and_unknown_noise(cls):
    clean = _smooth(channels=3)
    for item in (_saltpepper(clean, 0.1), Degraded(_gaussian(clean, 15).image, "mystery")):
        out = cls().restore_one(item)
        assert out.shape == clean.shape and np.isfinite(out).all()


def test_median_removes_salt_and_pepper():
    clean = _smooth(channels=3)
    item = _saltpepper(clean, 0.1, seed=5)
    gain = _psnr(B.Median().restore_one(item), clean) - _psnr(item.image, clean)
    assert gain > 8


@pytest.mark.parametrize("channels", [1, 3])
def test_binomial_impulse_response_is_the_outer_product(channels):
    impulse = np.zeros((9, 9, channels), np.float32)
    impulse[4, 4] = 1
    out = B.Binomial().restore_one(Degraded(impulse, "none"))
    k = np.array([1, 4, 6, 4, 1], np.float64) / 16
    expected = np.zeros((9, 9), np.float64)
    expected[2:7, 2:7] = np.outer(k, k)
    for c in range(channels):
        assert np.array_equal(out[..., c].astype(np.float64), expected)
    big = np.zeros((13, 13, channels), np.float32)
    big[6, 6] = 1
    twice = B.Binomial(B.Binomial.Params(passes=2)).restore_one(Degraded(big, "none"))
    k2 = np.convolve(k, k)  # two passes = the 9-tap binomial kernel
    expected2 = np.zeros((13, 13), np.float64)
    expected2[2:11, 2:11] = np.outer(k2, k2)
    assert np.array_equal(twice[..., 0].astype(np.float64), expected2)


def test_auto_rules_follow_the_noise_level_and_explicit_values_win():
    img = _smooth(channels=1)
    low, high = _gaussian(img, 15), _gaussian(img, 50)
    assert B.Median().resolve(low)["size"] == 3 and B.Median().resolve(high)["size"] == 7
    assert B.Median().resolve(_saltpepper(img, 0.1))["size"] == 3
    assert B.Median(B.Median.Params(size=9)).resolve(low) == {"size": 9}
    assert B.TV().resolve(high)["weight"] > B.TV().resolve(low)["weight"]
    nlm = B.NLMeans(B.NLMeans.Params(h=10)).resolve(low)
    assert nlm["h"] == 10 and nlm["sigma"] == 15
    with pytest.raises(UserError, match="size"):
        B.Median.from_ref(Ref("median", {"size": "0"}))
    with pytest.raises(UserError, match="unknown wavelet"):
        B.Wavelet.from_ref(Ref("wavelet", {"wavelet": "db99x"}))
    assert B.Wavelet.from_ref(Ref("wavelet", {"wavelet": "sym4"})).ref == "denoise/wavelet?wavelet=sym4"


def test_unknown_degradations_get_an_estimated_sigma():
    clean = _smooth(128, channels=3)
    level = noise_level(Degraded(_gaussian(clean, 20).image, "mystery"))
    assert not level.known and level.sigma == pytest.approx(20, rel=0.15)
    clean_level = noise_level(Degraded(clean, "mystery"))
    assert clean_level.sigma < 2
    out = B.Box().restore_one(Degraded(clean, "mystery"))  # a clean image is left alone
    assert np.array_equal(out, clean)


def test_bm3d_explains_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes `import bm3d` fail
    with pytest.raises(UserError, match=r"pip install restorebench\[bm3d\]") as err:
        B.BM3D().setup()
    assert "non-commercial" in str(err.value)


def test_bm3d_denoises():
    pytest.importorskip("bm3d")
    clean = _deadleaves(48, channels=3)
    method = B.BM3D()
    method.setup()
    for img in (clean, clean[..., :1].copy()):
        item = _gaussian(img, 25, seed=1)
        out = method.restore_one(item)
        assert out.shape == img.shape and np.isfinite(out).all()
        assert _psnr(out, img) - _psnr(item.image, img) > 3


# ---------------------------------------------------------------- task and suite


def test_task_and_default_suite_are_consistent():
    import yaml

    from restorebench.core.registry import DEGRADATIONS, METHODS, TASKS

    task = TASKS._items["denoise"]  # no registry lookups: they import unfinished modules
    assert task.metrics == ("psnr", "ssim", "psnr_y", "ssim_y")
    with open(task.suite) as f:
        suite = yaml.safe_load(f)
    (entry,) = suite["tasks"]
    assert entry["task"] == "denoise" and entry["metrics"] == list(task.metrics)
    for text in entry["degradations"]:
        ref = Ref.parse(text)
        DEGRADATIONS._items[ref.name].from_ref(ref)
    expected = {f"denoise/{cls.name}" for cls in ALL_METHODS}
    assert set(entry["methods"]) == expected | {"denoise/dncnn"}  # every classical one but BM3D, and DnCNN
    assert expected | {"denoise/bm3d"} <= set(METHODS._items)
    for cls in [*ALL_METHODS, B.BM3D]:
        assert cls.task == "denoise" and cls.kind == "classical" and cls.description
