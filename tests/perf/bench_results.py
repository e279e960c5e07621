"""``report`` and ``compare`` on synthetic results datasets: peak RSS and time against rows.

Run: ``python tests/perf/bench_results.py [--rows 50000 5000000]``. For each size a results
dataset is written (a run directory whose ``results.parquet/`` holds that many rows: 4
methods x 4 degradations x 2 datasets of one task, PSNR and SSIM, one row per image and
metric, every unit ok), a second one with the values nudged for ``compare``; then, each in a
fresh interpreter, ``restorebench report DIR --format md,csv`` and ``restorebench compare A B
--metric psnr,ssim`` run and report their peak resident set size (the child's ``VmHWM``) and
wall time. The issue's bar: the largest size's peak at most 1.2x the smallest's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METHODS = ("denoise/identity", "denoise/median", "denoise/box", "denoise/gaussian")
DEGRADATIONS = ("gaussian?sigma=15", "gaussian?sigma=25", "gaussian?sigma=50", "saltpepper?density=0.1")
DATASETS = ("folder:/data/a", "folder:/data/b")
METRICS = ("psnr", "ssim")


def write_dataset(root: Path, rows: int, *, shift: float = 0.0, chunk: int = 200_000) -> Path:
    """A run directory holding ``rows`` results rows (written a chunk at a time)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from restorebench.results.schema import schema

    groups = [(d, g, m) for d in DATASETS for g in DEGRADATIONS for m in METHODS]
    units = rows // len(METRICS)
    per_group = max(1, units // len(groups))
    run = root / "run"
    folder = run / "results.parquet" / "denoise"
    folder.mkdir(parents=True)
    (run / "spec.yaml").write_text("name: bench\nseed: 0\ntasks: []\n")
    (run / "run.json").write_text(json.dumps({"run_id": "0" * 32}))
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(folder / "part-0.parquet", schema()) as writer:
        for start in range(0, units, chunk):
            n = min(chunk, units - start)
            index = np.arange(start, start + n)
            group = np.minimum(index // per_group, len(groups) - 1)
            image = index % per_group
            columns = {
                "run_id": ["0" * 32] * n,
                "unit_id": [f"u{i:012d}" for i in index],
                "task": ["denoise"] * n,
                "dataset": [groups[g][0] for g in group],
                "image": [f"img{i:07d}.png" for i in image],
                "degradation": [groups[g][1] for g in group],
                "method": [groups[g][2] for g in group],
                "method_kind": ["classical"] * n,
                "method_version": ["1"] * n,
                "status": ["ok"] * n,
                "runtime_s": rng.uniform(0.001, 0.01, n),
                "megapixels": np.full(n, 0.25),
            }
            base = rng.normal(28, 2, n) + shift
            for k, metric in enumerate(METRICS):
                values = base if metric == "psnr" else np.clip(base / 40, 0, 1)
                table = pa.table(
                    {
                        **columns,
                        "metric": [metric] * n,
                        "metric_index": np.full(n, k, np.int32),
                        "metric_version": ["1"] * n,
                        "value": values,
                    }
                )
                writer.write_table(_conformed(table, schema()), row_group_size=1 << 16)  # as compaction writes
    return run


def _conformed(table, target):
    import pyarrow as pa

    return pa.Table.from_arrays(
        [
            table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(len(table), f.type)
            for f in target
        ],
        schema=target,
    )


CHILD = """
import sys, time
sys.argv = ["restorebench", *sys.argv[1:]]
from restorebench.cli import main
start = time.perf_counter()
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
# VmHWM: this program's peak; ru_maxrss would carry the parent's over fork + exec on Linux
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("BENCH", time.perf_counter() - start, peak / 1024, code, file=sys.stderr)
"""


def measure(*args: str) -> tuple[float, float]:
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=False)
    line = next((x for x in done.stderr.splitlines() if x.startswith("BENCH")), None)
    if line is None:
        raise SystemExit(f"restorebench {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    _, seconds, rss, code = line.split()
    if code not in ("0", "1", "None"):
        raise SystemExit(f"restorebench {' '.join(args)} exited {code}:\n{done.stderr[-3000:]}")
    return float(seconds), float(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 5_000_000])
    args = parser.parse_args()
    figures = {}
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            base = write_dataset(Path(tmp) / "base", rows)
            cand = write_dataset(Path(tmp) / "cand", rows, shift=0.01)
            written = time.perf_counter() - started
            report = measure("report", str(base), "--format", "md,csv", "--out", str(Path(tmp) / "report"))
            compare = measure("compare", str(base), str(cand), "--metric", "psnr,ssim", "--resamples", "200")
            figures[rows] = {"report": report, "compare": compare}
            print(
                f"{rows:>9,} rows (written in {written:.1f} s): report {report[0]:.1f} s, peak {report[1]:.0f} MiB; "
                f"compare {compare[0]:.1f} s, peak {compare[1]:.0f} MiB",
                flush=True,
            )
    small, large = figures[min(figures)], figures[max(figures)]
    for what in ("report", "compare"):
        print(
            f"{what}: peak RSS {max(figures):,} / {min(figures):,} rows: {large[what][1] / small[what][1]:.3f} (bar: 1.2)"
        )


if __name__ == "__main__":
    main()
