"""imaging: the image-processing pieces the tasks and the engine share, on numpy arrays.

A task may import this package, the plugin API (``restorebench``) and ``restorebench.neural``,
and nothing else of the engine (``tests/core/test_import_rules.py``); what two tasks (or a
task and a metric) both need lives here once:

- :mod:`~restorebench.imaging.arrays`: the float-image check every degradation starts with, gray as RGB;
- :mod:`~restorebench.imaging.color`: ITU-R BT.601 luma and YCbCr as MATLAB's ``rgb2ycbcr``;
- :mod:`~restorebench.imaging.resize`: MATLAB's bicubic ``imresize`` and ``modcrop``;
- :mod:`~restorebench.imaging.noise`: the noise level of an image (wavelet MAD);
- :mod:`~restorebench.imaging.filters`: NL-means and the optional BM3D, called one way.

May import: core.
"""

from __future__ import annotations

from restorebench.imaging.arrays import as_rgb, float_image
from restorebench.imaging.color import BT601, BT601_OFFSET, bt601_luma, rgb_to_ycbcr, ycbcr_to_rgb
from restorebench.imaging.filters import bm3d_denoise, nl_means, require_bm3d
from restorebench.imaging.noise import noise_sigma
from restorebench.imaging.resize import imresize, modcrop

__all__ = [
    "BT601",
    "BT601_OFFSET",
    "as_rgb",
    "bm3d_denoise",
    "bt601_luma",
    "float_image",
    "imresize",
    "modcrop",
    "nl_means",
    "noise_sigma",
    "require_bm3d",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]
