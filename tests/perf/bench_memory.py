"""Driver memory against the number of units: peak RSS of whole runs of a cheap method.

Run: ``python tests/perf/bench_memory.py [--units 10000 100000 1000000] [--executor ray|local]``.
Each size runs in a fresh interpreter (``denoise/identity`` on 16x16 dead-leaves images, one
degradation, PSNR only, no cache, no MLflow) and reports the driver's peak resident set size
(its ``VmHWM``; Ray's workers are processes of their own) and units per second end to end;
the figures that matter are the ratio of the largest to the smallest peak (the bar: at most
1.10 between 10,000 and 1,000,000 units) and the units/s (at least 2,000 on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time

CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from restorebench import load_plugins
    from restorebench.core.suite import parse_suite
    from restorebench.run.pipeline import RunOptions, run_suite

    load_plugins()
    n, executor, out, resume = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "resume"
    suite = {
        "name": "memory", "seed": 0,
        "tasks": [{
            "task": "denoise",
            "datasets": [f"synthetic:deadleaves?n={n}&size=16"],
            "degradations": ["gaussian?sigma=5"],
            "methods": ["denoise/identity"],
            "metrics": ["psnr"],
        }],
    }
    (out / "suite.yaml").write_text(json.dumps(suite))
    start = time.perf_counter()
    summary = run_suite(RunOptions(suite=str(out / "suite.yaml"), out=out / "run", executor=executor,
                                   tracking=False, use_cache=False, resume=resume))
    wall = time.perf_counter() - start
    peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
    print(json.dumps({"units": summary.units, "computed": summary.computed, "resumed": summary.resumed,
                      "failed": summary.failed, "wall_s": wall, "peak_rss_mib": peak / 1024}))
    """
)


def child(units: int, executor: str, folder: str, *, resume: bool = False) -> list[str]:
    """The command line of one run of ``units`` units in ``folder`` (its run directory: ``run``)."""
    return [sys.executable, "-c", CHILD, str(units), executor, folder, "resume" if resume else "new"]


def measure(units: int, executor: str, folder: str | None = None, *, resume: bool = False) -> dict:
    """Run it to the end; its summary and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        command = child(units, executor, folder or tmp, resume=resume)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the run of {units} units failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--executor", default="ray", choices=["local", "ray"])
    args = parser.parse_args()
    figures = []
    for n in args.units:
        started = time.perf_counter()
        figure = measure(n, args.executor)
        figures.append(figure)
        print(
            f"{figure['units']:>9,} units ({args.executor}): peak driver RSS {figure['peak_rss_mib']:.0f} MiB, "
            f"run {figure['wall_s']:.1f} s ({figure['units'] / figure['wall_s']:,.0f} units/s), "
            f"process {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    smallest, largest = figures[0], figures[-1]
    print(
        f"peak RSS {largest['units']:,} / {smallest['units']:,} units: "
        f"{largest['peak_rss_mib'] / smallest['peak_rss_mib']:.3f} (bar: at most 1.10)"
    )


if __name__ == "__main__":
    main()
