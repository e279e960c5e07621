"""Small runs the tests share: the denoise task on a folder of images, in-process."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from restorebench.run.pipeline import RunOptions, RunSummary, run_suite


def denoise_run(
    folder: Path,
    out: Path,
    methods: Sequence[str],
    *,
    degradations: Sequence[str] = ("gaussian?sigma=25",),
    progress: Any = None,
    **options: Any,
) -> RunSummary:
    """``run_suite`` of ``methods`` on ``folder:FOLDER`` (local executor, no MLflow unless ``tracking_uri``)."""
    settings: dict[str, Any] = {
        "tasks": ("denoise",),
        "datasets": (f"folder:{folder}",),
        "degradations": tuple(degradations),
        "methods": tuple(methods),
        "out": out,
        "executor": "local",
        "tracking": "tracking_uri" in options,
    }
    settings.update(options)
    return run_suite(RunOptions(**settings), progress=progress)


def cli(*args: Any, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """The installed ``restorebench`` console script, as a user runs it (no telemetry)."""
    import os
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("restorebench")
    full = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [str(exe), *map(str, args)], cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout
    )


def replace_results(run_dir: Path, frame: Any) -> None:
    """Make ``frame`` all that ``run_dir`` holds, as one shard (as if the run had stopped
    before compacting): the compacted dataset and every other shard are removed."""
    import shutil

    from restorebench.results.schema import to_arrow

    shutil.rmtree(run_dir / "results.parquet", ignore_errors=True)
    for shard in (run_dir / "shards").glob("*.parquet"):
        shard.unlink()
    import pyarrow.parquet as pq

    (run_dir / "shards").mkdir(exist_ok=True)
    pq.write_table(to_arrow(frame), run_dir / "shards" / "part-00000000000000000000-kept.parquet")
