"""Colorization statistics against values computed by hand on small images."""

from __future__ import annotations

import numpy as np
import pytest

from restorebench.core.interfaces import Degraded
from restorebench.tasks.colorize.metrics import (
    ab_hist_iou,
    auc,
    auc_of,
    auc_rebal,
    colorfulness,
    colorfulness_gap,
    saturation,
)

ITEM = Degraded(image=np.zeros((4, 4, 1), np.float32), degradation="gray")


def _colourful(seed=0, h=16, w=16):
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_a_perfect_output_has_auc_one_and_full_histogram_overlap():
    img = _colourful()
    assert auc(img, img, ITEM) == 1.0 and auc_rebal(img, img, ITEM) == 1.0
    assert ab_hist_iou(img, img, ITEM) == pytest.approx(1.0)
    assert colorfulness_gap(img, img, ITEM) == 0.0


def test_a_gray_output_has_no_colourfulness_and_auc_below_one():
    img = _colourful()
    gray = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2)
    assert colorfulness(gray, img, ITEM) == 0.0 and saturation(gray, img, ITEM) == 0.0
    assert auc(gray, img, ITEM) < 1.0
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
