"""Reaching MLflow: the tracking URI, a fast reachability check, experiments, the git commit.

Only modules of ``restorebench.track`` import MLflow; everything here is shared by
run logging (:mod:`~restorebench.track.runs`), training runs
(:mod:`~restorebench.track.training`) and fetching a run for compare
(:mod:`~restorebench.track.fetch`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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


def experiment_id(client: Any, uri: str, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=_artifact_root(uri))


def git_commit() -> str:
    """The commit of the working directory's git checkout, or '' outside one."""
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""
