"""Two Ray workers against one, on a classical suite, timed as the whole command.

Run: ``python tests/perf/bench_workers.py [--images 50] [--size 640] [--repeats 2]``. Each repeat runs
``restorebench run`` (cold: ``--no-cache``, no MLflow) on ``--images`` dead-leaves images
x 2 noise levels x 2 classical denoisers (NL-means, median), so 200 units by default
(about 0.4 s each: Ray's start and shutdown are a fixed cost the speed-up has to carry), once with
``--num-cpus 1`` and once with ``--num-cpus 2``, interleaved; it prints each wall time
(process start to exit, Ray's start and shutdown included) and the speed-up of the
fastest runs (the bar: at least 1.8 on 2 cores). ``--ceiling`` also times the same units
with no harness (a bare loop with one thread, as a Ray worker has): in one process, then
split between two processes running at once, which is the most two workers could gain on
this machine (its cores share caches, memory bandwidth and a host).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bare_loop import run_bare

DEGRADATIONS = ("gaussian?sigma=15", "gaussian?sigma=50")
METHODS = ("denoise/nlmeans", "denoise/median")


def run(images: int, size: int, cpus: int, out: Path) -> float:
    exe = Path(sys.executable).with_name("restorebench")
    args = [str(exe), "run", "--task", "denoise", "--dataset", f"synthetic:deadleaves?n={images}&size={size}"]
    args += [arg for d in DEGRADATIONS for arg in ("--degradation", d)]
    args += [arg for m in METHODS for arg in ("--method", m)]
    args += ["--num-cpus", str(cpus), "--no-cache", "--no-tracking", "--out", str(out)]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run with {cpus} CPU(s) failed:\n{done.stderr[-2000:]}")
    return wall


def bare_part(images: int, size: int, part: int, parts: int) -> None:
    """Every ``parts``-th image from ``part`` on: load, degrade, restore, score (one thread)."""
    from restorebench import load_plugins
    from restorebench.run.worker import set_thread_limit

    load_plugins()
    set_thread_limit(1)
    run_bare(f"synthetic:deadleaves?n={images}&size={size}", DEGRADATIONS, METHODS, part=part, parts=parts)


def bare(images: int, size: int, parts: int) -> float:
    """Wall time of the bare loop split between ``parts`` processes started together."""
    start = time.perf_counter()
    script = [sys.executable, __file__, "--images", str(images), "--size", str(size), "--part"]
    procs = [subprocess.Popen([*script, f"{i}/{parts}"]) for i in range(parts)]
    if any(proc.wait() for proc in procs):
        raise SystemExit("a bare-loop process failed")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ceiling", action="store_true", help="also time the bare loop in 1 and 2 processes")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # I/N: one bare-loop process's share
    args = parser.parse_args()
    if args.part:
        part, parts = map(int, args.part.split("/"))
        return bare_part(args.images, args.size, part, parts)
    walls: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for cpus in (1, 2) if i % 2 == 0 else (2, 1):
                walls[cpus].append(run(args.images, args.size, cpus, Path(tmp) / f"r{i}-{cpus}"))
                print(f"repeat {i + 1}: {cpus} worker(s): {walls[cpus][-1]:.1f} s", flush=True)
    units = args.images * 4
    speedup = min(walls[1]) / min(walls[2])
    print(
        f"{units} units: 1 worker {min(walls[1]):.1f} s, 2 workers {min(walls[2]):.1f} s, "
        f"speed-up {speedup:.2f} (bar: at least 1.8)"
    )
    if args.ceiling:
        one, two = bare(args.images, args.size, 1), bare(args.images, args.size, 2)
        print(
            f"bare loop, same units: 1 process {one:.1f} s, 2 processes {two:.1f} s, machine's ceiling "
            f"{one / two:.2f}; the harness reaches {speedup / (one / two):.0%} of it"
        )


if __name__ == "__main__":
    main()
