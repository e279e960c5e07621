"""Colorization statistics against values computed by hand: the set-level AuCs of Zhang et
al. (ECCV 2016, Table 1) on a constructed set whose answer is known in closed form, and the
per-image colour statistics on small images."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import rgb2lab

from restorebench.core.build import build_metric
from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degraded
from restorebench.tasks.colorize.color import Q, ab_bins, nearest_bin
from restorebench.tasks.colorize.metrics import (
    ab_hist_iou,
    auc_of,
    balanced_auc,
    class_statistics,
    colorfulness,
    colorfulness_gap,
    pooled_auc,
    saturation,
)

ITEM = Degraded(image=np.zeros((4, 4, 1), np.float32), degradation="gray")
RED, BLUE, GRAY = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.5, 0.5, 0.5)


def _colourful(seed=0, h=16, w=16):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def _image(rows: list[tuple[int, tuple[float, float, float]]], width: int = 10) -> np.ndarray:
    """Rows of uniform colour: ``[(count, rgb), ...]`` stacked top to bottom."""
    return np.concatenate([np.tile(np.array(rgb, np.float64), (n, width, 1)) for n, rgb in rows])


def _within(error: float) -> int:
    """Thresholds t in 0..150 with error <= t, counted by hand."""
    return sum(1 for t in range(151) if error <= t)


@pytest.fixture
def constructed_set():
    """Two images, two colour classes far apart in ab (red and blue: ~175 ab units, so the
    Gaussian smoothing of sigma 5 leaks ~e^-600 between them):

    - image 1: 60 red pixels coloured right, and 10 blue pixels coloured gray (error e);
    - image 2: 20 blue pixels coloured right.
    """
    truth1, out1 = _image([(6, RED), (1, BLUE)]), _image([(6, RED), (1, GRAY)])
    truth2 = out2 = _image([(2, BLUE)])
    lab_blue, lab_gray = rgb2lab(np.array([[BLUE]]))[0, 0], rgb2lab(np.array([[GRAY]]))[0, 0]
    error = float(np.hypot(*(lab_blue[1:] - lab_gray[1:])))
    return (truth1, out1), (truth2, out2), error


def test_pooled_and_class_balanced_auc_in_closed_form(constructed_set):
    (truth1, out1), (truth2, out2), e = constructed_set
    k = _within(e)
    assert 0 < k < 151  # the gray guess is within some thresholds, not all
    stats = np.stack([class_statistics(out1, truth1), class_statistics(out2, truth2)])
    assert stats.shape == (2, 2 * Q)
    # auc: every pixel of the set counts once
    plain = (60 * 151 + 20 * 151 + 10 * k) / (151 * 90)
    assert build_metric("auc").group_value(stats) == pytest.approx(plain, abs=1e-12)
    # auc_rebal: weights 1/p(q), p proportional to the set's 60 red and 30 blue pixels: each class weighs the same
    per_class = [1.0, (20 * 151 + 10 * k) / (30 * 151)]
    assert build_metric("auc_rebal").group_value(stats) == pytest.approx(np.mean(per_class), abs=1e-12)
    # pooling is not the mean of per-image values
    per_image = [build_metric("auc").group_value(row[None]) for row in stats]
    assert per_image == pytest.approx([(60 * 151 + 10 * k) / (151 * 70), 1.0], abs=1e-12)
    assert abs(np.mean(per_image) - plain) > 0.01
    # an image counted twice (a bootstrap resample) is the same as its statistics doubled
    assert pooled_auc(stats, np.array([2.0, 0.0])) == pytest.approx(per_image[0], abs=1e-15)


def test_per_image_values_are_the_formula_over_that_image_alone(constructed_set):
    (truth1, out1), _, e = constructed_set
    k = _within(e)
    for name, expected in (
        ("auc", (60 * 151 + 10 * k) / (151 * 70)),
        ("auc_rebal", (1.0 + k / 151) / 2),  # red and blue weigh the same within image 1 too
    ):
        value, stats = build_metric(name).score(out1, truth1, ITEM)
        assert value == pytest.approx(expected, abs=1e-12) and stats.shape == (2 * Q,)


def test_a_gray_output_loses_more_on_the_balanced_auc():
    """Most pixels of a photo are nearly neutral: gray gets them right, and the balanced AuC
    weighs its misses on the rarer colours up (the paper: 89.1 plain, 58.0 balanced)."""
    from skimage import data

    img = data.astronaut()[::4, ::4].astype(np.float64) / 255.0
    gray = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    plain, _ = build_metric("auc").score(gray, img, ITEM)
    balanced, _ = build_metric("auc_rebal").score(gray, img, ITEM)
    assert balanced < plain - 0.05
    for name in ("auc", "auc_rebal"):
        assert build_metric(name).score(img, img, ITEM)[0] == pytest.approx(1.0, abs=1e-12)


def test_statistics_count_each_class_and_its_thresholds():
    truth = _image([(1, RED), (1, BLUE)], width=3)
    out = _image([(1, RED), (1, GRAY)], width=3)
    stats = class_statistics(out, truth)
    red, blue = (int(nearest_bin(rgb2lab(np.array([[c]]))[0, 0, 1:])) for c in (RED, BLUE))
    assert stats[red] == 3 and stats[blue] == 3 and stats[:Q].sum() == 6
    error = float(np.hypot(*(rgb2lab(np.array([[BLUE]]))[0, 0, 1:] - rgb2lab(np.array([[GRAY]]))[0, 0, 1:])))
    assert stats[Q + red] == 3 * 151 and stats[Q + blue] == 3 * _within(error)


def test_a_fixed_prior_is_part_of_the_protocol(constructed_set, tmp_path):
    (truth1, out1), (truth2, out2), _ = constructed_set
    stats = np.stack([class_statistics(out1, truth1), class_statistics(out2, truth2)])
    np.save(tmp_path / "uniform.npy", np.ones(Q))
    uniform = build_metric(f"auc_rebal?prior={tmp_path / 'uniform.npy'}")
    assert uniform.name == f"auc_rebal?prior={tmp_path / 'uniform.npy'}"
    assert uniform.version.startswith("2+prior.sha256:") and uniform.version != build_metric("auc_rebal").version
    # a uniform prior weighs every pixel the same: the plain pooled AuC
    assert uniform.group_value(stats) == pytest.approx(pooled_auc(stats, np.ones(2)), abs=1e-12)
    # the same numbers as text give the same protocol
    (tmp_path / "uniform.txt").write_text(" ".join(["2.5"] * Q))
    assert build_metric(f"auc_rebal?prior={tmp_path / 'uniform.txt'}").version == uniform.version
    # a prior that says red never happens cannot weigh the red pixels
    zero = np.ones(Q)
    zero[int(nearest_bin(rgb2lab(np.array([[RED]]))[0, 0, 1:]))] = 0.0
    with pytest.raises(ValueError, match="probability 0 to colour bin"):
        balanced_auc(stats, np.ones(2), zero / zero.sum())
    (tmp_path / "short.txt").write_text("1 2 3")
    with pytest.raises(UserError, match="313 finite, non-negative numbers"):
        build_metric(f"auc_rebal?prior={tmp_path / 'short.txt'}")
    with pytest.raises(UserError, match="cannot read the prior"):
        build_metric(f"auc_rebal?prior={tmp_path / 'missing.npy'}")
    with pytest.raises(UserError, match="takes no parameters"):
        build_metric("auc?prior=x.npy")


def test_every_colorization_metric_declares_what_it_means():
    meaning = {name: (build_metric(name).direction, build_metric(name).set_level) for name in (
        "auc", "auc_rebal", "colorfulness", "colorfulness_gap", "saturation", "ab_hist_iou"
    )}  # fmt: skip
    assert meaning == {
        "auc": ("higher", True),
        "auc_rebal": ("higher", True),
        "colorfulness": ("none", False),
        "colorfulness_gap": ("target", False),
        "saturation": ("none", False),
        "ab_hist_iou": ("higher", False),
    }
    gap = build_metric("colorfulness_gap")
    assert gap.target == 0.0 and gap.goodness(-13.0) > gap.goodness(30.0)  # over-saturating is worse
    assert math.isnan(build_metric("saturation").goodness(0.4))


def test_the_bins_the_statistics_use_are_the_papers():
    assert ab_bins().shape == (Q, 2) == (313, 2)


def test_a_perfect_output_has_full_histogram_overlap():
    img = _colourful()
    assert ab_hist_iou(img, img, ITEM) == pytest.approx(1.0)
    assert colorfulness_gap(img, img, ITEM) == 0.0


def test_a_gray_output_has_no_colourfulness():
    img = _colourful()
    gray = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    assert colorfulness(gray, img, ITEM) == 0.0 and saturation(gray, img, ITEM) == 0.0
    assert colorfulness_gap(gray, img, ITEM) < 0


def test_auc_by_hand():
    errors = np.array([0.0, 10.0, 200.0, 50.5])
    # thresholds 0..150: error 0 is within every t (151), 10 within t >= 10 (141), 50.5 within t >= 51 (100), 200 never
    assert auc_of(errors) == pytest.approx((151 + 141 + 100 + 0) / (4 * 151))
    weights = np.array([1.0, 1.0, 1.0, 3.0])
    assert auc_of(errors, weights) == pytest.approx((151 + 141 + 3 * 100) / (6 * 151))


def test_colourfulness_and_saturation_by_hand():
    red = np.zeros((2, 2, 3), np.float32)
    red[..., 0] = 1.0  # rg = 255, yb = 127.5 everywhere: sigma 0, mu = hypot(255, 127.5)
    assert colorfulness(red, red, ITEM) == pytest.approx(0.3 * np.hypot(255, 127.5))
    half = red.copy()
    half[..., 1:] = 0.5  # HSV saturation (max - min) / max = 0.5
    assert saturation(half, half, ITEM) == pytest.approx(0.5)


def test_histogram_intersection_of_disjoint_colours_is_zero():
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    blue = np.zeros((4, 4, 3), np.float32)
    blue[..., 2] = 1.0
    assert ab_hist_iou(red, blue, ITEM) == 0.0
