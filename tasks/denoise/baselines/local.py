"""Local filters: identity, box, Gaussian, binomial, median, bilateral, Wiener."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from restorebench import Degraded, Params, register
from restorebench.tasks.denoise.baselines.common import (
    Classical,
    image_of,
    like,
    sigma_field,
    sigma_for,
    size_field,
)
from restorebench.tasks.denoise.levels import NoiseLevel, interp, step


@register
class Identity(Classical):
    """Returns the noisy input unchanged: the floor every denoiser must beat."""

    name = "identity"
    description: ClassVar[str] = "no-op: returns the noisy input"

    def restore_one(self, item: Degraded) -> np.ndarray:
        return np.asarray(item.image, dtype=np.float32)


class _BoxParams(Params):
    size: int | None = size_field()


@register
class Box(Classical):
    """Mean of a ``size x size`` window (OpenCV ``blur``, reflect-101 border).

    Auto ``size``: Gaussian sigma < 8 -> 1 (no filtering), < 37.5 -> 3, else 7;
    density < 0.15 -> 5, else 7. Tuning (mean PSNR, dB): sigma 5: 1 34.25 / 3 30.07;
    sigma 15: 3 28.73 / 5 27.05; sigma 25: 3 26.96 / 5 26.52; sigma 50: 5 24.71 /
    7 24.75; density 0.1: 3 22.69 / 5 23.97 / 7 23.89; 0.2: 5 21.23 / 7 21.54.
    """

    name = "box"
    description: ClassVar[str] = "box (mean) filter"
    uses_true_level = True
    Params = _BoxParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        if level.impulse:
            return {"size": step(level.density, [(0, 5), (0.15, 7)])}
        return {"size": step(level.sigma, [(0, 1), (8, 3), (37.5, 7)])}

    def restore_one(self, item: Degraded) -> np.ndarray:
        import cv2

        img, size = image_of(item), self.resolve(item)["size"]
        return like(cv2.blur(img, (size, size)), img)


class _GaussianParams(Params):
    sigma: float | None = sigma_field("blur std in pixels")


@register
class Gaussian(Classical):
    """Gaussian blur (OpenCV ``GaussianBlur``, kernel side ``2 ceil(3 sigma) + 1``, reflect-101).

    Auto ``sigma`` (pixels), interpolated linearly in the noise sigma: 5 -> 0.45,
    15 -> 0.8, 25 -> 1.05, 50 -> 1.75; in the density: 0.05 -> 1.2, 0.1 -> 1.5,
    0.2 -> 2.0. Tuning (mean PSNR, dB): sigma 15: 0.6 29.35 / 0.8 29.60 / 1.0 29.10;
    sigma 25: 0.8 27.32 / 1.0 27.63 / 1.2 27.54; sigma 50: 1.5 25.29 / 2.0 25.34;
    density 0.1: 1.2 24.09 / 1.5 24.39 / 2.0 24.32.
    """

    name = "gaussian"
    description: ClassVar[str] = "Gaussian blur"
    uses_true_level = True
    Params = _GaussianParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        if level.impulse:
            return {"sigma": interp(level.density, [(0.05, 1.2), (0.1, 1.5), (0.2, 2.0)])}
        return {"sigma": interp(level.sigma, [(5, 0.45), (15, 0.8), (25, 1.05), (50, 1.75)])}

    def restore_one(self, item: Degraded) -> np.ndarray:
        import cv2

        img, sigma = image_of(item), self.resolve(item)["sigma"]
        side = 2 * int(np.ceil(3 * sigma)) + 1
        return like(cv2.GaussianBlur(img, (side, side), sigma), img)


class _BinomialParams(Params):
    passes: int = Field(1, ge=1, le=20, description="how many times the 5x5 kernel is applied")


@register
class Binomial(Classical):
    """Separable binomial filter ``[1, 4, 6, 4, 1] / 16`` (Burt-Adelson), ``passes`` times.

    A fixed smoother that ignores the noise level (reflect-101 border). One pass: 28.95 /
    27.60 / 24.19 dB at sigma 15 / 25 / 50; two passes win only at sigma 50 (25.22).
    """

    name = "binomial"
    description: ClassVar[str] = "binomial [1,4,6,4,1]/16 filter"
    Params = _BinomialParams
    KERNEL: ClassVar[np.ndarray] = np.array([1, 4, 6, 4, 1], dtype=np.float32) / 16

    def restore_one(self, item: Degraded) -> np.ndarray:
        import cv2

        out = img = image_of(item)
        for _ in range(self.params.passes):
            out = cv2.sepFilter2D(out, cv2.CV_32F, self.KERNEL, self.KERNEL)
        return like(out, img)


class _MedianParams(Params):
    size: int | None = size_field()


@register
class Median(Classical):
    """Per-channel median of a ``size x size`` window (SciPy ``median_filter``, reflect border).

    Auto ``size``: Gaussian sigma < 8 -> 1, < 20 -> 3, < 37.5 -> 5, else 7; density
    < 0.15 -> 3, else 5. Tuning (mean PSNR, dB): sigma 15: 3 28.51 / 5 27.50; sigma 25:
    3 26.08 / 5 26.53 / 7 25.98; sigma 50: 5 23.87 / 7 24.41 / 9 24.29; density 0.05:
    3 30.94 / 5 28.13; 0.1: 3 30.23 / 5 27.95; 0.2: 3 27.38 / 5 27.54.
    """

    name = "median"
    description: ClassVar[str] = "median filter"
    uses_true_level = True
    Params = _MedianParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        if level.impulse:
            return {"size": step(level.density, [(0, 3), (0.15, 5)])}
        return {"size": step(level.sigma, [(0, 1), (8, 3), (20, 5), (37.5, 7)])}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from scipy.ndimage import median_filter

        img, size = image_of(item), self.resolve(item)["size"]
        return like(median_filter(img, size=(size, size, 1), mode="reflect"), img)


class _BilateralParams(Params):
    sigma_color: float | None = sigma_field("range std in 0-255 units")
    sigma_space: float | None = Field(None, gt=0, le=20, description="spatial std in pixels; None: auto")


@register
class Bilateral(Classical):
    """Bilateral filter (OpenCV ``bilateralFilter`` on float32, window radius 1.5 sigma_space).

    Colour pixels are compared by their L1 distance over the channels (OpenCV), which
    is why the range std is several noise sigmas. Auto: ``sigma_space`` 3 and
    ``sigma_color`` = k sigma, k interpolated 5 -> 3, 25 -> 4, 50 -> 5; impulse noise:
    ``sigma_color`` = 12 x 127.5 sqrt(density) (a near-Gaussian blur). Tuning (mean PSNR,
    dB, k/sigma_space): sigma 15: 3/3 31.53, 4/3 31.66, 4/2 31.72; sigma 25: 4/3 28.98,
    5/2 28.92; sigma 50: 4/3 25.36, 5/3 25.70, 6/3 25.75; density 0.1: 8/3 23.43, 12/3 25.01.
    """

    name = "bilateral"
    description: ClassVar[str] = "bilateral filter (Tomasi & Manduchi 1998)"
    uses_true_level = True
    Params = _BilateralParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        if level.impulse:
            return {"sigma_color": sigma_for(level, 12.0), "sigma_space": 3.0}
        k = interp(level.sigma, [(5, 3.0), (25, 4.0), (50, 5.0)])
        return {"sigma_color": k * sigma_for(level, 1.0), "sigma_space": 3.0}

    def restore_one(self, item: Degraded) -> np.ndarray:
        import cv2

        img, p = image_of(item), self.resolve(item)
        out = cv2.bilateralFilter(img, -1, p["sigma_color"] / 255.0, p["sigma_space"])
        return like(out, img)


class _WienerParams(Params):
    size: int | None = size_field()
    sigma: float | None = sigma_field("noise std assumed by the filter, 0-255 units")


@register
class Wiener(Classical):
    """Adaptive local Wiener filter (SciPy ``signal.wiener``, Lee 1980), per channel.

    Auto: noise std 1.2 x sigma (overestimating the noise helps), ``size`` sigma < 10 -> 3,
    < 37.5 -> 5, else 7; impulse noise: noise std 2 x 127.5 sqrt(density), size 5.
    Tuning (mean PSNR, dB, factor/size): sigma 15: 1.0/5 30.55, 1.2/5 30.77, 1.5/5 30.18;
    sigma 25: 1.0/5 27.71, 1.2/5 28.15; sigma 50: 1.2/5 24.77, 1.2/7 25.04; sigma 5:
    1.2/3 37.64; density 0.1: 1.5/5 23.12, 2/5 23.63.
    """

    name = "wiener"
    description: ClassVar[str] = "adaptive Wiener filter"
    uses_true_level = True
    Params = _WienerParams

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        if level.impulse:
            return {"size": 5, "sigma": sigma_for(level, 2.0)}
        return {"size": step(level.sigma, [(0, 3), (10, 5), (37.5, 7)]), "sigma": 1.2 * sigma_for(level, 1.0)}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from scipy.signal import wiener

        img, p = image_of(item), self.resolve(item)
        noise = (p["sigma"] / 255.0) ** 2
        out = np.empty_like(img)
        with np.errstate(divide="ignore", invalid="ignore"):  # flat windows: SciPy keeps their mean
            for c in range(img.shape[2]):
                out[..., c] = wiener(img[..., c].astype(np.float64), (p["size"], p["size"]), noise)
        return out


# ---------------------------------------------------------------- non-local, variational, transform
