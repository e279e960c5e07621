"""ITU-R BT.601 luma and YCbCr as MATLAB's ``rgb2ycbcr`` / ``ycbcr2rgb`` compute them (double).

The super-resolution protocol scores the Y channel, SRCNN-style networks run on it, and
training recipes feed it: one set of coefficients for all of them. For RGB in [0, 1],
``ycbcr * 255 = BT601_OFFSET + BT601 @ rgb``: Y in [16, 235], Cb and Cr in [16, 240].
"""

from __future__ import annotations

import numpy as np

BT601 = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
BT601_OFFSET = np.array([16.0, 128.0, 128.0])
_INVERSE = np.linalg.inv(BT601)


def bt601_luma(rgb: np.ndarray) -> np.ndarray:
    """Y on the 0-255 scale (16-235), not rounded, of an ``HxWx3`` RGB image in [0, 1]; computed
    in the image's own float precision (float32 stays float32).

    >>> float(bt601_luma(np.ones((1, 1, 3)))[0, 0])
    235.0
    """
    rgb = np.asarray(rgb)
    return rgb @ BT601[0].astype(rgb.dtype) + 16.0


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """BT.601 YCbCr of an ``HxWx3`` RGB image in [0, 1], as MATLAB ``rgb2ycbcr`` (double), in
    [0, 1] (float32).

    >>> [round(float(v), 4) for v in rgb_to_ycbcr(np.ones((1, 1, 3))).ravel()]
    [0.9216, 0.502, 0.502]
    """
    return ((BT601_OFFSET + rgb.astype(np.float64) @ BT601.T) / 255.0).astype(np.float32)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_ycbcr`, as MATLAB ``ycbcr2rgb`` (double, not clipped), float32.

    >>> [round(float(v), 5) for v in ycbcr_to_rgb(rgb_to_ycbcr(np.full((1, 1, 3), 0.25))).ravel()]
    [0.25, 0.25, 0.25]
    """
    return ((ycbcr.astype(np.float64) * 255.0 - BT601_OFFSET) @ _INVERSE.T).astype(np.float32)
