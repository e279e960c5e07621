"""Benchmark: the vectorised MATLAB ``imresize`` against a per-output-pixel numpy port.

Run: ``python tests/perf/bench_imresize.py [--size 256] [--repeat 3]``. For x1/2, x1/3,
x1/4 downscale and x2, x3, x4 upscale of a random ``SIZE x SIZE x 3`` image (0-255
values) it prints the time of each, the speed-up and the max abs difference. Targets:
speed-up >= 5, max abs difference <= 1e-5 (0-255 scale). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from restorebench.tasks.superres.imresize import imresize  # noqa: E402

CASES = (("x1/2", 1 / 2), ("x1/3", 1 / 3), ("x1/4", 1 / 4), ("x2", 2.0), ("x3", 3.0), ("x4", 4.0))


# ------------------------------------------------ the straightforward port (first draft)


def _cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _mirror(j: int, n: int) -> int:
    """1-based index ``j`` reflected into ``1..n`` (symmetric padding)."""
    while j < 1 or j > n:
        j = 1 - j if j < 1 else 2 * n + 1 - j
    return j


def _taps(x: int, in_len: int, scale: float) -> list[tuple[int, float]]:
    """Input rows (0-based) and normalised weights of output pixel ``x`` (1-based)."""
    width = 4.0 / scale if scale < 1 else 4.0
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = math.floor(u - width / 2)
    taps = [left + k for k in range(math.ceil(width) + 2)]
    if scale < 1:
        ws = [scale * _cubic(scale * (u - j)) for j in taps]
    else:
        ws = [_cubic(u - j) for j in taps]
    total = sum(ws)
    return [(_mirror(j, in_len) - 1, w / total) for j, w in zip(taps, ws) if w != 0]


def _resize_rows(img: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    out = np.zeros((out_len,) + img.shape[1:])
    for x in range(1, out_len + 1):
        taps = _taps(x, img.shape[0], scale)
        rows = [j for j, _ in taps]
        ws = np.array([w for _, w in taps])
        for k in range(img.shape[1]):  # one output pixel (all its channels) at a time
            out[x - 1, k] = ws @ img[rows, k]
    return out


def slow_imresize(img: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB imresize bicubic (antialiased), one output pixel at a time; rows first."""
    img = np.asarray(img, dtype=np.float64)
    tmp = _resize_rows(img, math.ceil(scale * img.shape[0]), scale)
    out = _resize_rows(tmp.swapaxes(0, 1), math.ceil(scale * img.shape[1]), scale)
    return out.swapaxes(0, 1)


# ------------------------------------------------ timing


def _best(fn, repeat: int) -> tuple[float, np.ndarray]:
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the fast version (best kept)")
    args = ap.parse_args()
    img = np.random.default_rng(0).uniform(0, 255, (args.size, args.size, 3))
    imresize(img, 0.5)  # warm-up
    print(f"image {args.size}x{args.size}x3 float64, 0-255 values; targets: ratio >= 5, max diff <= 1e-5")
    print(f"{'case':>6} {'out':>11} {'slow_s':>8} {'fast_ms':>8} {'ratio':>8} {'max_abs_diff':>13}")
    ok = True
    for label, scale in CASES:
        slow_s, slow = _best(lambda: slow_imresize(img, scale), 1)
        fast_s, fast = _best(lambda: imresize(img, scale), args.repeat)
        diff = float(np.max(np.abs(fast - slow)))
        ratio = slow_s / fast_s
        ok &= ratio >= 5 and diff <= 1e-5
        shape = f"{fast.shape[0]}x{fast.shape[1]}"
        print(f"{label:>6} {shape:>11} {slow_s:8.2f} {fast_s * 1e3:8.2f} {ratio:8.0f} {diff:13.2e}")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
