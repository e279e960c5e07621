"""Harness benchmarks: overhead over a bare loop, CLI cold start, default run end to end.

Run: ``python tests/perf/bench_harness.py [--skip-default-run] [--repeats 3]``. Prints figures and the
targets from the issue; it is a benchmark, not a test (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bare_loop import run_bare

DATASET = "bundled:photos"
DEGRADATIONS = ("gaussian?sigma=25", "saltpepper?density=0.1")
METHODS = ("denoise/median", "denoise/nlmeans", "denoise/tv", "denoise/wavelet", "denoise/bilateral")
METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")


def bare_loop() -> float:
    """The same loads, degradations, restorations and metrics with no harness around them."""
    start = time.perf_counter()
    run_bare(DATASET, DEGRADATIONS, METHODS, y_channel=True)
    return time.perf_counter() - start


def harness_run(out: Path) -> float:
    from restorebench.run.pipeline import RunOptions, run_suite

    start = time.perf_counter()
    run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(DATASET,),
            degradations=DEGRADATIONS,
            methods=METHODS,
            out=out,
            executor="ray",
            tracking=False,
            use_cache=False,
        )
    )
    return time.perf_counter() - start


def _exe() -> str:
    """The console script: on PATH, or beside this interpreter (a venv that is not activated)."""
    beside = Path(sys.executable).with_name("restorebench")
    return shutil.which("restorebench") or (str(beside) if beside.exists() else "restorebench")


def cold_start(repeats: int = 7) -> float:
    exe = _exe()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def default_run() -> float:
    exe = _exe()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RESTOREBENCH_CACHE": str(Path(tmp) / "cache.sqlite"), "MLFLOW_DISABLE_TELEMETRY": "true"}
        start = time.perf_counter()
        subprocess.run([exe, "run"], check=True, capture_output=True, cwd=tmp, env=env)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-default-run", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved bare / harness runs")
    args = parser.parse_args()
    from restorebench import load_plugins

    load_plugins()  # the registries fill only when asked (builds below look names up)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    import ray

    from restorebench.run.ray_runtime import start_local_ray
    from restorebench.run.worker import set_thread_limit

    set_thread_limit(1)  # the same thread budget as the one Ray worker (1 CPU)
    bare_loop()  # warm imports and caches in this process, as the harness worker warms up too
    start_local_ray(1)  # the private Ray a run starts (its start-up is excluded here)
    bare, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        harness_run(Path(tmp) / "warm")  # worker process start-up and imports: Ray start-up, excluded
        for i in range(args.repeats):  # interleaved, so drift in the machine's speed hits both sides,
            if i % 2:  # and in turn first, so neither always runs just after the other
                runs.append(harness_run(Path(tmp) / f"run{i}"))
                bare.append(bare_loop())
            else:
                bare.append(bare_loop())
                runs.append(harness_run(Path(tmp) / f"run{i}"))
    ray.shutdown()
    units = 5 * len(DEGRADATIONS) * len(METHODS)
    pairs = [r / b for b, r in zip(bare, runs)]  # each pair ran back to back: drift hits both alike
    print(
        f"harness overhead: {units} units, bare loop {min(bare):.2f} s (median {np.median(bare):.2f}), "
        f"harness on Ray (1 worker) {min(runs):.2f} s (median {np.median(runs):.2f}), "
        f"ratio of minima {min(runs) / min(bare):.3f}, of medians {np.median(runs) / np.median(bare):.3f}, "
        f"median of the {len(pairs)} pairs' ratios {np.median(pairs):.3f} ({min(pairs):.3f}-{max(pairs):.3f}) "
        "(target <= 1.05)"
    )
    print(f"restorebench --help cold start: {cold_start():.3f} s (target <= 0.3 s)")
    if not args.skip_default_run:
        print(
            f"restorebench run (default suite, {os.cpu_count()} cores, cold cache): {default_run():.1f} s "
            "(target <= 180 s)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
