"""Classical denoisers: local filters, Wiener, NL-means, TV, wavelets and BM3D.

Every method takes a float32 ``HxWxC`` input (C = 1 or 3; noisy values may lie a
little outside [0, 1]) and returns a float32 array of the same shape; the harness
clips and quantises. All methods are deterministic.

Parameters default to ``None``, meaning "auto": chosen by the method's ``auto()``
rule from the noise level (:func:`tasks.denoise.levels.noise_level`: the true sigma
of a ``gaussian`` input, the true density of a ``saltpepper`` one, otherwise a
sigma estimated from the image). The rules were tuned on the five scikit-image
photos (astronaut, camera, chelsea, coffee, rocket) at Gaussian sigma 5/15/25/50 and
salt-and-pepper density 0.05/0.1/0.2, maximising the mean PSNR of 8-bit outputs;
each docstring quotes the evidence and ``tasks/denoise/README.md`` has the table.
Heavy libraries (OpenCV, SciPy, scikit-image, bm3d) are imported inside the methods.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator

from restorebench import Degraded, Method, Params, UserError, register
from restorebench.tasks.denoise.levels import NoiseLevel, impulse_sigma, interp, noise_level, step

__all__ = [
    "Identity",
    "Box",
    "Gaussian",
    "Binomial",
    "Median",
    "Bilateral",
    "Wiener",
    "NLMeans",
    "TV",
    "Wavelet",
    "BM3D",
]

_MIN_SIGMA = 0.5  # floor (0-255 units) for sigma-proportional rules: an estimated sigma may be ~0


def _size_field() -> Any:
    return Field(None, ge=1, le=99, description="window side in pixels; None: auto")


def _sigma_field(what: str = "noise std in 0-255 units") -> Any:
    return Field(None, gt=0, allow_inf_nan=False, description=f"{what}; None: auto")


class _Classical(Method):
    """Shared plumbing: task and kind, and ``resolve()`` filling ``None`` parameters from ``auto()``."""

    task = "denoise"
    kind = "classical"
    version = "1"

    @classmethod
    def auto(cls, level: NoiseLevel) -> dict[str, Any]:
        """The automatic value of every ``None``-default parameter for a noise level."""
        return {}

    def resolve(self, item: Degraded) -> dict[str, Any]:
        """The parameters used on ``item``: the explicit ones, ``auto()`` for those left ``None``."""
        values = self.params.model_dump()
        if any(v is None for v in values.values()):
            auto = self.auto(noise_level(item))
            values = {k: auto[k] if v is None else v for k, v in values.items()}
        return values


def _image(item: Degraded) -> np.ndarray:
    img = np.ascontiguousarray(item.image, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"expected an HxWx1 or HxWx3 image, got shape {img.shape}")
    return img


def _like(out: np.ndarray, img: np.ndarray) -> np.ndarray:
    """``out`` as float32 shaped like ``img`` (OpenCV drops a single channel axis)."""
    return np.asarray(out, dtype=np.float32).reshape(img.shape)


def _sigma(level: NoiseLevel, impulse_factor: float) -> float:
    """The Gaussian sigma a method works with; impulse noise maps to ``factor * impulse_sigma``."""
    sigma = impulse_factor * impulse_sigma(level.density) if level.impulse else level.sigma
    return max(sigma, _MIN_SIGMA)


# ---------------------------------------------------------------- local filters


@register
class Identity(_Classical):
    """Returns the noisy input unchanged: the floor every denoiser must beat."""

    name = "identity"
    description: ClassVar[str] = "no-op: returns the noisy input"

    def restore_one(self, item: Degraded) -> np.ndarray:
        return np.asarray(item.image, dtype=np.float32)


class _BoxParams(Params):
    size: int | None = _size_field()


@register
class Box(_Classical):
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

        img, size = _image(item), self.resolve(item)["size"]
        return _like(cv2.blur(img, (size, size)), img)


class _GaussianParams(Params):
    sigma: float | None = _sigma_field("blur std in pixels")


@register
class Gaussian(_Classical):
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

        img, sigma = _image(item), self.resolve(item)["sigma"]
        side = 2 * int(np.ceil(3 * sigma)) + 1
        return _like(cv2.GaussianBlur(img, (side, side), sigma), img)


class _BinomialParams(Params):
    passes: int = Field(1, ge=1, le=20, description="how many times the 5x5 kernel is applied")


@register
class Binomial(_Classical):
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

        out = img = _image(item)
        for _ in range(self.params.passes):
            out = cv2.sepFilter2D(out, cv2.CV_32F, self.KERNEL, self.KERNEL)
        return _like(out, img)


class _MedianParams(Params):
    size: int | None = _size_field()


@register
class Median(_Classical):
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

        img, size = _image(item), self.resolve(item)["size"]
        return _like(median_filter(img, size=(size, size, 1), mode="reflect"), img)


class _BilateralParams(Params):
    sigma_color: float | None = _sigma_field("range std in 0-255 units")
    sigma_space: float | None = Field(None, gt=0, le=20, description="spatial std in pixels; None: auto")


@register
class Bilateral(_Classical):
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
            return {"sigma_color": _sigma(level, 12.0), "sigma_space": 3.0}
        k = interp(level.sigma, [(5, 3.0), (25, 4.0), (50, 5.0)])
        return {"sigma_color": k * _sigma(level, 1.0), "sigma_space": 3.0}

    def restore_one(self, item: Degraded) -> np.ndarray:
        import cv2

        img, p = _image(item), self.resolve(item)
        out = cv2.bilateralFilter(img, -1, p["sigma_color"] / 255.0, p["sigma_space"])
        return _like(out, img)


class _WienerParams(Params):
    size: int | None = _size_field()
    sigma: float | None = _sigma_field("noise std assumed by the filter, 0-255 units")


@register
class Wiener(_Classical):
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
            return {"size": 5, "sigma": _sigma(level, 2.0)}
        return {"size": step(level.sigma, [(0, 3), (10, 5), (37.5, 7)]), "sigma": 1.2 * _sigma(level, 1.0)}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from scipy.signal import wiener

        img, p = _image(item), self.resolve(item)
        noise = (p["sigma"] / 255.0) ** 2
        out = np.empty_like(img)
        with np.errstate(divide="ignore", invalid="ignore"):  # flat windows: SciPy keeps their mean
            for c in range(img.shape[2]):
                out[..., c] = wiener(img[..., c].astype(np.float64), (p["size"], p["size"]), noise)
        return out


# ---------------------------------------------------------------- non-local, variational, transform


class _NLMeansParams(Params):
    h: float | None = _sigma_field("filter strength in 0-255 units")
    sigma: float | None = _sigma_field("noise std given to the filter, 0-255 units")
    patch_size: int = Field(5, ge=1, le=15)
    patch_distance: int = Field(6, ge=1, le=21, description="search radius in pixels")


@register
class NLMeans(_Classical):
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
        sigma = _sigma(level, 1.0)
        k = 1.0 if level.impulse else interp(level.sigma, [(5, 0.8), (15, 0.6), (25, 0.55), (50, 0.5)])
        return {"h": k * sigma, "sigma": sigma}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from skimage.restoration import denoise_nl_means

        img, p = _image(item), self.resolve(item)
        out = denoise_nl_means(
            img,
            patch_size=p["patch_size"],
            patch_distance=p["patch_distance"],
            h=p["h"] / 255.0,
            sigma=p["sigma"] / 255.0,
            fast_mode=True,
            channel_axis=-1,
        )
        return _like(out, img)


class _TVParams(Params):
    weight: float | None = _sigma_field("Chambolle weight, [0, 1] image units")


@register
class TV(_Classical):
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
            return {"weight": _sigma(level, 2.0) / 255.0}
        k = interp(level.sigma, [(5, 0.5), (15, 0.7), (25, 0.8), (50, 1.0)])
        return {"weight": k * _sigma(level, 1.0) / 255.0}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from skimage.restoration import denoise_tv_chambolle

        img, weight = _image(item), self.resolve(item)["weight"]
        return _like(denoise_tv_chambolle(img, weight=weight, channel_axis=-1), img)


class _WaveletParams(Params):
    sigma: float | None = _sigma_field("noise std given to BayesShrink, 0-255 units")
    wavelet: str = Field("db2", description="a PyWavelets discrete wavelet (db1, db2, sym4, coif1, ...)")

    @field_validator("wavelet")
    @classmethod
    def _known_wavelet(cls, name: str) -> str:
        import pywt

        if name not in pywt.wavelist(kind="discrete"):
            raise ValueError(f"unknown wavelet {name!r}; see pywt.wavelist(kind='discrete')")
        return name


@register
class Wavelet(_Classical):
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
        return {"sigma": _sigma(level, 2.0)}

    def restore_one(self, item: Degraded) -> np.ndarray:
        from skimage.restoration import denoise_wavelet

        img, p = _image(item), self.resolve(item)
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
        return _like(out, img)


class _BM3DParams(Params):
    sigma: float | None = _sigma_field()


@register
class BM3D(_Classical):
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
        return {"sigma": _sigma(level, 2.0)}

    def setup(self) -> None:
        try:
            import bm3d  # noqa: F401
        except ImportError:
            raise UserError(
                "denoise/bm3d needs the optional 'bm3d' package, which is not installed",
                hint="pip install restorebench[bm3d] (note: the bm3d package is free for non-commercial use only)",
            ) from None

    def restore_one(self, item: Degraded) -> np.ndarray:
        import bm3d

        img, sigma = _image(item), self.resolve(item)["sigma"] / 255.0
        if img.shape[2] == 3:
            out = bm3d.bm3d_rgb(img.astype(np.float64), sigma)
        else:
            out = bm3d.bm3d(img[..., 0].astype(np.float64), sigma)
        return _like(out, img)
