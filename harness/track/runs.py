"""MLflow logging: a parent run per invocation, a child run per (task, dataset, degradation, method).

Only the driver talks to MLflow, after the results are stored, in batches (``log_batch``).
When MLflow cannot be reached the run directory still holds everything, and
``restorebench log RUN_DIR`` logs it later.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.track.client import check_reachable, experiment_id, git_commit

EXPERIMENT = "restorebench"
GROUP = ["task", "dataset", "degradation", "method"]


def _finite(value: float) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def log_run(run_dir: Any, results: Any, spec: dict[str, Any], *, uri: str, extra: dict[str, Any] | None = None) -> str:
    """Log one run directory's results; returns the parent MLflow run id."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    check_reachable(uri)
    client = MlflowClient(tracking_uri=uri)
    exp_id = experiment_id(client, uri, EXPERIMENT)
    now = int(time.time() * 1000)
    info = run_dir.info()
    commit = git_commit()
    parent = client.create_run(
        exp_id,
        run_name=f"{spec['name']}-{info['run_id'][:8]}",
        tags={"restorebench.run_id": info["run_id"], "git_commit": commit},
    )
    pid = parent.info.run_id
    ok = results[results["status"] == "ok"]
    units = results.drop_duplicates("unit_id")
    params = {
        "suite": spec["name"],
        "seed": spec["seed"],
        "run_dir": str(Path(run_dir.path).resolve()),
        **(extra or {}),
    }
    client.log_batch(
        pid,
        metrics=[
            Metric("units", len(units), now, 0),
            Metric("failed_units", int((units["status"] != "ok").sum()), now, 0),
        ],
        params=[Param(k, str(v)) for k, v in params.items()],
    )
    client.log_artifact(pid, str(Path(run_dir.path) / "spec.yaml"))
    client.log_artifact(pid, str(Path(run_dir.path) / "results.parquet"))

    with tempfile.TemporaryDirectory() as tmp:
        for key, group in results.groupby(GROUP, sort=True):
            _log_child(client, exp_id, pid, key, group, ok, commit, Path(run_dir.path), Path(tmp))
        from restorebench.report.files import write_report

        for path in write_report(results, Path(tmp) / "leaderboard", ["md", "csv"]):
            client.log_artifact(pid, str(path), "leaderboard")
    client.set_terminated(pid)
    info["mlflow"] = {"tracking_uri": uri, "parent_run_id": pid}
    run_dir.write_info(info)
    return pid


def _log_child(
    client: Any, exp_id: str, pid: str, key: tuple, group: Any, ok: Any, commit: str, root: Path, tmp: Path
) -> None:
    """One child run: tags, aggregate metrics, params, per-image table, sample grid."""
    from mlflow.entities import Metric, Param

    task, dataset, degradation, method = key
    now = int(time.time() * 1000)
    good = ok[(ok[GROUP] == list(key)).all(axis=1)]
    first = group.iloc[0]
    tags = {
        "mlflow.parentRunId": pid,
        **dict(zip(GROUP, key)),
        "method_kind": first["method_kind"],
        "method_version": str(first["method_version"]),
        "checkpoint_sha256": str(first.get("method_checkpoint") or ""),
        "git_commit": commit,
        "device": str(first["device"]),
    }
    cid = client.create_run(exp_id, run_name=f"{task}/{dataset}/{degradation}/{method}", tags=tags).info.run_id
    metrics = [Metric("failed_images", int(group.loc[group["status"] != "ok", "unit_id"].nunique()), now, 0)]
    for metric, values in good.groupby("metric")["value"]:
        metrics += [
            Metric(f"{metric}_mean", float(values.mean()), now, 0),
            Metric(f"{metric}_median", float(values.median()), now, 0),
        ]
    per_unit = good.drop_duplicates("unit_id")
    if len(per_unit):
        runtime = per_unit["runtime_s"]
        metrics += [
            Metric("runtime_s_mean", float(runtime.mean()), now, 0),
            Metric("runtime_s_per_mp", float(runtime.sum() / per_unit["megapixels"].sum()), now, 0),
        ]
    params = {
        "task": task,
        "dataset": dataset,
        "degradation": degradation,
        "method": method,
        "method_version": first["method_version"],
        "images": group["image"].nunique(),
    }
    client.log_batch(
        cid, metrics=[m for m in metrics if _finite(m.value)], params=[Param(k, str(v)) for k, v in params.items()]
    )
    _log_child_artifacts(client, cid, group, root, tmp, key)
    client.set_terminated(cid)


def _log_child_artifacts(client: Any, run_id: str, group: Any, root: Path, tmp: Path, key: tuple) -> None:
    from restorebench.report.samples import method_grid, sample_dir, write_png

    task, dataset, degradation, method = key
    table = group.pivot_table(
        index=["image", "status", "error", "runtime_s"], columns="metric", values="value", dropna=False
    )
    folder = tmp / run_id
    folder.mkdir()
    table.reset_index().to_csv(folder / "per_image.csv", index=False)
    client.log_artifact(run_id, str(folder / "per_image.csv"))
    picture = method_grid(sample_dir(root / "samples", task, dataset, degradation), method)
    if picture is not None:
        write_png(folder / "sample_grid.png", np.asarray(picture))
        client.log_artifact(run_id, str(folder / "sample_grid.png"))
