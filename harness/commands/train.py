"""``restorebench train``: gather images, fit a neural method's recipe, write its checkpoint.

The recipe (network, patches, optimisation) belongs to the method's task; this module
only feeds it data, logs progress to MLflow (experiment ``restorebench-training``) and
writes the weights-only checkpoint with metadata that says how to reproduce it.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorebench import __version__
from restorebench.core.errors import UserError

log = logging.getLogger(__name__)
EXPERIMENT = "restorebench-training"


@dataclass
class TrainSummary:
    checkpoint: Path
    metadata: dict[str, Any]
    mlflow_run_id: str | None = None
    tracking_error: str | None = None


def load_training_images(datasets: list[str]) -> tuple[list[np.ndarray], list[str], dict[str, Any]]:
    """Every image of the given sources, their keys, and a description with content hashes."""
    from restorebench.core.build import build_source

    images, keys, files = [], [], {}
    for ref in datasets:
        source = build_source(ref)
        for image in source.list_images():
            try:
                images.append(source.load(image))
            except Exception as exc:  # one bad file does not stop training
                log.warning("skipping %s: %s", image.key, exc)
                continue
            keys.append(f"{source.ref}/{image.key}")
            files[f"{source.ref}/{image.key}"] = image.content_hash
    if not images:
        raise UserError(f"no training images found in {', '.join(datasets)}")
    combined = hashlib.sha256("\n".join(f"{h}  {k}" for k, h in sorted(files.items())).encode()).hexdigest()
    return images, keys, {"sources": list(datasets), "images": len(images), "sha256": combined, "files": files}


def train_method(
    method_ref: str,
    *,
    data: list[str] | None = None,
    steps: int | None = None,
    out: Path | None = None,
    seed: int = 0,
    tracking_uri: str | None = None,
    tracking: bool = True,
    threads: int | None = None,
) -> TrainSummary:
    """Train the checkpoint of ``method_ref`` (e.g. ``superres/srcnn?scale=3``).

    ``threads``: torch's CPU threads (default: all cores); recorded in the metadata, since
    float sums, and so the last bits of the weights, depend on it.
    """
    from restorebench.core.build import build_method

    method = build_method(method_ref)
    from restorebench.neural.inference import NeuralMethod

    if not isinstance(method, NeuralMethod):
        raise UserError(f"{method.qualified_name} is not a trainable neural method")
    recipe = method.recipe()
    datasets = list(data) if data else list(recipe.default_data)
    images, keys, data_info = load_training_images(datasets)
    network = method.build_network(recipe.config)
    target = Path(out) if out else method.training_output()
    command = " ".join(["restorebench", "train", shlex.quote(method.build_ref)] + [f"--data {shlex.quote(d)}" for d in datasets]
                       + ([f"--steps {steps}"] if steps is not None else []) + [f"--seed {seed}"])  # fmt: skip

    run = _Tracker(tracking_uri, method.build_ref, recipe, data_info) if tracking else None
    from restorebench.neural.training import fit

    result = fit(recipe, network, images, keys, steps=steps, seed=seed, num_threads=threads,
                 log_fn=run.log if run else None)  # fmt: skip
    import torch

    metadata = {
        "architecture": recipe.architecture,
        "config": recipe.config,
        "method": method.build_ref,
        "command": command,
        "recipe": recipe.describe(),
        "data": data_info,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "steps": result.steps,
        "seconds": round(result.seconds, 1),
        "metrics": {"val_psnr": result.val_psnr, "val_psnr_input": result.val_psnr_input},
        "history": result.history,
        "versions": {"restorebench": __version__, "torch": torch.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},  # fmt: skip
    }
    if run is not None:
        metadata["mlflow"] = run.ids()
    from restorebench.neural.checkpoints import save_checkpoint

    save_checkpoint(target, result.state_dict, metadata)
    summary = TrainSummary(target, metadata)
    if run is not None:
        summary.mlflow_run_id, summary.tracking_error = run.finish(target, result)
    return summary


class _Tracker:
    """MLflow logging of one training run; failures are reported, never fatal."""

    def __init__(self, uri: str | None, name: str, recipe: Any, data_info: dict[str, Any]) -> None:
        from restorebench.track import runs as tracking

        self.uri = tracking.resolve_uri(uri)
        self.error: str | None = None
        self.client = self.run_id = None
        try:
            tracking.check_reachable(self.uri)
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(tracking_uri=self.uri)
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
