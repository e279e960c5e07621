"""Reaching MLflow: the tracking URI, a fast reachability check, experiments, the git commit.

Only modules of ``restorebench.track`` import MLflow; everything here is shared by
run logging (:mod:`~restorebench.track.runs`), training runs
(:mod:`~restorebench.track.training`) and fetching a run for compare
(:mod:`~restorebench.track.fetch`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# MLflow's client retries an unreachable server for about four minutes by default; a run's
# results are stored already, so fail within seconds and let `restorebench log` finish later.
CLIENT_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def resolve_uri(uri: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else ``./mlflow.db`` (SQLite)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _artifact_root(uri: str) -> str | None:
    """Local artifacts beside a SQLite store; a server decides for itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///") :]).parent / "mlartifacts").resolve().as_uri()
    return None


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast when an MLflow server does not answer (its client retries for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s).close()
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectionError(f"MLflow server {uri} does not answer: {getattr(exc, 'reason', exc)}") from None


def mlflow_client(uri: str) -> Any:
    """An ``MlflowClient`` for ``uri`` with short retries (the user's own MLFLOW_* settings win)."""
    for key, value in CLIENT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a SQLite store's ``<file>.lock`` (no-op for servers).

    Two processes that open a fresh SQLite store at once race in its schema migration
    (runs lost, the store half-migrated); and concurrent writers of one SQLite file meet
    "database is locked". restorebench's writers take turns instead.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    path = Path(uri[len("sqlite:///") :])
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# MLflow 3's UI opens an experiment without this tag on its GenAI overview ("no traces");
# with it, on the runs table, where restorebench's parent and child runs are.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(client: Any, uri: str, name: str) -> str:
    """The id of experiment ``name``, created (with artifacts beside a SQLite store) if missing,
    and tagged as a model-development experiment (:data:`EXPERIMENT_KIND`) unless it says its kind."""
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=_artifact_root(uri), tags=EXPERIMENT_KIND)
        except MlflowException:  # another process created it between the two calls (else raised below)
            exp = client.get_experiment_by_name(name)
            if exp is None:
                raise
    for key, value in EXPERIMENT_KIND.items():
        if key not in exp.tags:  # one made before restorebench tagged it; a kind someone chose is kept
            client.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def git_commit() -> str:
    """The commit of the working directory's git checkout, or '' outside one."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
