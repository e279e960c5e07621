"""No tracked file names a folder of the machine it was made on: docs, tests, checkpoint metadata
and data files name the training data relative to the project (``../shared/data/train/...``)."""

from __future__ import annotations

import subprocess

import pytest

from tests import REPO


def test_no_tracked_file_names_this_checkouts_absolute_folders():
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    needles = [f"{REPO}/".encode(), f"{REPO.parent / 'shared'}".encode()]
    found = []
    for name in filter(None, listed.decode().split("\0")):
        path = REPO / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        found += [f"{name}: {n.decode()}" for n in needles if n in data]
    assert not found, "absolute folders of this machine in tracked files:\n" + "\n".join(found)
