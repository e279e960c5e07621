"""The inpainting metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from restorebench.core.interfaces import Degraded
from restorebench.core.registry import METRICS
from restorebench.score.metrics import ssim, ssim_map
from restorebench.tasks.inpaint.metrics import hole_l1, hole_psnr, hole_ssim, l1


def _item(mask):
    return Degraded(image=np.zeros((*mask.shape, 3), np.float32), degradation="mask", extras={"mask": mask})


def test_l1_and_hole_metrics_by_hand():
    clean = np.zeros((4, 4, 3), np.float32)
    restored = clean.copy()
    mask = np.ones((4, 4), np.float32)
    mask[:2, :2] = 0  # 4 hole pixels
    restored[0, 0] = 0.5  # one hole pixel off by 0.5 in every channel
    restored[3, 3] = 0.25  # one valid pixel off by 0.25
    item = _item(mask)
    assert l1(restored, clean, item) == pytest.approx((0.5 + 0.25) * 3 / 48)
    assert hole_l1(restored, clean, item) == pytest.approx(0.5 * 3 / 12)
    assert hole_psnr(restored, clean, item) == pytest.approx(10 * math.log10(1 / (0.25 * 3 / 12)))
    assert hole_psnr(clean, clean, item) == math.inf


def test_hole_ssim_is_the_map_averaged_over_hole_centred_windows():
    rng = np.random.default_rng(0)
    clean = rng.random((40, 48, 3)).astype(np.float32)
    restored = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    mask = np.ones((40, 48), np.float32)
    mask[10:30, 5:25] = 0
    smap = ssim_map(restored, clean)
    assert smap.shape == (30, 38)
    assert smap.mean() == pytest.approx(ssim(restored, clean), abs=1e-12)
    centres = mask[5:35, 5:43] == 0
    assert hole_ssim(restored, clean, _item(mask)) == pytest.approx(smap[centres].mean())
    everything = np.zeros_like(mask)
    assert hole_ssim(restored, clean, _item(everything)) == pytest.approx(ssim(restored, clean), abs=1e-12)


def test_hole_metrics_need_a_mask_with_holes():
    clean = np.zeros((12, 12, 3), np.float32)
    with pytest.raises(ValueError, match="need the mask"):
        hole_l1(clean, clean, Degraded(image=clean, degradation="gaussian"))
    with pytest.raises(ValueError, match="no hole"):
        hole_psnr(clean, clean, _item(np.ones((12, 12), np.float32)))


def test_registered_with_directions():
    assert not METRICS.get("l1").higher_is_better and not METRICS.get("hole_l1").higher_is_better
    assert METRICS.get("hole_psnr").higher_is_better and METRICS.get("hole_ssim").higher_is_better
