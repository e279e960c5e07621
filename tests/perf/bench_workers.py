"""Two Ray workers against one, on a classical suite, timed as the whole command.

Run: ``python tests/perf/bench_workers.py [--images 50] [--size 640] [--repeats 2]``. Each repeat runs
``restorebench run`` (cold: ``--no-cache``, no MLflow) on ``--images`` dead-leaves images
x 2 noise levels x 2 classical denoisers (NL-means, median), so 200 units by default
(about 0.4 s each: Ray's start and shutdown are a fixed cost the speed-up has to carry), once with
``--num-cpus 1`` and once with ``--num-cpus 2``, interleaved; it prints each wall time
(process start to exit, Ray's start and shutdown included) and the speed-up of the
fastest runs (the bar: at least 1.8 on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(images: int, size: int, cpus: int, out: Path) -> float:
    exe = Path(sys.executable).with_name("restorebench")
    args = [str(exe), "run", "--task", "denoise", "--dataset", f"synthetic:deadleaves?n={images}&size={size}"]
    args += ["--degradation", "gaussian?sigma=15", "--degradation", "gaussian?sigma=50"]
    args += ["--method", "denoise/nlmeans", "--method", "denoise/median"]
    args += ["--num-cpus", str(cpus), "--no-cache", "--no-tracking", "--out", str(out)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run with {cpus} CPU(s) failed:\n{done.stderr[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    walls: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for cpus in (1, 2) if i % 2 == 0 else (2, 1):
                walls[cpus].append(run(args.images, args.size, cpus, Path(tmp) / f"r{i}-{cpus}"))
                print(f"repeat {i + 1}: {cpus} worker(s): {walls[cpus][-1]:.1f} s", flush=True)
    units = args.images * 4
    print(
        f"{units} units: 1 worker {min(walls[1]):.1f} s, 2 workers {min(walls[2]):.1f} s, "
        f"speed-up {min(walls[1]) / min(walls[2]):.2f} (bar: at least 1.8)"
    )


if __name__ == "__main__":
    main()
