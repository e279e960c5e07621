"""Denoisers built on an image prior: NL-means (self-similarity), total variation, wavelet
shrinkage and BM3D (an optional extra under a non-commercial licence)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from restorebench import Degraded, Params, register
from restorebench.imaging import bm3d_denoise, nl_means, require_bm3d
from restorebench.tasks.denoise.baselines.common import (
    Classical,
    image_of,
    like,
    sigma_field,
    sigma_for,
)
from restorebench.tasks.denoise.levels import NoiseLevel, interp


class _NLMeansParams(Params):
    h: float | None = sigma_field("filter strength in 0-255 units")
    sigma: float | None = sigma_field("noise std given to the filter, 0-255 units")
    patch_size: int = Field(5, ge=1, le=15)
    patch_distance: int = Field(6, ge=1, le=21, description="search radius in pixels")


@register
class NLMeans(Classical):
    """Non-local means (scikit-image ``denoise_nl_means``, fast mode, patches joint over channels).

    The filter is told the noise sigma (it subtracts the expected patch distance
    2 sigma^2). Auto: ``sigma`` = the noise sigma, ``h`` = k sigma with k interpolated
    5 -> 0.8, 15 -> 0.6, 25 -> 0.55, 50 -> 0.5; impulse noise: sigma = h = 127.5
    sqrt(density). Patches 5x5, search radius 6 (radius 4: -0.2 to -0.4 dB at half the
    time; 8: +0.1 at 15, 0 at 25/50, 1.7x the time). Tuning (mean PSNR, dB, radius 6):
    sigma 15: k 0.5 32.43 / 0.6 32.56 / 0.7 32.42; sigma 25: 0.5 30.19 / 0.6 30.17 /
    0.8 29.61; sigma 50: 0.4 26.82 / 0.5 27.03 / 0.6 26.97; density 0.1: 0.7 23.42 /
    1 25.03 / 1.5 24.58.
    """

    name = "nlmeans"
    description: ClassVar[str] = "non-local means (Buades et al. 2005)"
    uses_true_level = True
    Params = _NLMeansParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        sigma = sigma_for(level, 1.0)
        k = 1.0 if level.impulse else interp(level.sigma, [(5, 0.8), (15, 0.6), (25, 0.55), (50, 0.5)])
        return {"h": k * sigma, "sigma": sigma}

    def restore_one(self, item: Degraded) -> np.ndarray:
        img, p = image_of(item), self.resolve(item)
        out = nl_means(
            img,
            h=p["h"] / 255.0,
            sigma=p["sigma"] / 255.0,
            patch_size=p["patch_size"],
            patch_distance=p["patch_distance"],
        )
        return like(out, img)


class _TVParams(Params):
    weight: float | None = sigma_field("Chambolle weight, [0, 1] image units")


@register
class TV(Classical):
    """Total-variation denoising, Chambolle's projection algorithm (scikit-image), vectorial TV.

    Auto ``weight`` = k sigma / 255 with k interpolated 5 -> 0.5, 15 -> 0.7, 25 -> 0.8,
    50 -> 1.0; impulse noise: 2 x 127.5 sqrt(density) / 255. Tuning (mean PSNR, dB):
    sigma 15: k 0.6 31.25 / 0.7 31.35 / 0.8 31.24; sigma 25: 0.7 28.97 / 0.8 29.09 /
    0.9 29.02; sigma 50: 0.9 26.45 / 1.0 26.48 / 1.1 25.96; density 0.1: 1.5 24.11 /
    2 24.60 / 2.5 24.31.
    """

    name = "tv"
    description: ClassVar[str] = "total variation, Chambolle (2004)"
    uses_true_level = True
    Params = _TVParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        if level.impulse:
            return {"weight": sigma_for(level, 2.0) / 255.0}
        k = interp(level.sigma, [(5, 0.5), (15, 0.7), (25, 0.8), (50, 1.0)])
        return {"weight": k * sigma_for(level, 1.0) / 255.0}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        img, weight = image_of(item), self.resolve(item)["weight"]
        return like(denoise_tv_chambolle(img, weight=weight, channel_axis=-1), img)


class _WaveletParams(Params):
    sigma: float | None = sigma_field("noise std given to BayesShrink, 0-255 units")
    wavelet: str = Field("db2", description="a PyWavelets discrete wavelet (db1, db2, sym4, coif1, ...)")

    @field_validator("wavelet")
    @classmethod
    def _known_wavelet(cls, name: str) -> str:
        import pywt

        if name not in pywt.wavelist(kind="discrete"):
            raise ValueError(f"unknown wavelet {name!r}; see pywt.wavelist(kind='discrete')")
        return name


@register
class Wavelet(Classical):
    """Wavelet soft thresholding with BayesShrink (scikit-image ``denoise_wavelet``, Chang et al. 2000).

    Colour images are denoised in YCbCr. Auto ``sigma`` = the noise sigma (1.0 x;
    0.9 and 1.1 lose 0.3-1.1 dB); impulse noise: 2 x 127.5 sqrt(density). Wavelet db2:
    mean PSNR at sigma 15 / 25 / 50: db1 30.38 / 27.98 / 25.31, db2 30.88 / 28.52 /
    25.83, db3 30.87 / 28.38 / 25.29, sym4 30.82 / 28.18 / 24.70, coif2 30.26 / 27.31 /
    23.23. Density 0.1: factor 1.5 22.45 / 2 23.44 / 3 22.74.
    """

    name = "wavelet"
    description: ClassVar[str] = "wavelet BayesShrink"
    uses_true_level = True
    Params = _WaveletParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        return {"sigma": sigma_for(level, 2.0)}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from skimage.restoration import denoise_wavelet

        img, p = image_of(item), self.resolve(item)
        color = img.shape[2] == 3
        out = denoise_wavelet(
            img.astype(np.float64),
            sigma=p["sigma"] / 255.0,
            wavelet=p["wavelet"],
            mode="soft",
            method="BayesShrink",
            rescale_sigma=True,
            convert2ycbcr=color,
            channel_axis=-1,
        )
        return like(out, img)


class _BM3DParams(Params):
    sigma: float | None = sigma_field()


@register
class BM3D(Classical):
    """BM3D (Dabov et al. 2007) via the reference ``bm3d`` package; colour in opponent space.

    Optional extra: ``pip install restorebench[bm3d]``; the ``bm3d`` package is free for
    non-commercial use only. Auto ``sigma`` = the noise sigma (mean PSNR at sigma 15 /
    25 / 50: 34.24 / 31.85 / 28.92 dB); impulse noise: 2 x 127.5 sqrt(density) (density
    0.1: factor 1 19.68, 1.5 24.34, 2 25.94, 3 25.68 dB). Slow: about 15 s for a 512x512
    colour image on one core, so it is not in the default suite.
    """

    name = "bm3d"
    description: ClassVar[str] = "BM3D (optional extra; non-commercial licence)"
    uses_true_level = True
    Params = _BM3DParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        return {"sigma": sigma_for(level, 2.0)}

    def setup(self) -> None:
        require_bm3d(self.qualified_name)

    def restore_one(self, item: Degraded) -> np.ndarray:
        img, sigma = image_of(item), self.resolve(item)["sigma"] / 255.0
        return like(bm3d_denoise(img, sigma, self.qualified_name), img)
