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
    """MLflow logging of one training run; failures are reported, never fatal.

    Building one talks to nothing; :meth:`open` (or ``with``) creates the MLflow run and
    logs the recipe, :meth:`finish` logs the checkpoint and ends the run:

    >>> with TrainingTracker(None, "denoise/dncnn", recipe, data_info) as run:  # doctest: +SKIP
    ...     run.log(100, {"val_psnr": 31.2})
    ...     run.finish(Path("model.safetensors"), result)
    """

    def __init__(self, uri: str | None, name: str, recipe: Any, data_info: dict[str, Any]) -> None:
        self.uri = tracking.resolve_uri(uri)
        self.name = name
        self.recipe = recipe
        self.data_info = data_info
        self.error: str | None = None
        self.client = self.run_id = None
        self._opened = self._finished = False

    def open(self) -> TrainingTracker:
        """Create the MLflow run and log the recipe's parameters; returns ``self``. A failure
        turns logging off with a warning (:attr:`error` says why), never raises."""
        if self._opened:
            return self
        self._opened = True
        try:
            tracking.check_reachable(self.uri)
            from mlflow.entities import Param

            with tracking.store_lock(self.uri):
                self.client = tracking.mlflow_client(self.uri)
                exp = tracking.experiment_id(self.client, self.uri, EXPERIMENT)
                self.run_id = self.client.create_run(exp, run_name=self.name, tags={"method": self.name}).info.run_id
            params = {k: str(v)[:500] for k, v in self.recipe.describe().items()}
            params.update({"data": ", ".join(self.data_info["sources"])[:500], "data_sha256": self.data_info["sha256"]})
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params.items()])
        except Exception as exc:  # broad: any MLflow failure is recorded (self.error) and logged; training goes on
            self._fail(exc)
        return self

    def __enter__(self) -> TrainingTracker:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if not self._opened:
            raise RuntimeError(
                "the training tracker is not open: call open() first, or use `with TrainingTracker(...) as run:`"
            )

    def _fail(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        self.client = None
        log.warning("MLflow logging of training is off: %s", self.error)

    def log(self, step: int, record: dict[str, float]) -> None:
        self._check_open()
        if self.client is None:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        try:
            self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in record.items()])
        except Exception as exc:  # broad: any MLflow failure is recorded and logged; training goes on
            self._fail(exc)

    def ids(self) -> dict[str, str | None]:
        self._check_open()
        return {"tracking_uri": self.uri, "run_id": self.run_id}

    def finish(self, checkpoint: Path, result: Any) -> tuple[str | None, str | None]:
        """Log the checkpoint and end the run; returns the run id and the error that turned logging off."""
        self._check_open()
        if self.client is not None:
            try:
                self.client.log_artifact(self.run_id, str(checkpoint))
                self.client.set_terminated(self.run_id)
            except Exception as exc:  # broad: any MLflow failure is recorded and logged; the checkpoint is written
                self._fail(exc)
        self._finished = True
        return self.run_id, self.error

    def close(self) -> None:
        """End a run that :meth:`finish` did not (training stopped early) as FAILED."""
        if self.client is not None and self.run_id is not None and not self._finished:
            try:
                self.client.set_terminated(self.run_id, status="FAILED")
            except Exception as exc:  # broad: any MLflow failure is recorded and logged, never raised over training's
                self._fail(exc)
        self._finished = True
