"""The 313 bins, soft encoding, rebalancing and decoding of Zhang et al. (ECCV 2016)."""

from __future__ import annotations

import numpy as np
import pytest

from restorebench.tasks.colorize.color import (
    ab_bins,
    decode,
    empirical_prior,
    is_gray,
    lab_to_rgb,
    rebalancing_weights,
    rgb_to_lab,
    soft_encode,
)


def test_the_gamut_gives_the_papers_313_bins():
    bins = ab_bins()
    assert bins.shape == (313, 2)
    assert (bins % 10 == 0).all() and len({tuple(b) for b in bins}) == 313
    # the paper's extremes: a from -90 to 100, b from -110 to 100; pure sRGB primaries' bins are in
    assert bins[:, 0].min() == -90 and bins[:, 0].max() == 100
    assert bins[:, 1].min() == -110 and bins[:, 1].max() == 100
    rows = {a: sorted(bins[bins[:, 0] == a, 1]) for a in (-90, 0, 100)}
    assert rows[-90] == [50, 60, 70, 80, 90] and rows[0] == list(range(-70, 101, 10))
    assert rows[100] == list(range(-90, 1, 10))
    primaries = rgb_to_lab(np.eye(3)[None])[0, :, 1:]
    for ab in primaries:
        assert np.min(np.abs(bins - ab).max(axis=1)) <= 10


def test_soft_encoding_spreads_over_the_five_nearest_bins():
    bins = ab_bins()
    encoded = soft_encode(np.array([[3.0, -4.0]]))
    assert encoded.shape == (1, 313) and encoded.sum() == pytest.approx(1.0)
    assert (encoded > 0).sum() == 5
    top = bins[np.argmax(encoded[0])]
    assert tuple(top) == (0, 0)  # the nearest bin has the largest weight
    d = np.sqrt(((bins - [3.0, -4.0]) ** 2).sum(1))
    chosen = np.argsort(d)[:5]
    expected = np.exp(-(d[chosen] ** 2) / 50)
    np.testing.assert_allclose(encoded[0, chosen], expected / expected.sum(), rtol=1e-6)


def test_rebalancing_weights_have_expectation_one_and_favour_rare_bins():
    rng = np.random.default_rng(0)
    ab = np.concatenate([rng.normal(0, 3, (5000, 2)), rng.normal([60, 60], 3, (50, 2))])
    prior = empirical_prior(ab)
    assert prior.sum() == pytest.approx(1.0) and (prior > 0).all()
    w = rebalancing_weights(prior)
    assert np.sum(prior * w) == pytest.approx(1.0)
    bins = ab_bins()
    common = np.argmin(np.abs(bins - [0, 0]).sum(1))
    rare = np.argmin(np.abs(bins - [60, 60]).sum(1))
    assert w[rare] > w[common]
    uniform = rebalancing_weights(np.full(313, 1 / 313))
    np.testing.assert_allclose(uniform, 1.0)  # nothing to rebalance


def test_decoding_modes():
    bins = ab_bins()
    logits = np.full((313, 1, 2), -5.0)
    logits[10, 0, 0], logits[20, 0, 0] = 2.0, 1.5
    logits[30, 0, 1] = 3.0
    mode = decode(logits, "mode")
    np.testing.assert_array_equal(mode[0, 0], bins[10])
    mean = decode(logits, "mean")
    annealed = decode(logits, "annealed")
    # the annealed mean sits between the mean (T=1) and the mode (T->0)
    assert np.linalg.norm(annealed[0, 0] - bins[10]) < np.linalg.norm(mean[0, 0] - bins[10])
    p = np.exp(logits[:, 0, 0] / 0.38 - (logits[:, 0, 0] / 0.38).max())
    np.testing.assert_allclose(annealed[0, 0], (p / p.sum()) @ bins)


def test_lab_round_trip_and_gray_detection():
    rgb = np.random.default_rng(1).random((5, 6, 3))
    np.testing.assert_allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-5)
    assert is_gray(np.full((4, 4, 3), 0.3)) and is_gray(np.zeros((4, 4, 1)))
    assert not is_gray(rgb)


def test_the_prior_is_fitted_from_folders_and_written_where_asked(tmp_path):
    """``prior.fit``: colour images only (a gray one is left out), their sampled ab's mean, and
    what they came from; ``write`` stores what ``stored`` reads. An empty folder is one error."""
    import json

    from PIL import Image

    from restorebench import UserError
    from restorebench.tasks.colorize import prior

    folder = tmp_path / "train"
    folder.mkdir()
    red = np.zeros((40, 50, 3), np.uint8)
    red[..., 0] = 200
    Image.fromarray(red).save(folder / "red.png")
    Image.fromarray(np.full((40, 50), 90, np.uint8)).save(folder / "gray.png")
    stats = prior.fit([str(folder)])
    assert stats["images"] == 1 and stats["sources"] == ["train"]
    expected = rgb_to_lab(red.astype(np.float32) / 255.0)[..., 1:].reshape(-1, 2).mean(axis=0)
    np.testing.assert_allclose(stats["mean_ab"], expected, atol=1e-4)
    out = prior.write(stats, tmp_path / "prior.json")
    assert json.loads(out.read_text())["mean_ab"] == stats["mean_ab"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images in"):
        prior.fit([str(tmp_path / "empty")])
