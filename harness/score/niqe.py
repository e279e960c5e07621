"""NIQE (Mittal, Soundararajan, Bovik, "Making a 'completely blind' image quality analyzer",
IEEE Signal Processing Letters 20(3), 2013), as the authors' MATLAB release computes it
(``computequality(im, 96, 96, 0, 0, mu_prisparam, cov_prisparam)``). No reference image;
lower is better.

1. Gray: MATLAB ``rgb2gray`` of the 8-bit image (its exact weights, rounded to uint8), on
   the 0-255 scale; cropped to whole 96x96 blocks (top left kept).
2. At two scales (the second MATLAB ``imresize(im, 0.5)``: bicubic, antialiased): MSCN
   coefficients (7x7 Gaussian, sigma 7/6, replicate borders, C = 1), and per block (96x96,
   then 48x48) 18 features: an asymmetric generalised Gaussian (AGGD) fit of the
   coefficients (alpha, mean of the two scales), and of their products with the four
   neighbours (circular shifts within the block: alpha, eta, left and right scale).
3. The blocks' 36 features give a Gaussian (NaN-aware mean; covariance of the blocks with
   no NaN); the score is the distance ``sqrt(d' pinv((C_p + C_d) / 2) d)`` between it and
   the pristine model (``mu_p``, ``C_p``).

The released code fits an AGGD where the paper says GGD; we follow the code, which fitted
the released model. The pristine model is a :class:`PristineModel` (see ``niqe_pristine.json``
for ours and :func:`read_model` for the authors' ``modelparameters.mat``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from restorebench.imaging.resize import imresize

BLOCK = 96
SHARPNESS = 0.75  # the model's blocks: local std above this fraction of the image's sharpest block
_GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])  # MATLAB rgb2gray
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    """The AGGD shapes tried (MATLAB ``0.2:0.001:10``, 9801 values) and their moment ratios."""
    from scipy import special

    gammas = np.arange(0.2, 10.0 + 5e-4, 0.001)
    return gammas, special.gamma(2 / gammas) ** 2 / (special.gamma(1 / gammas) * special.gamma(3 / gammas))


def _window() -> np.ndarray:
    """The 1-D factor of ``fspecial('gaussian', 7, 7/6)`` (the 2-D window is its outer product)."""
    x = np.arange(-3, 4, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


_WINDOW = _window()


@dataclass(frozen=True)
class PristineModel:
    """The multivariate Gaussian of pristine images' block features (36 means, 36 x 36
    covariance) and where it came from (recorded in the metric's version)."""

    mean: np.ndarray
    cov: np.ndarray
    source: str

    @property
    def digest(self) -> str:
        data = (
            np.ascontiguousarray(self.mean, np.float64).tobytes() + np.ascontiguousarray(self.cov, np.float64).tobytes()
        )
        return hashlib.sha256(data).hexdigest()[:16]


def to_gray255(img: np.ndarray) -> np.ndarray:
    """An image in [0, 1] (RGB or gray) as NIQE's input: MATLAB ``rgb2gray`` of its 8-bit
    version, rounded to integers, on the 0-255 scale (float64)."""
    x = np.asarray(img, dtype=np.float64)
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    eight = np.clip(np.floor(x * 255.0 + 0.5), 0, 255)
    if eight.ndim == 2:
        return eight
    if eight.ndim != 3 or eight.shape[2] != 3:
        raise ValueError(f"NIQE takes a gray or RGB image, not shape {img.shape}")
    return np.clip(np.floor(eight @ _GRAY + 0.5), 0, 255)


def mscn(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(MSCN coefficients, local standard deviation) of a 0-255 gray image: the 7x7 Gaussian
    (sigma 7/6) weighted mean and deviation, replicate borders, C = 1."""

    from scipy import ndimage

    def blur(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate1d(
            ndimage.correlate1d(a, _WINDOW, axis=0, mode="nearest"), _WINDOW, axis=1, mode="nearest"
        )

    mu = blur(gray)
    sigma = np.sqrt(np.abs(blur(gray * gray) - mu * mu))
    return (gray - mu) / (sigma + 1.0), sigma


def aggd(v: np.ndarray) -> tuple[float, float, float]:
    """(alpha, left scale, right scale) of an asymmetric generalised Gaussian fitted to ``v``
    by moment matching over the grid alpha = 0.2, 0.201, ..., 10 (the release's
    ``estimateaggdparam``; a side with no value gives NaN, a constant input alpha 0.2)."""
    from scipy import special

    gammas, ratios = _grid()
    v = np.asarray(v, dtype=np.float64).ravel()
    left, right = v[v < 0], v[v > 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = math.sqrt(np.mean(left**2)) if left.size else math.nan
        right_std = math.sqrt(np.mean(right**2)) if right.size else math.nan
        ratio = left_std / right_std
        r_hat = np.mean(np.abs(v)) ** 2 / np.mean(v**2)
        r_norm = r_hat * (ratio**3 + 1) * (ratio + 1) / (ratio**2 + 1) ** 2
    error = (ratios - r_norm) ** 2
    alpha = float(gammas[0] if np.isnan(error).all() else gammas[np.nanargmin(error)])
    scale = math.sqrt(special.gamma(1 / alpha) / special.gamma(3 / alpha))
    return alpha, left_std * scale, right_std * scale


def block_features(block: np.ndarray) -> np.ndarray:
    """The 18 features of one block of MSCN coefficients (the release's ``computefeature``)."""
    from scipy import special

    alpha, left, right = aggd(block)
    out = [alpha, (left + right) / 2]
    for shift in _SHIFTS:
        alpha, left, right = aggd(block * np.roll(block, shift, axis=(0, 1)))
        eta = (right - left) * special.gamma(2 / alpha) / special.gamma(1 / alpha)
        out += [alpha, eta, left, right]
    return np.array(out)


def image_features(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blocks x 36 features, each block's sharpness: the mean local deviation at scale 1) of a
    0-255 gray image cropped to whole 96x96 blocks."""
    rows, cols = gray.shape[0] // BLOCK, gray.shape[1] // BLOCK
    if rows == 0 or cols == 0:
        raise ValueError(f"NIQE needs an image of at least {BLOCK}x{BLOCK} pixels, not {gray.shape[1]}x{gray.shape[0]}")
    im = gray[: rows * BLOCK, : cols * BLOCK]
    scales = []
    sharpness = None
    for scale in (1, 2):
        coeffs, sigma = mscn(im)
        size = BLOCK // scale
        feats = [
            block_features(coeffs[r * size : (r + 1) * size, c * size : (c + 1) * size])
            for c in range(cols)
            for r in range(rows)
        ]
        scales.append(np.array(feats))
        if scale == 1:
            sharpness = np.array(
                [
                    sigma[r * size : (r + 1) * size, c * size : (c + 1) * size].mean()
                    for c in range(cols)
                    for r in range(rows)
                ]
            )
        im = imresize(im, 0.5)  # MATLAB imresize(im, 0.5): bicubic, antialiased, not rounded
    return np.hstack(scales), sharpness


def gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(NaN-aware mean, covariance of the rows without NaN) of block features (MATLAB's
    ``nanmean``, ``nancov``)."""
    mean = np.nanmean(features, axis=0)
    whole = features[~np.isnan(features).any(axis=1)]
    if len(whole) < 2:
        return mean, np.zeros((features.shape[1], features.shape[1]))
    return mean, np.cov(whole, rowvar=False)


def distance(mean: np.ndarray, cov: np.ndarray, model: PristineModel) -> float:
    """``sqrt(d' pinv((C_p + C) / 2) d)``, d the difference of the means."""
    d = model.mean - mean
    return float(math.sqrt(max(0.0, d @ np.linalg.pinv((model.cov + cov) / 2) @ d)))


def niqe(img: np.ndarray, model: PristineModel) -> float:
    """The NIQE of an image in [0, 1] (RGB or gray) against a pristine model: lower is better."""
    features, _ = image_features(to_gray255(img))
    mean, cov = gaussian(features)
    return distance(mean, cov, model)


def fit_model(images: Iterable[np.ndarray], source: str, sharpness: float = SHARPNESS) -> PristineModel:
    """A pristine model fitted as the release's ``estimatemodelparam``: from each image, the
    blocks whose sharpness exceeds ``sharpness`` times the image's sharpest; all images'
    blocks pooled."""
    kept = []
    for img in images:
        features, sharp = image_features(to_gray255(img))
        kept.append(features[sharp > sharpness * sharp.max()])
    mean, cov = gaussian(np.vstack(kept))
    return PristineModel(mean, cov, source)


def read_model(path: str | Path) -> PristineModel:
    """A pristine model from a file: the authors' ``modelparameters.mat`` (``mu_prisparam``,
    ``cov_prisparam``), an ``.npz`` of the same (BasicSR's ``mu_pris_param``,
    ``cov_pris_param``), or our JSON (``mean``, ``cov``, ``source``). Data only: nothing
    in the file runs."""
    path = Path(path)
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        mean, cov, source = data["mean"], data["cov"], data.get("source", path.name)
    elif path.suffix == ".mat":
        from scipy.io import loadmat

        data = loadmat(path)
        mean, cov, source = data["mu_prisparam"], data["cov_prisparam"], path.name
    elif path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            keys = ("mu_pris_param", "cov_pris_param") if "mu_pris_param" in data else ("mu_prisparam", "cov_prisparam")
            mean, cov, source = data[keys[0]], data[keys[1]], path.name
    else:
        raise ValueError(f"{path}: a NIQE model is a .mat, .npz or .json file")
    mean = np.asarray(mean, dtype=np.float64).ravel()
    cov = np.asarray(cov, dtype=np.float64)
    if mean.shape != (36,) or cov.shape != (36, 36) or not (np.isfinite(mean).all() and np.isfinite(cov).all()):
        raise ValueError(f"{path}: a NIQE model is 36 finite means and a 36 x 36 covariance")
    return PristineModel(mean, cov, str(source))


def write_model(model: PristineModel, path: str | Path) -> None:
    Path(path).write_text(
        json.dumps({"source": model.source, "mean": model.mean.tolist(), "cov": model.cov.tolist()}, indent=1) + "\n",
        encoding="utf-8",
    )


MODEL_FILE = Path(__file__).with_name("niqe_pristine.json")  # ours: see the README, "NIQE"


def default_model() -> PristineModel:
    """The committed pristine model (fitted here with the release's recipe, see ``source``)."""
    return read_model(MODEL_FILE)


def fit_folder(folder: str | Path, *, sharpness: float = SHARPNESS) -> PristineModel:
    """:func:`fit_model` on every image of a folder (PNG, JPEG, BMP, TIFF), read as 8-bit RGB."""
    from PIL import Image

    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".tif"})
    if not paths:
        raise ValueError(f"{folder}: no images")

    def images() -> Iterator[np.ndarray]:
        for p in paths:
            with Image.open(p) as im:
                yield np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0

    digest = hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()[:16]
    source = (
        f"fitted by restorebench (the release's estimatemodelparam: 96x96 blocks, sharpness > {sharpness} x the "
        f"image's sharpest) on the {len(paths)} images of {Path(folder).name} (sha256 of their bytes {digest})"
    )
    return fit_model(images(), source, sharpness)


if __name__ == "__main__":  # python -m restorebench.score.niqe FOLDER OUT.json
    import sys

    write_model(fit_folder(sys.argv[1]), sys.argv[2])
