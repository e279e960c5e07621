"""``restorebench log RUN_DIR``: log (or finish logging) a stored run to MLflow.

Idempotent: the run's parent MLflow run is found again by its id and completed, so a
run logged twice, or logged again after the server died halfway, has one parent run.
"""

from __future__ import annotations

from pathlib import Path

from restorebench.core.errors import UserError


def log_run_dir(run_dir: str | Path, tracking_uri: str | None = None) -> tuple[str, str]:
    """Log ``run_dir`` to ``tracking_uri`` (default: ``$MLFLOW_TRACKING_URI`` or ./mlflow.db);
    returns the URI and the parent run id."""
    from restorebench import track
    from restorebench.data.storage import is_uri
    from restorebench.run.mirror import Mirror
    from restorebench.run.read import read_results
    from restorebench.run.store import RunDir

    mirror = Mirror(str(run_dir)) if is_uri(str(run_dir)) else None
    path = mirror.pull() if mirror else Path(run_dir)
    if not (path / "run.json").is_file():
        raise UserError(
            f"{path} is not a run directory (no run.json)", hint="give the directory `restorebench run` wrote"
        )
    run = RunDir(path)
    spec, info = run.stored_spec(), run.info()
    results = read_results(path)
    uri = track.resolve_uri(tracking_uri)
    try:
        run_id = track.log_run(run, results, spec, uri=uri, extra={"run_dir": mirror.uri} if mirror else None)
        if mirror:
            mirror.push()  # run.json records the MLflow run, so logging again completes the same one
        return uri, run_id
    except UserError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(
            f"could not log {path} (run {info['run_id'][:8]}) to MLflow at {uri}: {type(exc).__name__}: {first}",
            hint=f"the results stay in {path}; run `restorebench log {path}` again when MLflow answers",
        ) from None
