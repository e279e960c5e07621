"""Driver memory against the number of units: peak RSS of whole runs of a cheap method.

Run: ``python tests/perf/bench_memory.py [--units 1000 16000] [--executor local|ray]``. Each
size runs in a fresh interpreter (``denoise/identity`` on 16x16 dead-leaves images, one
degradation, PSNR only, no cache, no MLflow) and reports its peak resident set size
(``ru_maxrss``); the figure that matters is the ratio of the largest to the smallest, which
should stay near 1 (the issue's bar: at most 1.15 between 1,000 and 16,000 units).
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
    import json, resource, sys, time
    from pathlib import Path
    from restorebench import load_plugins
    from restorebench.core.suite import parse_suite
    from restorebench.run.pipeline import RunOptions, run_suite

    load_plugins()
    n, executor, out = int(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
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
                                   tracking=False, use_cache=False))
    wall = time.perf_counter() - start
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"units": summary.units, "failed": summary.failed, "wall_s": wall, "peak_rss_mib": rss_mib}))
    """
)


def measure(units: int, executor: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, str(units), executor, tmp], capture_output=True, text=True, check=False
        )
    if result.returncode != 0:
        raise SystemExit(f"the run of {units} units failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, nargs="+", default=[1000, 16000])
    parser.add_argument("--executor", default="local", choices=["local", "ray"])
    args = parser.parse_args()
    figures = []
    for n in args.units:
        started = time.perf_counter()
        figure = measure(n, args.executor)
        figures.append(figure)
        print(
            f"{figure['units']:>6} units ({args.executor}): peak driver RSS {figure['peak_rss_mib']:.0f} MiB, "
            f"run {figure['wall_s']:.1f} s ({1e3 * figure['wall_s'] / figure['units']:.2f} ms/unit), "
            f"process {time.perf_counter() - started:.1f} s"
        )
    smallest, largest = figures[0], figures[-1]
    print(
        f"peak RSS {largest['units']} / {smallest['units']} units: "
        f"{largest['peak_rss_mib'] / smallest['peak_rss_mib']:.3f} (bar: at most 1.15)"
    )


if __name__ == "__main__":
    main()
