"""The training tracker talks to MLflow only once opened, and every MLflow failure it or the
run logging meets is recorded or logged, never swallowed."""

from __future__ import annotations

import logging
import socket

import pytest

from restorebench.track import client as tracking
from restorebench.track.training import TrainingTracker

DATA = {"sources": ["folder:images"], "sha256": "0" * 64}


class _Recipe:
    def describe(self):
        return {"architecture": "tiny", "steps": 3}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once it is closed


def test_building_a_tracker_talks_to_nothing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tracking, "check_reachable", lambda uri, timeout_s=5.0: calls.append(uri))
    store = tmp_path / "not" / "yet" / "mlflow.db"
    run = TrainingTracker(f"sqlite:///{store}", "denoise/dncnn", _Recipe(), DATA)
    assert calls == [] and not (tmp_path / "not").exists() and run.error is None
    for use in (lambda: run.log(1, {"loss": 0.5}), run.ids, lambda: run.finish(tmp_path / "m.safetensors", None)):
        with pytest.raises(RuntimeError, match=r"training tracker is not open: call open\(\) first, or use `with"):
            use()
    run.close()  # nothing to close


def test_an_unreachable_server_fails_on_open_with_a_warning_never_raising(caplog):
    uri = f"http://127.0.0.1:{_closed_port()}"
    run = TrainingTracker(uri, "denoise/dncnn", _Recipe(), DATA)  # building it does not fail
    assert run.error is None
    with caplog.at_level(logging.WARNING, logger="restorebench.track.training"):
        assert run.open() is run
    assert run.error.startswith("ConnectionError: MLflow server") and run.client is None
    assert "MLflow logging of training is off" in caplog.text and uri in caplog.text
    run.log(1, {"loss": 0.5})  # logging is off: nothing happens
    assert run.ids() == {"tracking_uri": uri, "run_id": None}
    assert run.finish(__file__, None) == (None, run.error)


def test_a_with_block_that_ends_before_finish_marks_the_run_failed(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(KeyError), TrainingTracker(uri, "denoise/dncnn", _Recipe(), DATA) as run:
        run.log(1, {"val_psnr": 30.0})
        raise KeyError("training stopped")
    client = MlflowClient(tracking_uri=uri)
    stopped = client.get_run(run.run_id)
    assert stopped.info.status == "FAILED" and stopped.data.params["architecture"] == "tiny"
    checkpoint = tmp_path / "m.safetensors"
    checkpoint.write_bytes(b"weights")
    with TrainingTracker(uri, "denoise/dncnn", _Recipe(), DATA) as done:
        assert done.finish(checkpoint, None) == (done.run_id, None)
    assert client.get_run(done.run_id).info.status == "FINISHED"


class _BrokenStore:
    def set_terminated(self, run_id, status=None):
        raise OSError("the disk is full")


def test_a_run_that_cannot_be_marked_failed_is_logged(caplog):
    from restorebench.track.runs import _terminate

    with caplog.at_level(logging.WARNING, logger="restorebench.track.runs"):
        _terminate(_BrokenStore(), "abc123", "FAILED")
    assert "could not mark MLflow run abc123 FAILED" in caplog.text and "OSError: the disk is full" in caplog.text


class _RacingClient:
    """An experiment another process creates between the lookup and the creation."""

    def __init__(self, error):
        self.error, self.lookups = error, 0

    def get_experiment_by_name(self, name):
        self.lookups += 1
        if self.lookups == 1:
            return None

        class Made:
            experiment_id, tags = "7", {"mlflow.experimentKind": "custom_model_development"}

        return Made()

    def create_experiment(self, name, artifact_location=None, tags=None):
        raise self.error


def test_an_experiment_created_meanwhile_is_used_and_other_errors_are_raised():
    from mlflow.exceptions import MlflowException

    raced = _RacingClient(MlflowException("Experiment 'restorebench' already exists."))
    assert tracking.experiment_id(raced, "sqlite:///x.db", "restorebench") == "7" and raced.lookups == 2
    broken = _RacingClient(RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        tracking.experiment_id(broken, "sqlite:///x.db", "restorebench")
    assert broken.lookups == 1
