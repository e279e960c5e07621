"""The "filters" section of the report: hybrid images, image pyramids, the baselines' kernels.

Everything is built from scikit-image's bundled photos, read from the files in the
``skimage.data`` package folder (never a download).

References
----------
A. Oliva, A. Torralba, P. G. Schyns, "Hybrid images", ACM SIGGRAPH 2006.
P. J. Burt, E. H. Adelson, "The Laplacian pyramid as a compact image code",
IEEE Trans. Communications 31(4), 1983.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

LOW_PHOTO = "chelsea.png"  # the cat: seen from afar
HIGH_PHOTO = "astronaut.png"  # seen up close
SIGMA_LOW = 6.0  # Gaussian cutoff (pixels) of the low-pass photo
SIGMA_HIGH = 3.0  # Gaussian cutoff (pixels) removed from the high-pass photo
HYBRID_SIZE = (256, 256)
PYRAMID_PHOTO = "coffee.png"
LEVELS = 5
BINOMIAL = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16

Embed = Callable[..., str]  # embed(name, figure, caption, *, photo=False) -> markup
DPI = 100  # as the report's own figures


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure (no pyplot, so no global state) with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as float64 in [0, 1] (gray, HxW)."""
    import skimage.data
    import skimage.io
    from skimage.color import rgb2gray

    img = skimage.io.imread(os.path.join(os.path.dirname(skimage.data.__file__), name))
    img = img[..., :3] if img.ndim == 3 else img
    return rgb2gray(img).astype(np.float64) if img.ndim == 3 else img.astype(np.float64) / 255.0


def lowpass(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass (SciPy ``gaussian_filter``, reflect border) with std ``sigma`` pixels."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(img, sigma)


def highpass(img: np.ndarray, sigma: float) -> np.ndarray:
    """``img - lowpass(img, sigma)``."""
    return img - lowpass(img, sigma)


def hybrid_image(low_src: np.ndarray, high_src: np.ndarray, *, sigma_low: float, sigma_high: float) -> np.ndarray:
    """Low frequencies of ``low_src`` plus high frequencies of ``high_src`` (same shape)."""
    if low_src.shape != high_src.shape:
        raise ValueError(f"hybrid_image needs equal shapes, got {low_src.shape} and {high_src.shape}")
    return lowpass(low_src, sigma_low) + highpass(high_src, sigma_high)


def hybrid_pair() -> tuple[np.ndarray, np.ndarray]:
    """The two photos of the hybrid, cropped around the faces and resized to ``HYBRID_SIZE``."""
    from skimage.transform import resize

    cat = photo(LOW_PHOTO)[0:300, 60:360]
    face = photo(HIGH_PHOTO)[10:250, 130:370]
    return resize(cat, HYBRID_SIZE, anti_aliasing=True), resize(face, HYBRID_SIZE, anti_aliasing=True)


def _smooth(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import convolve1d

    return convolve1d(convolve1d(img, BINOMIAL, axis=0, mode="reflect"), BINOMIAL, axis=1, mode="reflect")


def _expand(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Burt-Adelson EXPAND: zeros between the samples, then 4x the binomial smoothing."""
    up = np.zeros(shape, dtype=np.float64)
    up[::2, ::2] = img
    return 4.0 * _smooth(up)


def gaussian_pyramid(img: np.ndarray, levels: int = LEVELS) -> list[np.ndarray]:
    """``levels`` images, each the binomial-smoothed previous one taken every other pixel."""
    pyramid = [np.asarray(img, dtype=np.float64)]
    for _ in range(levels - 1):
        pyramid.append(_smooth(pyramid[-1])[::2, ::2])
    return pyramid


def laplacian_pyramid(img: np.ndarray, levels: int = LEVELS) -> list[np.ndarray]:
    """Band-pass levels ``G_k - EXPAND(G_k+1)``; the last level is the coarsest Gaussian."""
    gauss = gaussian_pyramid(img, levels)
    bands = [g - _expand(g_next, g.shape) for g, g_next in zip(gauss, gauss[1:])]
    return [*bands, gauss[-1]]


def reconstruct(laplacian: list[np.ndarray]) -> np.ndarray:
    """The image back from its Laplacian pyramid (exact up to rounding)."""
    img = laplacian[-1]
    for band in reversed(laplacian[:-1]):
        img = band + _expand(img, band.shape)
    return img


def baseline_kernels() -> dict[str, np.ndarray]:
    """The linear classical denoisers' kernels: box 5x5, Gaussian sigma 1 (7x7), binomial 5x5."""
    x = np.arange(-3, 4, dtype=np.float64)
    g = np.exp(-(x**2) / 2)
    return {
        "box 5x5": np.full((5, 5), 1 / 25),
        "Gaussian σ=1 (7x7)": np.outer(g, g) / np.outer(g, g).sum(),
        "binomial [1,4,6,4,1]/16": np.outer(BINOMIAL, BINOMIAL),
    }


def frequency_response(kernel: np.ndarray, size: int = 64) -> np.ndarray:
    """``|FFT|`` of the kernel zero-padded to ``size`` x ``size``, zero frequency in the centre."""
    return np.abs(np.fft.fftshift(np.fft.fft2(kernel, s=(size, size))))


def _strip(images: list[np.ndarray], gap: int = 6) -> np.ndarray:
    """Gray images side by side at their true sizes, bottom-aligned on white."""
    height = max(i.shape[0] for i in images)
    canvas = np.ones((height, sum(i.shape[1] for i in images) + gap * (len(images) - 1)))
    x = 0
    for img in images:
        canvas[height - img.shape[0] :, x : x + img.shape[1]] = np.clip(img, 0, 1)
        x += img.shape[1] + gap
    return canvas


def _show(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def hybrid_figure() -> Figure:
    """The two sources, their filtered parts, and the hybrid at four sizes."""
    from skimage.transform import rescale

    a, b = hybrid_pair()
    hybrid = hybrid_image(a, b, sigma_low=SIGMA_LOW, sigma_high=SIGMA_HIGH)
    sizes = [rescale(hybrid, 1 / 2**k, anti_aliasing=True) for k in range(4)]
    fig = new_figure(10, 6.4)
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.15])
    parts = [
        (a, LOW_PHOTO),
        (lowpass(a, SIGMA_LOW), f"low-pass σ={SIGMA_LOW:g}"),
        (b, HIGH_PHOTO),
        (highpass(b, SIGMA_HIGH) + 0.5, f"high-pass σ={SIGMA_HIGH:g} (+0.5)"),
    ]
    for ax, (img, title) in zip(top.subplots(1, 4), parts):
        _show(ax, img, title)
    _show(bottom.subplots(), _strip(sizes), "hybrid = low-pass + high-pass, at 1, 1/2, 1/4, 1/8 size")
    return fig


def pyramid_figure() -> Figure:
    """Gaussian and Laplacian pyramids (5 levels) of one photo, each level at its true size."""
    from skimage.transform import resize

    img = resize(photo(PYRAMID_PHOTO), (256, 384), anti_aliasing=True)
    lap = laplacian_pyramid(img)
    shown = [0.5 + 2 * band for band in lap[:-1]] + [lap[-1]]
    fig = new_figure(10, 7.0)
    top, bottom = fig.subplots(2, 1)
    _show(top, _strip(gaussian_pyramid(img)), f"Gaussian pyramid ({LEVELS} levels, binomial smoothing, step 2)")
    _show(bottom, _strip(shown), "Laplacian pyramid: G_k - EXPAND(G_k+1), shown as 0.5 + 2x; last level = G_4")
    return fig


def kernel_figure() -> Figure:
    """Each baseline kernel as a heatmap above its frequency response ``|FFT|``."""
    kernels = baseline_kernels()
    top = max(k.max() for k in kernels.values())  # one colour scale, so the kernels compare
    fig = new_figure(10, 6.2)
    axes = fig.subplots(2, len(kernels))
    for col, (name, kernel) in enumerate(kernels.items()):
        im = axes[0, col].imshow(kernel, cmap="viridis", vmin=0, vmax=top, interpolation="nearest")
        axes[0, col].set_title(name, fontsize=9)
        fig.colorbar(im, ax=axes[0, col], shrink=0.8)
        response = frequency_response(kernel)
        im = axes[1, col].imshow(response, cmap="magma", vmin=0, vmax=1, extent=(-0.5, 0.5, -0.5, 0.5))
        axes[1, col].set_title("|FFT| (cycles/pixel)", fontsize=9)
        fig.colorbar(im, ax=axes[1, col], shrink=0.8)
    return fig


def filters_section(embed: Embed) -> str:
    """The section's HTML; ``embed(name, figure, caption, photo=...)`` returns the markup of one figure
    (``photo``: a photographic figure, stored as JPEG)."""
    intro = (
        "Linear filtering behind the classical baselines, on scikit-image's bundled photos. "
        "A hybrid image (Oliva, Torralba &amp; Schyns 2006) adds the low frequencies of one photo "
        "(Gaussian low-pass) to the high frequencies of another (the photo minus its low-pass): "
        "up close the high frequencies dominate, from afar (or small) only the low ones remain."
    )
    figures = [
        ("filters-hybrid", hybrid_figure, f"Hybrid image: low-pass of {LOW_PHOTO} + high-pass of {HIGH_PHOTO}", True),
        (
            "filters-pyramids",
            pyramid_figure,
            f"Gaussian and Laplacian pyramids of {PYRAMID_PHOTO} (Burt & Adelson 1983)",
            True,
        ),
        ("filters-kernels", kernel_figure, "Kernels of the linear baselines and their frequency responses", False),
    ]
    parts = ['<section id="filters">', "<h2>Filters</h2>", f"<p>{intro}</p>"]
    for name, build, caption, photo in figures:
        try:
            parts.append(embed(name, build(), caption, photo=photo))
        except (OSError, ValueError) as exc:  # a missing bundled photo must not break the report
            log.warning("filters figure %s not built: %s", name, exc)
            parts.append(f'<p class="missing">{escape(name)}: not available ({escape(str(exc))})</p>')
    parts.append("</section>")
    return "\n".join(parts)
