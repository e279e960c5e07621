"""Shared fixtures: an isolated environment, small image folders, one Ray runtime per module."""

from __future__ import annotations

import os

# Before anything imports datasets/mlflow: no hub calls, no telemetry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own results cache, so no test sees another's results."""
    monkeypatch.setenv("RESTOREBENCH_CACHE", str(tmp_path_factory.mktemp("cache") / "results.sqlite"))


def write_image(path: Path, array: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three small real images (RGB, gray, RGB JPEG) cut from scikit-image's photos."""
    import skimage.io
    from skimage import data as skdata

    root = Path(skdata.__file__).parent
    folder = tmp_path / "images"
    folder.mkdir()
    astronaut = skimage.io.imread(root / "astronaut.png")[100:164, 150:230]
    camera = skimage.io.imread(root / "camera.png")[200:264, 200:264]
    coffee = skimage.io.imread(root / "coffee.png")[150:214, 250:322]
    write_image(folder / "a_astronaut.png", astronaut)
    write_image(folder / "b_camera.png", camera)
    write_image(folder / "c_coffee.jpg", coffee)
    return folder


@pytest.fixture(scope="module")
def ray_runtime():
    """One local Ray runtime for a whole test module (starting one costs seconds)."""
    import ray

    from restorebench.run.ray_runtime import start_local_ray

    start_local_ray(num_cpus=2)  # private, on 127.0.0.1 only
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session", autouse=True)
def _plugins():
    """Fill the registries once, as the command line does at start."""
    from restorebench import load_plugins

    load_plugins()
