"""Full-reference image-quality metrics (PSNR, SSIM) on numpy arrays.

Conventions (BasicSR / MATLAB, so that scores are comparable with published tables):

* Images are float ``HxW`` or ``HxWxC`` arrays (C in {1, 3}, RGB order) in [0, 1], any
  float dtype; computation is float64. Integer arrays are rejected (divide by 255).
* Scores are reported on 8-bit-quantised outputs (:func:`quantize_8bit`), as the
  MATLAB/BasicSR pipelines score images saved as 8-bit PNGs.
* ``crop_border`` px are removed from each side *before* Y conversion (BasicSR order).
* ``y_channel=True`` scores the BT.601 luma of MATLAB ``rgb2ycbcr`` on the 0-255 scale
  (16-235), unrounded, with data range 255 (BasicSR reads BGR and reverses the
  coefficients; Y is the same). A one-channel image is scored on its own gray
  values * 255, without 16-235 scaling, as the MATLAB scripts do.
* SSIM is Wang et al. (2004): 11x11 Gaussian window (sigma 1.5), K1=0.01, K2=0.03,
  statistics computed only where the window lies fully inside the image ("valid"
  region, 5 px dropped per side), averaged per channel and then over channels.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from restorebench.imaging.color import BT601, bt601_luma

__all__ = ["quantize_8bit", "rgb_to_y", "crop_border", "psnr", "ssim"]

_SSIM_WIN, _SSIM_SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03
_SSIM_KERNEL = cv2.getGaussianKernel(_SSIM_WIN, _SSIM_SIGMA, cv2.CV_64F)  # (11, 1), sums to 1

_REFS = """
    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Trans.
       Image Processing 13(4):600-612, 2004.
    .. [2] X. Wang et al., BasicSR (``basicsr/metrics/psnr_ssim.py``,
       ``basicsr/utils/matlab_functions.py``), following MATLAB ``rgb2ycbcr``.
"""


def _cite(fn):
    """Append the shared numpydoc References section to ``fn.__doc__``."""
    fn.__doc__ = fn.__doc__.rstrip() + "\n" + _REFS
    return fn


def _floating(img: np.ndarray, name: str = "img") -> np.ndarray:
    img = np.asarray(img)
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(
            f"{name} must be a float array in [0, 1], got dtype {img.dtype}; "
            "convert 8-bit images with img.astype(np.float64) / 255."
        )
    return img


def _as_float64(img: np.ndarray, name: str = "img") -> np.ndarray:
    return _floating(img, name).astype(np.float64, copy=False)


@_cite
def quantize_8bit(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and round to the 8-bit grid, as when saving a PNG.

    Scores are reported on 8-bit-quantised outputs: pass restored images through this
    before :func:`psnr` / :func:`ssim`.

    Parameters
    ----------
    img : np.ndarray
        Float image in (approximately) [0, 1].

    Returns
    -------
    np.ndarray
        ``float32`` array of the same shape with values ``k / 255``, k in 0..255.
    """
    x = np.clip(_as_float64(img), 0.0, 1.0)
    return (np.round(x * 255.0) / 255.0).astype(np.float32)


@_cite
def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of MATLAB ``rgb2ycbcr`` on the 0-255 scale (not rounded).

    ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for RGB in [0, 1] (white 235, black
    16). A one-channel image (``HxW``/``HxWx1``) is returned as its gray values * 255,
    without 16-235 scaling (MATLAB scores gray images on their own values).

    Parameters
    ----------
    img : np.ndarray
        ``HxW``, ``HxWx1`` or ``HxWx3`` (RGB) float image in [0, 1].

    Returns
    -------
    np.ndarray
        ``float64`` array of shape ``HxW``.
    """
    x = _as_float64(img)
    if x.ndim == 2 or (x.ndim == 3 and x.shape[2] == 1):
        return x.reshape(x.shape[:2]) * 255.0
    if x.ndim == 3 and x.shape[2] == 3:
        return bt601_luma(x)
    raise ValueError(f"rgb_to_y expects HxW, HxWx1 or HxWx3 (RGB), got shape {x.shape}.")


@_cite
def crop_border(img: np.ndarray, border: int) -> np.ndarray:
    """Remove ``border`` pixels from each spatial side (0 returns ``img`` unchanged).

    Parameters
    ----------
    img : np.ndarray
        ``HxW`` or ``HxWxC`` array.
    border : int
        Pixels to drop on the top, bottom, left and right (usually the SR scale).

    Returns
    -------
    np.ndarray
        View of shape ``(H - 2*border, W - 2*border[, C])``.

    Raises
    ------
    ValueError
        If ``border`` is negative or would leave an empty image.
    """
    border = int(border)
    if border < 0:
        raise ValueError(f"crop_border must be >= 0, got {border}; use 0 for no cropping.")
    if border == 0:
        return img
    h, w = img.shape[:2]
    if 2 * border >= min(h, w):
        raise ValueError(
            f"crop_border={border} would leave nothing of a {h}x{w} image; use crop_border < {(min(h, w) + 1) // 2}."
        )
    return img[border:-border, border:-border, ...]


_crop = crop_border  # psnr/ssim shadow the name with their keyword argument


_NOT_FINITE = "images contain NaN or inf; fix the restoration output (e.g. np.nan_to_num) before scoring."


def _prepare(restored, reference, data_range, border, y_channel, fast=False):
    """Validate, crop, optionally convert to Y; return (a, b, data_range) in float64.

    ``fast`` (PSNR without Y): the caller checks NaN/inf on its MSE (one scalar instead of two
    passes over the images) and subtracts in float64 without float64 copies of the inputs."""
    cast = not fast or y_channel
    a, b = (
        _as_float64(x, name) if cast else _floating(x, name)
        for x, name in ((restored, "restored"), (reference, "reference"))
    )
    if a.shape != b.shape:
        raise ValueError(
            f"restored has shape {a.shape} but reference has shape {b.shape}; "
            "resize or crop them to the same shape (HxW or HxWxC) first."
        )
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise ValueError(
            f"images must be HxW or HxWxC with C in (1, 3), got shape {a.shape}; "
            "drop alpha channels and put channels last."
        )
    if not fast and not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(_NOT_FINITE)
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}.")
    a, b = _crop(a, border), _crop(b, border)
    if y_channel:
        if data_range != 1.0:
            raise ValueError(
                "y_channel=True expects images in [0, 1] (data_range=1.0); "
                f"got data_range={data_range}. Rescale the images first."
            )
        return rgb_to_y(a), rgb_to_y(b), 255.0
    return a, b, float(data_range)


@_cite
def psnr(
    restored: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> float:
    """Peak signal-to-noise ratio ``10 log10(R^2 / MSE)`` in dB.

    Parameters
    ----------
    restored, reference : np.ndarray
        Float images of the same shape, ``HxW`` or ``HxWxC`` (C in {1, 3}).
    data_range : float
        Peak value ``R`` (1.0 for [0, 1] images). Must be 1.0 with ``y_channel``.
    crop_border : int
        Pixels removed from each side before scoring (applied before Y conversion).
    y_channel : bool
        Score the BT.601 Y channel (0-255 scale, ``R = 255``), see :func:`rgb_to_y`.

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images.
    """
    a, b, r = _prepare(restored, reference, data_range, crop_border, y_channel, fast=True)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, refused below
        diff = np.subtract(a, b, dtype=np.float64)
        mse = float(np.mean(np.square(diff, out=diff)))
    if not math.isfinite(mse):  # a NaN or inf in either image reaches the MSE
        raise ValueError(_NOT_FINITE)
    return float("inf") if mse == 0.0 else 10.0 * math.log10(r * r / mse)


@_cite
def psnr_y_matlab(restored: np.ndarray, reference: np.ndarray, *, crop_border: int = 0) -> float:
    """PSNR on Y as the classic MATLAB super-resolution scripts compute it.

    Both images are taken to uint8 (``round(255 x)``, clipped), cropped, and converted
    with ``rgb2ycbcr`` on uint8, whose Y is rounded to an integer:
    ``Y = round(16 + (65.481 R + 128.553 G + 24.966 B) / 255)`` for R, G, B in 0-255. A
    one-channel image is scored on its own 8-bit gray values. ``R = 255``. This matches
    the published tables (bicubic on Set5: 33.65 / 30.39 / 28.42 dB at x2 / x3 / x4, where
    the unrounded Y of :func:`psnr` with ``y_channel=True`` gives 33.68 / 30.40 / 28.43).
    """
    a, b = (
        np.clip(np.round(_as_float64(x, name) * 255.0), 0, 255)
        for x, name in ((restored, "restored"), (reference, "reference"))
    )
    if a.shape != b.shape:
        raise ValueError(f"restored has shape {a.shape} but reference has shape {b.shape}")
    a, b = _crop(a, crop_border), _crop(b, crop_border)
    ya, yb = (_matlab_y(x) for x in (a, b))
    mse = float(np.mean((ya - yb) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * math.log10(255.0 * 255.0 / mse)


def _matlab_y(x: np.ndarray) -> np.ndarray:
    if x.ndim == 2 or x.shape[2] == 1:
        return x.reshape(x.shape[:2])
    return np.round(16.0 + (x @ BT601[0]) / 255.0)


SSIM_STRIP_ROWS = 256  # output rows per strip when an image is large (see _ssim_mean)
SSIM_WHOLE_MAX_PIXELS = 1 << 22  # up to 4 MP the map is computed in one go


def _ssim_map(a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """The SSIM map of the valid region of HxW or HxWx3 float64 arrays (channels filtered at once)."""
    p = _SSIM_WIN // 2

    def filt(x):  # separable Gaussian correlation, then keep the valid region
        y = cv2.sepFilter2D(x, cv2.CV_64F, _SSIM_KERNEL, _SSIM_KERNEL, borderType=cv2.BORDER_REFLECT_101)
        return y[p:-p, p:-p]

    c1, c2 = (_K1 * r) ** 2, (_K2 * r) ** 2
    mu_a, mu_b = filt(a), filt(b)
    mu_ab, mu_a2, mu_b2 = mu_a * mu_b, mu_a * mu_a, mu_b * mu_b
    var_a, var_b = filt(a * a) - mu_a2, filt(b * b) - mu_b2
    cov = filt(a * b) - mu_ab
    return ((2.0 * mu_ab + c1) * (2.0 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))


def _ssim_mean(a: np.ndarray, b: np.ndarray, r: float, *, strip_rows: int | None = None) -> float:
    """Mean SSIM; every channel map has the same size, so it is the mean of the channel means.

    A large image is filtered in horizontal strips (each with the window's 10 extra input
    rows), written into one map: every map value is computed from the same pixels as in
    one go, and the mean is taken over the same array, so the value is identical while
    the memory is a few full-size arrays instead of about twelve (a 36 MP image: ~3 GB, not ~13).
    """
    rows = strip_rows or (SSIM_STRIP_ROWS if a.shape[0] * a.shape[1] > SSIM_WHOLE_MAX_PIXELS else 0)
    if not rows:
        return float(_ssim_map(a, b, r).mean())
    p = _SSIM_WIN // 2
    out_h = a.shape[0] - 2 * p
    smap = np.empty((out_h, a.shape[1] - 2 * p, *a.shape[2:]), np.float64)
    for top in range(0, out_h, rows):
        bottom = min(out_h, top + rows)
        smap[top:bottom] = _ssim_map(a[top : bottom + 2 * p], b[top : bottom + 2 * p], r)
    return float(smap.mean())


@_cite
def ssim(
    restored: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float = 1.0,
    crop_border: int = 0,
    y_channel: bool = False,
) -> float:
    """Structural similarity index (Wang et al. 2004), mean over the valid region.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, ``C1 = (K1 R)^2``,
    ``C2 = (K2 R)^2``; the SSIM map is kept only where the window lies fully inside
    the (cropped) image, averaged per channel, then over channels.

    Parameters
    ----------
    restored, reference : np.ndarray
        Float images of the same shape, ``HxW`` or ``HxWxC`` (C in {1, 3}), at least
        11x11 after cropping.
    data_range : float
        Dynamic range ``R`` (1.0 for [0, 1] images). Must be 1.0 with ``y_channel``.
    crop_border : int
        Pixels removed from each side before scoring (applied before Y conversion).
    y_channel : bool
        Score the BT.601 Y channel (0-255 scale, ``R = 255``), see :func:`rgb_to_y`.

    Returns
    -------
    float
        Mean SSIM, at most 1.0 (1.0 for identical images).
    """
    a, b, r = _ssim_inputs(restored, reference, data_range, crop_border, y_channel)
    return _ssim_mean(a, b, r)


def _ssim_inputs(restored, reference, data_range, crop_border, y_channel):
    a, b, r = _prepare(restored, reference, data_range, crop_border, y_channel)
    if min(a.shape[:2]) < _SSIM_WIN:
        raise ValueError(
            f"SSIM needs images of at least {_SSIM_WIN}x{_SSIM_WIN} after "
            f"crop_border={crop_border}, got {a.shape[0]}x{a.shape[1]}; "
            "use a smaller crop_border or a larger image."
        )
    if a.ndim == 3 and a.shape[2] == 1:
        a, b = a[:, :, 0], b[:, :, 0]
    return np.ascontiguousarray(a), np.ascontiguousarray(b), r


@_cite
def ssim_map(
    restored: np.ndarray,
    reference: np.ndarray,
    *,
    data_range: float = 1.0,
) -> np.ndarray:
    """The SSIM map of :func:`ssim` (same window and constants), averaged over channels.

    Returns an ``(H - 10) x (W - 10)`` float64 array: entry ``(i, j)`` is the SSIM of the
    11x11 window centred on pixel ``(i + 5, j + 5)`` (the valid region, no padding). Its
    mean equals ``ssim(restored, reference, data_range=data_range)``; a masked mean of it
    scores a region (e.g. the holes of an inpainted image).
    """
    a, b, r = _ssim_inputs(restored, reference, data_range, 0, False)
    smap = _ssim_map(a, b, r)
    return smap.mean(axis=2) if smap.ndim == 3 else smap
