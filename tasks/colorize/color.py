"""CIE Lab, the 313 quantised ab bins, soft encoding, class rebalancing and decoding
(Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016).

- Lab is CIE L*a*b* of sRGB under D65 (``skimage.color``), L in [0, 100].
- **Bins.** The ab plane on a grid of 10; a grid point is kept when the 20 x 20 square
  around it meets the convex hull of the (a, b) of every sRGB colour (any L): the 313
  points of the paper (its ``pts_in_hull``), computed here from the gamut (the cube's
  surface suffices: the hull of the projection is that of the projected boundary).
- **Soft encoding.** A target ab value becomes a distribution over its 5 nearest bins,
  weighted by a Gaussian of their distance (sigma 5).
- **Rebalancing.** Each bin weighs ``w ∝ ((1 - λ) p̃ + λ / Q)^-1`` with ``p̃`` the empirical
  bin distribution of the training images smoothed by a Gaussian (sigma 5, in ab units),
  ``λ = 1/2``, scaled so that ``E_p̃[w] = 1``.
- **Decoding.** ``mode`` (the likeliest bin), ``mean`` (the distribution's mean) or
  ``annealed`` (the mean of ``softmax(z / T)``, T = 0.38, the paper's choice).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

GRID = 10
Q = 313
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
PRIOR_SIGMA = 5.0
ANNEALED_T = 0.38
L_CENTRE, L_NORM, AB_NORM = 50.0, 100.0, 110.0  # the release's normalisation: (L - 50) / 100 in, ab * 110 out


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 sRGB in [0, 1] -> HxWx3 Lab (L in [0, 100]), float64."""
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(rgb, dtype=np.float64))


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """HxWx3 Lab -> sRGB in [0, 1] (out-of-gamut colours clipped), float32."""
    import warnings

    from skimage.color import lab2rgb

    with warnings.catch_warnings():  # lab2rgb warns when it clips negative Z: expected for predicted ab
        warnings.simplefilter("ignore")
        return lab2rgb(np.asarray(lab, dtype=np.float64)).astype(np.float32)


def is_gray(rgb: np.ndarray, tolerance: float = 1.0 / 255) -> bool:
    """A 1-channel image, or an RGB one whose channels are equal (within ``tolerance``)."""
    if rgb.ndim == 2 or rgb.shape[2] == 1:
        return True
    return bool(
        np.max(np.abs(rgb[..., 0] - rgb[..., 1])) <= tolerance
        and np.max(np.abs(rgb[..., 1] - rgb[..., 2])) <= tolerance
    )


@lru_cache(maxsize=1)
def ab_bins() -> np.ndarray:
    """The 313 in-gamut bin centres, ``313 x 2`` float64, sorted by a then b."""
    from scipy.spatial import ConvexHull, Delaunay

    v = np.linspace(0.0, 1.0, 33)
    g1, g2 = (g.ravel() for g in np.meshgrid(v, v, indexing="ij"))
    faces = []
    for axis in range(3):
        others = [i for i in range(3) if i != axis]
        for value in (0.0, 1.0):
            face = np.empty((g1.size, 3))
            face[:, axis], face[:, others[0]], face[:, others[1]] = value, g1, g2
            faces.append(face)
    ab = rgb_to_lab(np.concatenate(faces)[None])[0, :, 1:]
    grown = np.concatenate([ab + np.array([dx, dy]) for dx in (-GRID, GRID) for dy in (-GRID, GRID)])
    hull = Delaunay(grown[ConvexHull(grown).vertices])
    axis = np.arange(-130, 131, GRID, dtype=np.float64)
    a, b = (g.ravel() for g in np.meshgrid(axis, axis, indexing="ij"))
    points = np.stack([a, b], axis=1)
    return points[hull.find_simplex(points) >= 0]


def soft_encode(ab: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """``... x 2`` ab values -> ``... x Q`` distributions over their 5 nearest bins (Gaussian, sigma 5)."""
    from scipy.spatial import cKDTree

    centres = ab_bins() if centres is None else centres
    flat = np.asarray(ab, dtype=np.float64).reshape(-1, 2)
    dist, index = cKDTree(centres).query(flat, k=SOFT_NEIGHBOURS)
    weights = np.exp(-(dist**2) / (2 * SOFT_SIGMA**2))
    weights /= weights.sum(axis=1, keepdims=True)
    out = np.zeros((flat.shape[0], len(centres)), np.float32)
    np.put_along_axis(out, index, weights.astype(np.float32), axis=1)
    return out.reshape(*np.shape(ab)[:-1], len(centres))


def nearest_bin(ab: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """The index of each ab value's nearest bin."""
    from scipy.spatial import cKDTree

    centres = ab_bins() if centres is None else centres
    _, index = cKDTree(centres).query(np.asarray(ab, dtype=np.float64).reshape(-1, 2))
    return index.reshape(np.shape(ab)[:-1])


def empirical_prior(ab_values: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """The bin distribution of ab values (nearest bin), smoothed by a Gaussian of sigma 5 in ab units."""
    centres = ab_bins() if centres is None else centres
    counts = np.bincount(nearest_bin(ab_values, centres).ravel(), minlength=len(centres)).astype(np.float64)
    return smoothed_distribution(counts, centres)


def smoothed_distribution(counts: np.ndarray, centres: np.ndarray | None = None) -> np.ndarray:
    """Bin counts (``... x Q``) as distributions smoothed over the ab plane by a Gaussian of sigma 5:
    ``p̃ = G p / sum(G p)`` with ``p = counts / sum(counts)``."""
    kernel = _smoothing_kernel() if centres is None else _kernel(np.asarray(centres, dtype=np.float64))
    counts = np.asarray(counts, dtype=np.float64)
    p = counts / np.maximum(counts.sum(axis=-1, keepdims=True), 1.0)
    smoothed = p @ kernel  # the kernel is symmetric
    return smoothed / smoothed.sum(axis=-1, keepdims=True)


@lru_cache(maxsize=1)
def _smoothing_kernel() -> np.ndarray:
    return _kernel(ab_bins())


def _kernel(centres: np.ndarray) -> np.ndarray:
    d2 = ((centres[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * PRIOR_SIGMA**2))


def rebalancing_weights(prior: np.ndarray, lam: float = REBALANCE_LAMBDA) -> np.ndarray:
    """``w ∝ ((1 - λ) p̃ + λ / Q)^-1``, normalised so that ``sum(p̃ w) = 1``."""
    prior = np.asarray(prior, dtype=np.float64)
    w = 1.0 / ((1 - lam) * prior + lam / len(prior))
    return w / np.sum(prior * w)


def decode(logits: np.ndarray, mode: str = "annealed", *, temperature: float = ANNEALED_T,
           centres: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """``Q x H x W`` logits -> ``H x W x 2`` ab by ``mode``, ``mean`` or ``annealed`` (``softmax(z / T)``)."""
    centres = ab_bins() if centres is None else centres
    z = np.asarray(logits, dtype=np.float64)
    if mode == "mode":
        return centres[np.argmax(z, axis=0)]
    t = temperature if mode == "annealed" else 1.0
    z = z / t
    z = z - z.max(axis=0, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=0, keepdims=True)
    return np.einsum("qhw,qc->hwc", p, centres)


def keep_luminance(gray: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """DeOldify's post-process on 8-bit RGB: Y (OpenCV's YUV) of ``gray``, U and V of ``colour``."""
    import cv2

    yuv = cv2.cvtColor(gray, cv2.COLOR_RGB2YUV)
    yuv[..., 1:] = cv2.cvtColor(colour, cv2.COLOR_RGB2YUV)[..., 1:]
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)


def gray_rgb(lightness: np.ndarray) -> np.ndarray:
    """8-bit gray RGB of a lightness map (L in [0, 100]): the gray photo DeOldify is given."""
    lab = np.stack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=2)
    return np.round(lab_to_rgb(lab) * 255).astype(np.uint8)
