"""A synthetic stand-in for SID: clean sRGB -> long / short raw exposures as DNG files.

The clean image is *unprocessed* into camera raw (Brooks et al., "Unprocessing Images
for Learned Raw Denoising", CVPR 2019), exposed twice and written as DNGs that rawpy
reads back, so the synthetic pairs travel the same path as real SID files (Chen et al.,
"Learning to See in the Dark", CVPR 2018):

1. sRGB -> linear with the sRGB EOTF (IEC 61966-2-1; no tone-curve inversion).
2. linear sRGB -> camera RGB with ``normalise_rows(XYZ2CAM @ XYZ_FROM_SRGB)``, XYZ2CAM
   drawn from :data:`XYZ2CAMS` (the four matrices of Brooks et al.); rows sum to one,
   so white stays white. This is exactly how LibRaw reads ColorMatrix1 = XYZ2CAM back.
3. divide by white-balance gains: red ~ U(1.9, 2.4), blue ~ U(1.5, 1.9), green 1
   (Brooks et al.); AsShotNeutral = 1 / gains.
4. clip to [0, 1], mosaic to RGGB.
5. long exposure = ``round(512 + x * (16383 - 512))`` (14 bits, black 512), no noise.
6. short exposure = ``x / ratio`` with Poisson-Gaussian noise, in units of ``white -
   black``: ``shot * Poisson(x / (ratio * shot)) + N(0, read)``, so variance = ``shot *
   mean + read``; then to DN, rounded, clipped to [0, 16383]. In DN the variance is
   ``shot (W - B) mean_DN + read (W - B)^2 + 1/12`` (the last term: rounding).

Noise levels (Brooks et al.): ``log(shot) ~ U(log 1e-4, log 1.2e-2)`` and
``log(read) = 2.18 log(shot) + 1.20 + N(0, 0.26^2)`` (read is a variance). A given ISO
fixes ``shot = SHOT_PER_ISO * iso`` (gain proportional to ISO: ISO 100 -> 1e-4, ISO
12000 -> 1.2e-2); the sampled range corresponds to ISO 100-12000.

Every draw comes from the ``rng`` given, in a fixed order: the same generator state gives
byte-identical DNGs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from restorebench.tasks.lowlight.raw import XYZ_FROM_SRGB, encode_dng

__all__ = [
    "XYZ2CAMS",
    "SyntheticPair",
    "NoiseLevel",
    "make_pair",
    "sample_noise",
    "srgb_to_linear",
    "linear_to_srgb",
    "rgb_to_camera",
    "BLACK",
    "WHITE",
    "SHOT_PER_ISO",
]

BLACK, WHITE = 512, 16383  # SID's Sony a7S II levels
SHOT_PER_ISO = 1e-6  # shot-noise gain (units of white - black) per ISO step
LOG_SHOT_RANGE = (np.log(1e-4), np.log(1.2e-2))
READ_LINE = (2.18, 1.20, 0.26)  # slope, intercept, std of log(read) against log(shot)
RED_GAIN, BLUE_GAIN = (1.9, 2.4), (1.5, 1.9)

# XYZ -> camera matrices of four cameras, as listed by Brooks et al. (google-research
# "unprocessing", from the Adobe DNG converter's profiles).
XYZ2CAMS = np.array(
    [
        [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
        [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
        [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
        [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
    ]
)


@dataclass(frozen=True)
class NoiseLevel:
    """Poisson-Gaussian parameters in units of ``white - black``: var = shot * mean + read."""

    shot: float
    read: float  # a variance
    iso: float


@dataclass(frozen=True, eq=False)
class SyntheticPair:
    """A synthetic SID pair: DNG bytes of both exposures, their mosaics and the draws."""

    long_dng: bytes
    short_dng: bytes
    long: np.ndarray  # uint16 RGGB mosaic
    short: np.ndarray
    ratio: float
    noise: NoiseLevel | None
    wb: tuple[float, float, float]  # white-balance gains R, G, B
    xyz2cam: np.ndarray


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """The sRGB EOTF (IEC 61966-2-1), float64."""
    x = np.asarray(x, np.float64)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """The inverse of :func:`srgb_to_linear` (negative inputs clipped to 0), float64."""
    x = np.clip(np.asarray(x, np.float64), 0.0, None)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def rgb_to_camera(xyz2cam: np.ndarray) -> np.ndarray:
    """Linear sRGB -> camera RGB: ``XYZ2CAM @ XYZ_FROM_SRGB`` with rows normalised to sum 1."""
    m = np.asarray(xyz2cam, np.float64) @ XYZ_FROM_SRGB
    return m / m.sum(axis=1, keepdims=True)


def sample_noise(rng: np.random.Generator, iso: float | None = None) -> NoiseLevel:
    """Shot and read noise as in Brooks et al.; ``iso`` fixes the shot gain, else it is drawn."""
    log_shot = rng.uniform(*LOG_SHOT_RANGE) if iso is None else float(np.log(SHOT_PER_ISO * iso))
    slope, intercept, std = READ_LINE
    log_read = slope * log_shot + intercept + rng.normal(0.0, std)
    shot = float(np.exp(log_shot))
    return NoiseLevel(shot=shot, read=float(np.exp(log_read)), iso=shot / SHOT_PER_ISO)


def _mosaic_rggb(cam: np.ndarray) -> np.ndarray:
    h, w, _ = cam.shape
    out = np.empty((h, w), np.float64)
    out[0::2, 0::2] = cam[0::2, 0::2, 0]
    out[0::2, 1::2] = cam[0::2, 1::2, 1]
    out[1::2, 0::2] = cam[1::2, 0::2, 1]
    out[1::2, 1::2] = cam[1::2, 1::2, 2]
    return out


def unprocess(clean: np.ndarray, xyz2cam: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Clean sRGB (H, W, 3), even sides -> linear RGGB mosaic in [0, 1] (float64)."""
    lin = srgb_to_linear(clean)
    cam = lin @ rgb_to_camera(xyz2cam).T / gains
    return _mosaic_rggb(np.clip(cam, 0.0, 1.0))


def _to_dn(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(BLACK + x * (WHITE - BLACK)), 0, WHITE).astype(np.uint16)


def _expose_short(x: np.ndarray, ratio: float, level: NoiseLevel, rng: np.random.Generator) -> np.ndarray:
    mean = x / ratio
    electrons = rng.poisson(mean / level.shot)
    noisy = level.shot * electrons + rng.normal(0.0, np.sqrt(level.read), size=x.shape)
    return _to_dn(noisy)


def make_pair(
    clean: np.ndarray,
    rng: np.random.Generator,
    *,
    ratio: float,
    iso: float | None = None,
    noise: bool = True,
) -> SyntheticPair:
    """Long and short raw exposures of a clean sRGB image, as DNG bytes.

    ``clean`` is float HxWx3 in [0, 1] with even sides (at least 22, LibRaw's minimum).
    ``noise=False`` gives a noiseless short exposure (``round(x / ratio)``), for tests.
    Draw order: camera matrix index, red gain, blue gain, noise level, Poisson, Gaussian.

    >>> pair = make_pair(np.full((32, 32, 3), 0.5), np.random.default_rng(0), ratio=100)
    >>> pair.long.shape, pair.short.dtype
    ((32, 32), dtype('uint16'))
    """
    clean = np.asarray(clean)
    if clean.ndim != 3 or clean.shape[2] != 3 or clean.shape[0] % 2 or clean.shape[1] % 2:
        raise ValueError(f"expected an HxWx3 image with even sides, got shape {clean.shape}")
    if not ratio > 1:
        raise ValueError(f"ratio must be > 1, got {ratio}")
    xyz2cam = XYZ2CAMS[rng.integers(len(XYZ2CAMS))]
    gains = np.array([rng.uniform(*RED_GAIN), 1.0, rng.uniform(*BLUE_GAIN)])
    level = sample_noise(rng, iso) if noise else None
    x = unprocess(clean, xyz2cam, gains)
    long = _to_dn(x)
    short = _expose_short(x, ratio, level, rng) if level else _to_dn(x / ratio)
    tags = {
        "cfa": "RGGB",
        "black_level": BLACK,
        "white_level": WHITE,
        "as_shot_neutral": tuple(1.0 / gains),
        "color_matrix": xyz2cam,
    }
    return SyntheticPair(
        long_dng=encode_dng(long, **tags),
        short_dng=encode_dng(short, **tags),
        long=long,
        short=short,
        ratio=float(ratio),
        noise=level,
        wb=tuple(float(g) for g in gains),
        xyz2cam=xyz2cam,
    )  # type: ignore[arg-type]
