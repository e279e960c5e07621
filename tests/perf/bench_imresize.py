"""Benchmark: the vectorised MATLAB ``imresize`` against the tests' per-output-pixel reference port.

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

from restorebench.imaging import imresize  # noqa: E402
from tests.tasks.superres.reference_imresize import slow_imresize  # noqa: E402

CASES = (("x1/2", 1 / 2), ("x1/3", 1 / 3), ("x1/4", 1 / 4), ("x2", 2.0), ("x3", 3.0), ("x4", 4.0))


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
        slow_s, slow = _best(lambda s=scale: slow_imresize(img, s), 1)
        fast_s, fast = _best(lambda s=scale: imresize(img, s), args.repeat)
        diff = float(np.max(np.abs(fast - slow)))
        ratio = slow_s / fast_s
        ok &= ratio >= 5 and diff <= 1e-5
        shape = f"{fast.shape[0]}x{fast.shape[1]}"
        print(f"{label:>6} {shape:>11} {slow_s:8.2f} {fast_s * 1e3:8.2f} {ratio:8.0f} {diff:13.2e}")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
