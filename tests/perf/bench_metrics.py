"""PSNR against a plain numpy float64 implementation, on the same images, interleaved.

Run: ``python tests/perf/bench_metrics.py [--size 512] [--reps 200]``. Prints the median
time of each, their ratio (the bar: at most 1.1) and the largest difference of the values
(they must agree to floating-point rounding). Inputs are float32 HxWx3 in [0, 1], as workers
hand them to the metrics.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from restorebench.score.metrics import psnr


def plain_psnr(restored: np.ndarray, reference: np.ndarray) -> float:
    """The textbook formula: float64 copies, then 10 log10(1 / mean squared error)."""
    mse = np.mean((restored.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return 10.0 * math.log10(1.0 / mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--reps", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(8):
        ref = rng.random((args.size, args.size, 3), dtype=np.float32)
        pairs.append((np.clip(ref + rng.normal(0, 0.1, ref.shape).astype(np.float32), 0, 1), ref))
    ours, plain, worst = [], [], 0.0
    for i in range(args.reps):
        a, b = pairs[i % len(pairs)]
        for fn, times in ((psnr, ours), (plain_psnr, plain)) if i % 2 else ((plain_psnr, plain), (psnr, ours)):
            start = time.perf_counter()
            fn(a, b)
            times.append(time.perf_counter() - start)
        worst = max(worst, abs(psnr(a, b) - plain_psnr(a, b)))
    t_ours, t_plain = statistics.median(ours), statistics.median(plain)
    print(
        f"PSNR {args.size}x{args.size}x3 float32: ours {1e3 * t_ours:.2f} ms, plain numpy float64 "
        f"{1e3 * t_plain:.2f} ms, ratio {t_ours / t_plain:.2f} (bar: at most 1.1); largest difference {worst:.1e} dB"
    )


if __name__ == "__main__":
    main()
