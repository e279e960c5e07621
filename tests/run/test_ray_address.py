"""``--address`` is checked before a run creates anything: nothing listening, or something that
is not Ray (it does not answer a gRPC handshake), is one line within seconds; a real GCS passes."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from restorebench.core.errors import UserError
from restorebench.run.ray_runtime import _probe
from tests.runs import cli


@pytest.mark.ray
def test_a_real_gcs_passes_the_probe():
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        _probe(cluster.address)  # the head's GCS answers the HTTP/2 preface with its SETTINGS
    finally:
        cluster.shutdown()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def test_something_that_is_not_ray_is_refused_at_once_and_no_run_folder_is_made(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(UserError, match="something answers there, but not Ray"):
            _probe(address)
        started = time.perf_counter()
        args = ["--task", "denoise", "--method", "denoise/median", "--dataset", "synthetic:deadleaves?n=1&size=32"]
        result = cli(
            "run", *args, "--executor", "ray", "--address", address, "--no-tracking", "--out", "r", cwd=tmp_path
        )
        elapsed = time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot connect to the Ray cluster at {address}: something answers there, but not Ray" in result.stderr
    assert "(it replied '" in result.stderr and "gcs_client" not in result.stderr
    assert elapsed < 15 and not (tmp_path / "r").exists()
