"""Resume of a large run killed halfway: only the missing units are computed, in flat driver memory.

Run: ``python tests/perf/bench_resume.py [--units 1000000] [--executor ray|local]``. The run of
:mod:`bench_memory` (``denoise/identity`` on 16x16 dead-leaves images, PSNR only, no cache)
starts in a process group of its own; once the shards hold about half of its units, the whole
group (driver and its local Ray) is killed with SIGKILL. The same run then resumes
(``--resume``) in a fresh interpreter, which prints the units it computed and resumed, its
peak RSS (``VmHWM``) and its units/s. It checks that computed = units - done at the kill, and
that the resumed run's results hold every unit once.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_memory import child, measure  # noqa: E402


def landed(run: Path) -> int:
    """Units in the run's shards so far (one metric: one row per unit)."""
    import pyarrow.parquet as pq

    total = 0
    for shard in list((run / "shards").glob("part-*.parquet")):
        try:
            total += pq.read_metadata(shard).num_rows
        except (OSError, ValueError):  # renamed or merged meanwhile
            pass
    return total


def unique_units(files: list[Path]) -> tuple[int, int]:
    """(rows, distinct units) of these results files, counted by the engine."""
    from restorebench.results.dataset import connect, sql_list

    con = connect(threads=1)
    try:
        return con.execute(f"SELECT count(*), count(DISTINCT unit_id) FROM read_parquet({sql_list(files)})").fetchone()
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=1_000_000)
    parser.add_argument("--executor", default="ray", choices=["local", "ray"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        started = time.perf_counter()
        proc = subprocess.Popen(
            child(args.units, args.executor, tmp),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        done = 0
        while proc.poll() is None and done < args.units // 2:
            time.sleep(1)
            done = landed(run)
        if proc.poll() is not None:
            raise SystemExit(f"the run ended before it was killed:\n{proc.stderr.read().decode()[-3000:]}")
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
        done = unique_units(sorted((run / "shards").glob("part-*.parquet")))[1]  # a merge cut short leaves both
        print(f"killed after {time.perf_counter() - started:.0f} s with {done:,} of {args.units:,} units in its shards")
        figure = measure(args.units, args.executor, tmp, resume=True)
        rows, distinct = unique_units(sorted((run / "results.parquet").rglob("*.parquet")))
        print(
            f"resume: {figure['computed']:,} computed, {figure['resumed']:,} resumed, {figure['failed']} failed; "
            f"peak driver RSS {figure['peak_rss_mib']:.0f} MiB; {figure['wall_s']:.1f} s "
            f"({figure['computed'] / figure['wall_s']:,.0f} computed units/s)"
        )
        print(f"results: {rows:,} rows, {distinct:,} distinct units")
        ok = figure["computed"] == args.units - done and figure["resumed"] == done and rows == distinct == args.units
        print("only the missing units computed, each unit once:", "yes" if ok else "NO")
        if not ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
