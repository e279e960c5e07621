"""The float-image check: what every degradation and resizer accepts."""

from __future__ import annotations

import numpy as np


def float_image(image: object) -> np.ndarray:
    """``image`` as an array when it is a float ``HxW`` or ``HxWxC`` image (values in [0, 1] by
    the harness's convention); else a ValueError saying what it got and how to convert it."""
    arr = np.asarray(image)
    if not np.issubdtype(arr.dtype, np.floating) or arr.ndim not in (2, 3):
        hint = "; convert 8-bit images with img / 255 first" if np.issubdtype(arr.dtype, np.integer) else ""
        raise ValueError(
            f"expected a float HxW or HxWxC image in [0, 1], got dtype {arr.dtype} and shape {arr.shape}{hint}"
        )
    return arr


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An ``HxW``, ``HxWx1`` or ``HxWxC`` image as ``HxWx3`` in its own dtype: gray repeated over
    three channels, channels past the third (alpha) dropped."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[..., :3]
