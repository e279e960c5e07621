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
    return run_suite(RunOptions(**settings))
