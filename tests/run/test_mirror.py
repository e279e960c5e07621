"""A run directory on a filesystem URI (file:// here; S3 in tests/e2e/test_remote_storage.py)."""

from __future__ import annotations

from restorebench.run.mirror import Mirror


def test_push_syncs_pull_copies_and_an_earlier_staging_copy_is_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    remote = tmp_path / "bucket" / "run"
    uri = f"file://{remote}"
    mirror = Mirror(uri)
    local = mirror.pull()
    assert list(local.iterdir()) == []  # nothing there yet
    (local / "shards").mkdir()
    (local / "shards" / "part-1.parquet").write_bytes(b"one")
    (local / "run.json").write_text("{}")
    (local / ".results.parquet.tmp").write_bytes(b"half-written")  # temporary files stay local
    assert mirror.push() == 2
    assert sorted(p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()) == [
        "run.json",
        "shards/part-1.parquet",
    ]
    assert mirror.push() == 0  # nothing changed
    (local / "shards" / "part-1.parquet").unlink()  # merged by compaction
    (local / "results.parquet").write_bytes(b"table")
    assert mirror.push() == 1
    assert not (remote / "shards" / "part-1.parquet").exists() and (remote / "results.parquet").read_bytes() == b"table"

    (local / "only-here.txt").write_text("a result a failed push left behind")
    again = Mirror(uri)
    fresh = again.pull()
    assert (fresh / "results.parquet").read_bytes() == b"table" and not (fresh / "only-here.txt").exists()
    kept = [p for p in fresh.parent.iterdir() if p.name.startswith(f"{fresh.name}.previous-")]
    assert len(kept) == 1 and (kept[0] / "only-here.txt").exists()
