"""MLflow logging: a parent run per invocation, a child run per (task, dataset, degradation, method).

Only the driver talks to MLflow, after the results are stored, in batches (``log_batch``).
When MLflow cannot be reached the run directory still holds everything, and
``restorebench log RUN_DIR`` logs it later. Logging is idempotent: the parent run is
found again by the run directory's id (tag ``restorebench.run_id``), children already
logged and finished are kept, and the parent is completed; a failure marks the parent
FAILED instead of leaving it RUNNING.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.results.board import Leaderboard, build_leaderboard, published_of
from restorebench.results.groups import GROUP, per_image_tables
from restorebench.track.client import check_reachable, experiment_id, git_commit, mlflow_client, store_lock

log = logging.getLogger(__name__)
EXPERIMENT = "restorebench"
RUN_ID_TAG = "restorebench.run_id"


def _finite(value: float) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def log_run(
    run_dir: Any,
    results: Any,
    spec: dict[str, Any],
    *,
    uri: str,
    extra: dict[str, Any] | None = None,
    board: Leaderboard | None = None,
) -> str:
    """Log one run directory's results; returns the parent MLflow run id. ``board``: the
    results' leaderboard when the caller built it already (it is built once per run).

    Logging the same run directory again completes its existing parent run (children
    missing or unfinished are logged anew) instead of creating a second one.
    """
    check_reachable(uri)
    board = board if board is not None else build_leaderboard(results)
    with store_lock(uri):
        client = mlflow_client(uri)
        exp_id = experiment_id(client, uri, EXPERIMENT)
        info = run_dir.info()
        pid, fresh = _parent(client, exp_id, info["run_id"], spec)
        try:
            if fresh:
                _log_parent_summary(client, pid, board, spec, run_dir, extra)
            done = _finished_children(client, exp_id, pid)
            commit = git_commit()
            with tempfile.TemporaryDirectory() as tmp:
                todo = board.table[[tuple(k) not in done for k in board.table[GROUP].itertuples(index=False)]]
                tables = per_image_tables(board.results, todo, list(board.metrics), Path(tmp) / "per_image")
                for _, row in todo.iterrows():
                    key = tuple(row[GROUP])
                    _log_child(
                        client, exp_id, pid, key, row, board, tables.get(key), commit, Path(run_dir.path), Path(tmp)
                    )
                _log_parent_artifacts(client, pid, results, board, run_dir, Path(tmp))
        except BaseException:
            _terminate(client, pid, "FAILED")
            raise
        client.set_terminated(pid)
    info["mlflow"] = {"tracking_uri": uri, "parent_run_id": pid}
    run_dir.write_info(info)
    return pid


def _parent(client: Any, exp_id: str, run_id: str, spec: dict[str, Any]) -> tuple[str, bool]:
    """The parent run of this run directory (found by its tag), or a new one."""
    found = client.search_runs([exp_id], f"tags.`{RUN_ID_TAG}` = '{run_id}'", max_results=1)
    if found:
        return found[0].info.run_id, False
    parent = client.create_run(
        exp_id, run_name=f"{spec['name']}-{run_id[:8]}", tags={RUN_ID_TAG: run_id, "git_commit": git_commit()}
    )
    return parent.info.run_id, True


def _finished_children(client: Any, exp_id: str, pid: str) -> set[tuple[str, ...]]:
    """Group keys of the children already logged in full; unfinished ones are deleted (logged again)."""
    done = set()
    for child in client.search_runs([exp_id], f"tags.mlflow.parentRunId = '{pid}'", max_results=50_000):
        key = tuple(child.data.tags.get(k, "") for k in GROUP)
        if child.info.status == "FINISHED":
            done.add(key)
        else:
            client.delete_run(child.info.run_id)
    return done


def _log_parent_summary(
    client: Any, pid: str, board: Leaderboard, spec: dict[str, Any], run_dir: Any, extra: dict | None
) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    units, failed = board.counts.get("units", 0), board.counts.get("failed", 0)
    params = {
        "suite": spec["name"],
        "seed": spec["seed"],
        "run_dir": str(Path(run_dir.path).resolve()),
        **(extra or {}),
    }
    client.log_batch(
        pid,
        metrics=[Metric("units", units, now, 0), Metric("failed_units", failed, now, 0)],
        params=[Param(k, str(v)) for k, v in params.items()],
    )


def _log_parent_artifacts(client: Any, pid: str, results: Any, board: Leaderboard, run_dir: Any, tmp: Path) -> None:
    from restorebench.report.files import write_report

    client.log_artifact(pid, str(Path(run_dir.path) / "spec.yaml"))
    table = Path(run_dir.path) / "results.parquet"  # a folder (the partitioned dataset) or, in older runs, a file
    if table.is_dir():
        client.log_artifacts(pid, str(table), "results.parquet")
    else:
        client.log_artifact(pid, str(table))
    for path in write_report(results, tmp / "leaderboard", ["md", "csv"], board=board):
        client.log_artifact(pid, str(path), "leaderboard")


def _terminate(client: Any, run_id: str, status: str) -> None:
    """Mark a run ``status`` while an error is on its way up; a failure to do so is logged."""
    try:
        client.set_terminated(run_id, status=status)
    except Exception as exc:  # broad: the store is what failed, and the error being raised is the one to see
        log.warning(
            "could not mark MLflow run %s %s (it may show as RUNNING): %s: %s", run_id, status, type(exc).__name__, exc
        )


def checkpoint_tags(joined: str) -> dict[str, str]:
    """Tags that find the runs of a checkpoint.

    ``checkpoint_sha256``: the checkpoint's SHA-256 when the method runs one network ('' for
    classical methods and for several networks); ``checkpoint_sha256_1``, ``_2``, ...: each
    network's own (DnCNN's gray and colour models); ``checkpoints``: all of them,
    comma-separated, which ``tags.checkpoints LIKE '%<sha>%'`` searches whatever the count.
    """
    shas = [s for s in joined.split(",") if s]
    tags = {"checkpoint_sha256": shas[0] if len(shas) == 1 else ""}
    if shas:
        tags["checkpoints"] = ",".join(shas)
    if len(shas) > 1:
        tags.update({f"checkpoint_sha256_{i}": sha for i, sha in enumerate(shas, start=1)})
    return tags


def metric_key(label: str) -> str:
    """An MLflow metric key for a metric label (MLflow refuses ``?``, ``=`` and ``&``)."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", label)


def group_metrics(board: Leaderboard, key: tuple) -> dict[str, float]:
    """A child run's numbers: ``<metric>_mean`` and ``<metric>_median`` of the per-image values,
    and for a set-level metric ``<metric>``, the group's value (the leaderboard's)."""
    out = {}
    medians = board.medians().set_index([*GROUP, "metric"])["median"]
    for _, row in board.group_values(key).iterrows():
        name = metric_key(row["metric"])
        out[f"{name}_mean"], out[f"{name}_median"] = float(row["mean"]), float(medians[(*key, row["metric"])])
        if board.metrics[row["metric"]].set_level:
            out[name] = float(row["value"])
    return out


def _log_child(
    client: Any,
    exp_id: str,
    pid: str,
    key: tuple,
    row: Any,
    board: Leaderboard,
    per_image: Path | None,
    commit: str,
    root: Path,
    tmp: Path,
) -> None:
    """One child run: tags, aggregate metrics, params, per-image table, sample grid."""
    from mlflow.entities import Metric, Param

    task, dataset, degradation, method = key
    now = int(time.time() * 1000)
    info = board.group_tags(key)
    tags = {
        "mlflow.parentRunId": pid,
        **dict(zip(GROUP, key)),
        "method_kind": str(info.get("kind") or ""),
        "method_version": str(info.get("method_version") or ""),
        **checkpoint_tags(str(info.get("method_checkpoint") or "")),
        "git_commit": commit,
        "device": str(info.get("device") or ""),
    }
    cid = client.create_run(exp_id, run_name=f"{task}/{dataset}/{degradation}/{method}", tags=tags).info.run_id
    try:
        metrics = [Metric("failed_images", int(row["failed"]), now, 0)]
        metrics += [Metric(k, v, now, 0) for k, v in group_metrics(board, key).items()]
        metrics += [
            Metric("runtime_s_mean", float(row["runtime_ms"]) / 1e3, now, 0),
            Metric("runtime_s_per_mp", float(row["runtime_ms_per_mp"]) / 1e3, now, 0),
        ]
        published = published_of(board, key)
        if published:
            metrics += [Metric(k, float(published[k]), now, 0) for k in ("published", "delta_published")]
        params = {
            "task": task,
            "dataset": dataset,
            "degradation": degradation,
            "method": method,
            "method_version": info.get("method_version"),
            "images": int(row["images"]),
            "rank_metric": board.rank_by.get(task, ""),
            **{k: published[k] for k in ("published_metric", "published_source") if published},
        }
        if row.get("dataset_check"):
            client.set_tag(cid, "dataset_check", row["dataset_check"])
        client.log_batch(
            cid, metrics=[m for m in metrics if _finite(m.value)], params=[Param(k, str(v)) for k, v in params.items()]
        )
        _log_child_artifacts(client, cid, per_image, root, tmp, key)
    except BaseException:
        _terminate(client, cid, "FAILED")
        raise
    client.set_terminated(cid)


def _log_child_artifacts(client: Any, run_id: str, per_image: Path | None, root: Path, tmp: Path, key: tuple) -> None:
    from restorebench.report.samples import method_grid, sample_dir, write_png

    task, dataset, degradation, method = key
    folder = tmp / run_id
    folder.mkdir()
    target = folder / "per_image.csv"
    if per_image is not None:
        per_image.replace(target)
    else:
        target.write_text("image,status,error,runtime_s\n")
    client.log_artifact(run_id, str(target))
    picture = method_grid(sample_dir(root / "samples", task, dataset, degradation), method)
    if picture is not None:
        write_png(folder / "sample_grid.png", np.asarray(picture))
        client.log_artifact(run_id, str(folder / "sample_grid.png"))
    _log_views(client, run_id, root, folder, key)


def _log_views(client: Any, run_id: str, root: Path, folder: Path, key: tuple) -> None:
    """Photos with no reference: each photo's input beside this method's whole output,
    ``views/<image>.png`` (the first :data:`~restorebench.report.gallery.MAX_PHOTOS`)."""
    from restorebench.report.gallery import gallery_photos
    from restorebench.report.samples import view_grid, write_png

    task, dataset, degradation, method = key
    views = folder / "views"
    for _, where in gallery_photos(root / "samples", task, dataset, degradation):
        picture = view_grid(where, method)
        if picture is None:
            continue
        views.mkdir(exist_ok=True)
        write_png(views / f"{where.name}.png", picture)
    if views.is_dir():
        client.log_artifacts(run_id, str(views), artifact_path="views")
