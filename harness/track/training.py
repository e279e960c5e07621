"""MLflow logging of one ``restorebench train`` run (experiment ``restorebench-training``).

Failures are reported, never fatal: a checkpoint is written whether or not MLflow answers.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from restorebench.track import client as tracking

log = logging.getLogger(__name__)
EXPERIMENT = "restorebench-training"


class TrainingTracker:
    """MLflow logging of one training run; failures are reported, never fatal."""

    def __init__(self, uri: str | None, name: str, recipe: Any, data_info: dict[str, Any]) -> None:
        self.uri = tracking.resolve_uri(uri)
        self.error: str | None = None
        self.client = self.run_id = None
        try:
            tracking.check_reachable(self.uri)
            from mlflow.entities import Param

            with tracking.store_lock(self.uri):
                self.client = tracking.mlflow_client(self.uri)
                exp = tracking.experiment_id(self.client, self.uri, EXPERIMENT)
                self.run_id = self.client.create_run(exp, run_name=name, tags={"method": name}).info.run_id
            params = {k: str(v)[:500] for k, v in recipe.describe().items()}
            params.update({"data": ", ".join(data_info["sources"])[:500], "data_sha256": data_info["sha256"]})
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()])
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.client = None
        log.warning("MLflow logging of training is off: %s", self.error)

    def log(self, step: int, record: dict[str, float]) -> None:
        if self.client is None:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        try:
            self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in record.items()])
        except Exception as exc:
            self._fail(exc)

    def ids(self) -> dict[str, str | None]:
        return {"tracking_uri": self.uri, "run_id": self.run_id}

    def finish(self, checkpoint: Path, result: Any) -> tuple[str | None, str | None]:
        if self.client is not None:
            try:
                self.client.log_artifact(self.run_id, str(checkpoint))
                self.client.set_terminated(self.run_id)
            except Exception as exc:
                self._fail(exc)
        return self.run_id, self.error
