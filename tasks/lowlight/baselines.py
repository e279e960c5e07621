"""Classical low-light baselines: the amplified camera pipeline and sRGB tone fixes.

Raw inputs (degradations ``lowlight`` and ``sid``): ``camera`` is the traditional pipeline
on the amplified raw, ``render(raw_file, ratio=ratio)`` -- black-subtract, multiply by the
true exposure ratio, clip at white, then rawpy/LibRaw with the camera white balance, AHD
demosaicing and LibRaw's gamma -- the "traditional pipeline" of Chen et al., "Learning to
See in the Dark" (CVPR 2018). The ``camera_*`` variants post-process its output:
histogram equalisation, an automatic gamma, NL-means or BM3D (the "+ BM3D" baseline of
SID). They are told the ratio (``uses_true_level = True``).

sRGB inputs (degradation ``underexpose``): ``gamma`` and ``histeq`` apply the same tone
fixes to the 8-bit image; they do not read the ratio.

Each method checks ``item.degradation`` and raises a ``ValueError`` naming the right
method for the other kind of input. Heavy libraries are imported inside the methods.
The noise model the raw inputs carry is that of Brooks et al., "Unprocessing Images for
Learned Raw Denoising" (CVPR 2019); see :mod:`restorebench.tasks.lowlight.synthetic`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from restorebench import Degraded, Method, Params, register
from restorebench.imaging import bm3d_denoise, nl_means, noise_sigma, require_bm3d
from restorebench.tasks.lowlight.degradations import require_raw, require_srgb
from restorebench.tasks.lowlight.raw import render

__all__ = [
    "Camera",
    "CameraHistEq",
    "CameraGamma",
    "CameraNLMeans",
    "CameraBM3D",
    "Gamma",
    "HistEq",
    "equalize_luma",
    "auto_gamma",
]

_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601 (JPEG YCbCr) luma weights


def equalize_luma(img: np.ndarray) -> np.ndarray:
    """Histogram-equalise the luma of an sRGB image, keeping its chroma.

    RGB -> full-range YCbCr (BT.601, as JPEG), ``Y`` replaced by
    ``skimage.exposure.equalize_hist(Y, nbins=256)``, back to RGB, clipped to [0, 1].
    A 1-channel image is equalised directly.
    """
    from skimage.exposure import equalize_hist

    img = np.asarray(img, np.float64)
    if img.shape[2] == 1:
        return equalize_hist(img[..., 0], nbins=256)[..., None].astype(np.float32)
    y = img @ _LUMA
    cb, cr = (img[..., 2] - y) / 1.772, (img[..., 0] - y) / 1.402
    y = equalize_hist(y, nbins=256)
    r, b = y + 1.402 * cr, y + 1.772 * cb
    g = (y - _LUMA[0] * r - _LUMA[2] * b) / _LUMA[1]
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 1.0).astype(np.float32)


def auto_gamma(img: np.ndarray, target: float = 0.4) -> np.ndarray:
    """``img ** gamma`` with gamma chosen so the mean luma becomes ``target``.

    ``gamma = log(target) / log(mean luma)`` (BT.601 luma of the clipped image), limited to
    [0.1, 10]; a power curve brightens the shadows more than a plain gain and never clips.
    """
    img = np.clip(np.asarray(img, np.float64), 0.0, 1.0)
    luma = img[..., 0] if img.shape[2] == 1 else img @ _LUMA
    mean = float(np.clip(luma.mean(), 1e-4, 1 - 1e-4))
    gamma = float(np.clip(np.log(target) / np.log(mean), 0.1, 10.0))
    return (img**gamma).astype(np.float32)


class _Camera(Method):
    """Shared plumbing: render the amplified raw, then ``finish`` the sRGB result."""

    task = "lowlight"
    kind = "classical"
    version = "1"
    uses_true_level = True
    warm_up = False  # a warm-up crop would still render the whole raw file

    def restore_one(self, item: Degraded) -> np.ndarray:
        require_raw(item, self.qualified_name, "lowlight/gamma or lowlight/histeq")
        rgb = render(item.extras["raw_file"], ratio=float(item.params["ratio"]), name=f"{item.degradation} input")
        return self.finish(rgb)

    def finish(self, rgb: np.ndarray) -> np.ndarray:
        return rgb


@register
class Camera(_Camera):
    """The traditional pipeline on the amplified raw: ``render(raw_file, ratio=ratio)``."""

    name = "camera"
    description: ClassVar[str] = "amplified raw through rawpy/LibRaw (SID's traditional pipeline)"


@register
class CameraHistEq(_Camera):
    """``camera`` + histogram equalisation of the luma (:func:`equalize_luma`)."""

    name = "camera_histeq"
    description: ClassVar[str] = "amplified camera pipeline + luma histogram equalisation"

    def finish(self, rgb: np.ndarray) -> np.ndarray:
        return equalize_luma(rgb)


class _GammaParams(Params):
    target: float = Field(0.4, gt=0, lt=1, description="mean luma after the gamma curve")


@register
class CameraGamma(_Camera):
    """``camera`` + automatic gamma to a mean luma of ``target`` (:func:`auto_gamma`)."""

    name = "camera_gamma"
    description: ClassVar[str] = "amplified camera pipeline + auto gamma (mean luma -> 0.4)"
    Params = _GammaParams

    def finish(self, rgb: np.ndarray) -> np.ndarray:
        return auto_gamma(rgb, self.params.target)


class _NLMeansParams(Params):
    h_factor: float = Field(2.4, gt=0, le=10, description="filter strength h = h_factor * estimated sigma")
    patch_size: int = Field(5, ge=1, le=15)
    patch_distance: int = Field(6, ge=1, le=21, description="search radius in pixels")


def _estimated_sigma(rgb: np.ndarray) -> float:
    return max(noise_sigma(rgb), 1e-3)


@register
class CameraNLMeans(_Camera):
    """``camera`` + NL-means (scikit-image, fast mode, 5x5 patches, radius 6).

    The noise of the amplified render is signal-dependent and demosaiced (correlated);
    one global sigma is estimated from it (``estimate_sigma``, wavelet MAD, averaged over
    channels), which underestimates this noise, so the filter uses a strong
    ``h = h_factor * sigma``. Tuning (mean PSNR, dB, the five bundled photos, synthetic
    ``lowlight`` ratio 100 / 300): h_factor 0.8 13.94 / 11.37, 1.6 18.15 / 15.50,
    2.4 18.74 / 15.99, 3.2 18.60 / 16.00.
    """

    name = "camera_nlmeans"
    description: ClassVar[str] = "amplified camera pipeline + NL-means (sigma estimated)"
    Params = _NLMeansParams

    def finish(self, rgb: np.ndarray) -> np.ndarray:
        p, sigma = self.params, _estimated_sigma(rgb)
        out = nl_means(rgb, h=p.h_factor * sigma, sigma=sigma, patch_size=p.patch_size, patch_distance=p.patch_distance)
        return np.asarray(out, np.float32)


class _BM3DParams(Params):
    sigma_factor: float = Field(4.8, gt=0, le=10, description="BM3D's sigma = sigma_factor * estimated sigma")


@register
class CameraBM3D(_Camera):
    """``camera`` + BM3D (``bm3d.bm3d_rgb``), sigma estimated as for ``camera_nlmeans``.

    The estimate underestimates the demosaiced, signal-dependent noise (see
    ``camera_nlmeans``), so BM3D is given ``sigma_factor * sigma``. Tuning as for
    ``camera_nlmeans`` (mean PSNR, dB, five bundled photos, ratio 100 / 300): factor 1
    13.48 / 10.93, 1.6 14.84 / 12.28, 2.4 17.09 / 14.38, 3.6 18.83 / 16.02, 4.8 19.18 /
    16.35 (on 4 dead-leaves images 3.6 was best: 15.62 / 13.85; 4.8: 15.21 / 13.63). Optional extra
    ``pip install restorebench[bm3d]`` (non-commercial licence); slow (seconds per
    megapixel), so it is not in the default suite.
    """

    name = "camera_bm3d"
    description: ClassVar[str] = "amplified camera pipeline + BM3D (optional extra; non-commercial licence)"
    Params = _BM3DParams

    def setup(self) -> None:
        require_bm3d(self.qualified_name)

    def finish(self, rgb: np.ndarray) -> np.ndarray:
        out = bm3d_denoise(rgb, self.params.sigma_factor * _estimated_sigma(rgb), self.qualified_name)
        return np.asarray(out, np.float32)


# ---------------------------------------------------------------- sRGB inputs


@register
class Gamma(Method):
    """Automatic gamma on an sRGB input (:func:`auto_gamma`, mean luma -> ``target``); blind."""

    name = "gamma"
    task = "lowlight"
    kind = "classical"
    version = "1"
    description: ClassVar[str] = "auto gamma on sRGB (mean luma -> 0.4)"
    Params = _GammaParams

    def restore_one(self, item: Degraded) -> np.ndarray:
        return auto_gamma(require_srgb(item, self.qualified_name, "lowlight/camera_*"), self.params.target)


@register
class HistEq(Method):
    """Histogram equalisation of the luma of an sRGB input (:func:`equalize_luma`); blind."""

    name = "histeq"
    task = "lowlight"
    kind = "classical"
    version = "1"
    description: ClassVar[str] = "luma histogram equalisation on sRGB"

    def restore_one(self, item: Degraded) -> np.ndarray:
        return equalize_luma(require_srgb(item, self.qualified_name, "lowlight/camera_*"))
