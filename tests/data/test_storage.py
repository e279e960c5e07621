"""Filesystem URIs: one filesystem per bucket and process, paths as pyarrow reads them."""

from __future__ import annotations

import pytest


def test_a_buckets_filesystem_is_made_once_and_paths_match_pyarrows(monkeypatch):
    import pyarrow.fs as pafs

    from restorebench.data import storage

    for key, value in {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # never contacted: nothing is read
    monkeypatch.setattr(storage, "_OPENED", {})
    uris = ["s3://b/k0.png", "s3://b/runs/r1/", "s3://b/", "s3://b", "s3://b/a%20b/c", "file:///tmp/a/", "file:///tmp"]
    for uri in uris + uris:  # the second pass is served from the cache
        assert storage.open_filesystem(uri)[1] == pafs.FileSystem.from_uri(uri)[1], uri
    assert storage.open_filesystem("s3://b/x")[0] is storage.open_filesystem("s3://b/y/z")[0]
    assert storage.open_filesystem("s3://b/x")[0] is not storage.open_filesystem("s3://other/x")[0]


def test_an_unknown_scheme_is_a_clear_error():
    from restorebench.core.errors import UserError
    from restorebench.data.storage import open_filesystem

    with pytest.raises(UserError, match="cannot open nosuchfs://x/y"):
        open_filesystem("nosuchfs://x/y")
