"""Fetching a logged run's ``results.parquet`` back from MLflow (``compare`` takes run ids)."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING

from restorebench.core.errors import UserError

if TYPE_CHECKING:
    from pandas import DataFrame


def fetch_results(run_id: str, tracking_uri: str | None) -> DataFrame:
    """The results table logged as ``results.parquet`` by the parent run ``run_id``; a run or
    server that cannot be read is a :class:`UserError` naming both."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep CI logs clean
    import mlflow.artifacts
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from restorebench.track import client as tracking

    uri = tracking.resolve_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tracking.check_reachable(uri)
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="results.parquet", dst_path=tmp, tracking_uri=uri
            )
        except (MlflowException, OSError) as exc:  # ConnectionError is an OSError
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"cannot read results.parquet of MLflow run {run_id} at {uri}: {first}",
                hint="give the parent run id printed by `restorebench run`, and --tracking-uri "
                "if the run was logged elsewhere",
            ) from None
        return pd.read_parquet(local)
