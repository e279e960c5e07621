"""Servers the tests start on 127.0.0.1 and stop by their process id."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen | None) -> None:
    """SIGTERM the process group a server was started in (``start_new_session``), then SIGKILL."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class S3Server:
    """moto's S3-protocol server (``moto.server``) on 127.0.0.1, with a bucket; ``env`` is what a
    client needs (credentials and ``AWS_ENDPOINT_URL``)."""

    def __init__(self, bucket: str = "bench") -> None:
        self.port = free_port()
        self.bucket = bucket
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> S3Server:
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            self.stop()
            raise RuntimeError("moto server did not listen in 60 s")
        self.filesystem(allow_bucket_creation=True).create_dir(self.bucket)
        return self

    def filesystem(self, **options):
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key="testing", secret_key="testing", region="us-east-1", endpoint_override=self.endpoint, **options
        )

    def put(self, local: Path, key: str) -> None:
        with self.filesystem().open_output_stream(f"{self.bucket}/{key}") as stream:
            stream.write(local.read_bytes())

    def keys(self, prefix: str) -> list[str]:
        import pyarrow.fs as pafs

        infos = self.filesystem().get_file_info(pafs.FileSelector(f"{self.bucket}/{prefix}", recursive=True))
        return sorted(i.path.split("/", 1)[1] for i in infos if i.type == pafs.FileType.File)

    def stop(self) -> None:
        stop_group(self.proc)
