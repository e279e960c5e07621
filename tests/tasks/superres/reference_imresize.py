"""A slow reference port of MATLAB's ``imresize`` (bicubic), shared by the tests and the benchmark.

Written the obvious way, one output pixel at a time, from imresize.m's ``contributions``
and ``cubic`` (MathWorks Image Processing Toolbox), independently of the fast version in
:mod:`restorebench.imaging.resize`.
"""

from __future__ import annotations

import math

import numpy as np


def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _mirror(j: int, n: int) -> int:
    """1-based index ``j`` reflected into ``1..n`` (MATLAB's symmetric padding)."""
    while j < 1 or j > n:
        j = 1 - j if j < 1 else 2 * n + 1 - j
    return j


def _pixel_taps(x: int, in_len: int, scale: float, antialiasing: bool) -> list[tuple[int, float]]:
    """(0-based input index, weight) of the taps of output pixel ``x`` (1-based)."""
    width, shrink = 4.0, scale < 1 and antialiasing
    if shrink:
        width = 4.0 / scale
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = math.floor(u - width / 2)
    taps = [left + k for k in range(math.ceil(width) + 2)]
    ws = [scale * _cubic(scale * (u - j)) if shrink else _cubic(u - j) for j in taps]
    total = sum(ws)
    return [(_mirror(j, in_len) - 1, w / total) for j, w in zip(taps, ws) if w != 0]


def _slow_resize_rows(img: np.ndarray, out_len: int, scale: float, antialiasing: bool) -> np.ndarray:
    out = np.zeros((out_len,) + img.shape[1:])
    for x in range(1, out_len + 1):
        taps = _pixel_taps(x, img.shape[0], scale, antialiasing)
        for k in range(img.shape[1]):
            out[x - 1, k] = sum(w * img[j, k] for j, w in taps)
    return out


def slow_imresize(img, scale=None, *, output_shape=None, antialiasing=True) -> np.ndarray:
    """MATLAB ``imresize(img, scale)`` or ``imresize(img, output_shape)``, bicubic, in float64."""
    img = np.asarray(img, dtype=np.float64)
    h, w = img.shape[:2]
    if output_shape is None:
        sh = sw = scale
        output_shape = (math.ceil(scale * h), math.ceil(scale * w))
    else:
        sh, sw = output_shape[0] / h, output_shape[1] / w
    if sh <= sw:  # MATLAB: [~, order] = sort(scale), rows first on a tie
        tmp = _slow_resize_rows(img, output_shape[0], sh, antialiasing)
        return _slow_resize_rows(tmp.swapaxes(0, 1), output_shape[1], sw, antialiasing).swapaxes(0, 1)
    tmp = _slow_resize_rows(img.swapaxes(0, 1), output_shape[1], sw, antialiasing).swapaxes(0, 1)
    return _slow_resize_rows(tmp, output_shape[0], sh, antialiasing)
