"""NIQE's pieces against values computed another way in the test: MATLAB rgb2gray, MSCN by
explicit windows, the AGGD fit against the exact root of its moment equation and against
samples of a known distribution, the block features' circular shifts, MATLAB imresize (the
the shared resizer against a slow MATLAB port), NaN-aware statistics and the distance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from restorebench.core.errors import UserError
from restorebench.score import niqe


def test_gray_is_matlab_rgb2gray_of_the_8_bit_image():
    img = np.array([[[255, 0, 0], [10, 20, 30], [0, 0, 255], [128, 128, 128]]], dtype=np.float64) / 255
    # by hand: 0.298936021293775 * 255 = 76.23 -> 76; 10 * .2989 + 20 * .5870 + 30 * .1140 = 18.15 -> 18;
    # .1140 * 255 = 29.08 -> 29; a gray pixel keeps its level (the weights sum to 1)
    assert niqe.to_gray255(img).tolist() == [[76.0, 18.0, 29.0, 128.0]]
    assert niqe.to_gray255(img[..., :1]).tolist() == [[255.0, 10.0, 0.0, 128.0]]


def test_mscn_matches_an_explicit_7x7_window_with_replicated_borders():
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (9, 11)).astype(np.float64)
    x = np.arange(-3, 4)
    window = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    window /= window.sum()
    padded = np.pad(gray, 3, mode="edge")
    want = np.empty_like(gray)
    for i in range(gray.shape[0]):
        for j in range(gray.shape[1]):
            patch = padded[i : i + 7, j : j + 7]
            mu = (patch * window).sum()
            sigma = math.sqrt(abs((patch * patch * window).sum() - mu * mu))
            want[i, j] = (gray[i, j] - mu) / (sigma + 1)
    got, _ = niqe.mscn(gray)
    np.testing.assert_allclose(got, want, atol=1e-10)


def _exact_alpha(v: np.ndarray) -> float:
    """The shape solving the AGGD moment equation exactly (a root, not a grid search)."""
    left, right = v[v < 0], v[v > 0]
    g = math.sqrt(np.mean(left**2)) / math.sqrt(np.mean(right**2))
    r = np.mean(np.abs(v)) ** 2 / np.mean(v**2) * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2

    def f(a):
        return special.gamma(2 / a) ** 2 / (special.gamma(1 / a) * special.gamma(3 / a)) - r

    return optimize.brentq(f, 0.2, 10.0)


def test_aggd_shape_is_the_moment_equations_root_to_the_grid_step():
    v = np.array([-2.0, -1.0, 1.0, 3.0, 0.5, -0.25, 0.0])
    alpha, left, right = niqe.aggd(v)
    assert abs(alpha - _exact_alpha(v)) <= 0.0006  # the grid's step is 0.001
    scale = math.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    assert left == pytest.approx(math.sqrt((4 + 1 + 0.0625) / 3) * scale)  # the zero is on neither side
    assert right == pytest.approx(math.sqrt((1 + 9 + 0.25) / 3) * scale)


def test_aggd_recovers_a_generalised_gaussians_shape_and_scale():
    for shape, scale in [(0.8, 1.5), (2.0, 0.7)]:
        v = stats.gennorm.rvs(shape, scale=scale, size=400_000, random_state=np.random.default_rng(1))
        alpha, left, right = niqe.aggd(v)
        assert alpha == pytest.approx(shape, rel=0.02)
        assert left == pytest.approx(scale, rel=0.02) and right == pytest.approx(scale, rel=0.02)


def test_aggd_of_a_constant_is_matlabs_first_grid_point_and_nan_scales():
    alpha, left, right = niqe.aggd(np.zeros(10))
    assert alpha == pytest.approx(0.2) and math.isnan(left) and math.isnan(right)


def test_block_features_pair_each_coefficient_with_its_circular_neighbours():
    rng = np.random.default_rng(2)
    block = rng.normal(size=(6, 5))
    feats = niqe.block_features(block)
    assert feats.shape == (18,)
    a, bl, br = niqe.aggd(block)
    assert feats[:2] == pytest.approx([a, (bl + br) / 2])
    rows, cols = block.shape
    for k, (di, dj) in enumerate([(0, 1), (1, 0), (1, 1), (1, -1)]):
        # MATLAB circshift(block, [di dj]): element (i, j) moves to (i + di, j + dj), wrapping
        shifted = np.empty_like(block)
        for i in range(rows):
            for j in range(cols):
                shifted[(i + di) % rows, (j + dj) % cols] = block[i, j]
        a, bl, br = niqe.aggd(block * shifted)
        eta = (br - bl) * special.gamma(2 / a) / special.gamma(1 / a)
        assert feats[2 + 4 * k : 6 + 4 * k] == pytest.approx([a, eta, bl, br])


def test_the_second_scale_is_the_features_of_the_matlab_half_size_image():
    """Scale 2 of the release: ``imresize(im, 0.5)`` (MATLAB bicubic, antialiased; the shared
    resizer, checked against a slow MATLAB port in the super-resolution tests), then its MSCN
    coefficients cut into 48x48 blocks."""
    from tests.tasks.superres.reference_imresize import slow_imresize

    gray = np.random.default_rng(3).random((96, 192)) * 255
    features, _ = niqe.image_features(gray)
    half = slow_imresize(gray, 0.5)
    coeffs, _ = niqe.mscn(half)
    for c in range(2):
        block = coeffs[:, c * 48 : (c + 1) * 48]
        np.testing.assert_allclose(features[c, 18:], niqe.block_features(block), rtol=1e-6, atol=1e-9)


def test_gaussian_ignores_nans_as_matlab_nanmean_and_nancov():
    feats = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0], [7.0, 10.0]])
    mean, cov = niqe.gaussian(feats)
    assert mean.tolist() == [4.0, 6.0]  # nanmean: (2 + 6 + 10) / 3 in the second column
    whole = feats[[0, 2, 3]]  # nancov drops the row with a NaN
    np.testing.assert_allclose(cov, np.cov(whole.T))


def test_distance_is_the_mahalanobis_form_of_the_release():
    model = niqe.PristineModel(np.zeros(36), np.eye(36), "test")
    mean = np.zeros(36)
    mean[:2] = [3.0, 4.0]
    assert niqe.distance(mean, np.eye(36), model) == pytest.approx(5.0)  # pinv((I + I) / 2) = I
    assert niqe.distance(mean, 3 * np.eye(36), model) == pytest.approx(5.0 / math.sqrt(2))


def test_a_blurred_photo_scores_worse_than_the_photo_under_the_committed_model():
    from scipy.ndimage import gaussian_filter
    from skimage import data

    img = data.astronaut().astype(np.float64) / 255
    model = niqe.default_model()
    sharp, blurred = niqe.niqe(img, model), niqe.niqe(gaussian_filter(img, (2.5, 2.5, 0)), model)
    assert 0 < sharp < blurred


def test_models_read_from_the_authors_mat_and_from_our_json(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(4)
    a = rng.normal(size=(36, 36))
    model = niqe.PristineModel(rng.normal(size=36), a @ a.T, "made by the test")
    savemat(tmp_path / "modelparameters.mat", {"mu_prisparam": model.mean[None, :], "cov_prisparam": model.cov})
    niqe.write_model(model, tmp_path / "m.json")
    for path in (tmp_path / "modelparameters.mat", tmp_path / "m.json"):
        read = niqe.read_model(path)
        np.testing.assert_array_equal(read.mean, model.mean)
        np.testing.assert_array_equal(read.cov, model.cov)
        assert read.digest == model.digest
    (tmp_path / "bad.json").write_text('{"mean": [1, 2], "cov": [[1]]}')
    with pytest.raises(ValueError, match="36 finite means"):
        niqe.read_model(tmp_path / "bad.json")


def test_the_metric_is_lower_is_better_without_a_reference_and_records_its_model(tmp_path):
    from restorebench.core.build import build_metric
    from restorebench.score.entries import score

    metric = build_metric("niqe")
    assert metric.direction == "lower" and not metric.reference
    assert metric.version.startswith("1+model.sha256:" + niqe.default_model().digest)
    niqe.write_model(niqe.PristineModel(np.zeros(36), np.eye(36), "t"), tmp_path / "m.json")
    other = build_metric(f"niqe?model={tmp_path / 'm.json'}")
    assert other.version != metric.version
    with pytest.raises(UserError, match="cannot read a pristine model"):
        build_metric(f"niqe?model={tmp_path / 'nosuch.mat'}")
    img = np.random.default_rng(5).random((100, 120, 3)).astype(np.float32)
    out = score(img, np.zeros_like(img), None, ["niqe"])  # the clean image does not enter niqe
    same = score(img, img, None, ["niqe"])
    assert out.values["niqe"] == same.values["niqe"] > 0
    small = score(img[:50], img[:50], None, ["niqe"])
    assert "at least 96x96" in small.errors["niqe"]
