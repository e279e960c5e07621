"""Sample crops (clean / degraded / restored) on disk, and before/after grids built from them;
for photos with no reference, every photo's whole input and every method's output (views)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restorebench.core.refs import slug

if TYPE_CHECKING:
    from restorebench.run.units import WorkUnit

_GAP = 4


def sample_dir(root: Path, task: str, dataset: str, degradation: str) -> Path:
    return root / slug(task) / slug(dataset) / slug(degradation)


def save_sample(root: Path, unit: WorkUnit, method: str, sample: dict[str, np.ndarray]) -> None:
    """Write one unit's crops: ``clean.png``, ``degraded.png`` and ``<method>.png`` (a photo
    with no reference: its whole views, see :func:`save_views`)."""
    if "input" in sample:
        save_views(root, unit, method, sample)
        return
    folder = sample_dir(root, unit.task, unit.dataset, unit.degradation)
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in (
        ("clean", sample["clean"]),
        ("degraded", sample["degraded"]),
        (f"method-{slug(method)}", sample["restored"]),
    ):
        path = folder / f"{name}.png"
        if name.startswith("method-") or not path.exists():
            write_png(path, img)
    (folder / "image.txt").write_text(unit.image.key)


def view_dir(root: Path, task: str, dataset: str, degradation: str, image: str) -> Path:
    """Where the views of one photo with no reference are kept: a folder per image, named
    for its key and a short hash of it (two keys never share a folder)."""
    import hashlib

    digest = hashlib.sha256(image.encode()).hexdigest()[:8]
    return sample_dir(root, task, dataset, degradation) / "views" / f"{slug(image)[:80]}-{digest}"


def save_views(root: Path, unit: WorkUnit, method: str, sample: dict[str, np.ndarray]) -> None:
    """Write one photo's whole input (``input.png``, once) and one method's output
    (``method-<method>.png``), with the photo's key in ``image.txt``."""
    folder = view_dir(root, unit.task, unit.dataset, unit.degradation, unit.image.key)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "input.png").exists():
        write_png(folder / "input.png", sample["input"])
        (folder / "image.txt").write_text(unit.image.key)
    write_png(folder / f"method-{slug(method)}.png", sample["restored"])


def views_of(root: Path, task: str, dataset: str, degradation: str) -> list[tuple[str, Path]]:
    """``(image key, folder)`` of every photo with views in a group, sorted by key."""
    folder = sample_dir(root, task, dataset, degradation) / "views"
    if not folder.is_dir():
        return []
    found = [(p.joinpath("image.txt").read_text(), p) for p in folder.iterdir() if (p / "image.txt").is_file()]
    return sorted(found)


def write_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    arr = img[..., 0] if img.ndim == 3 and img.shape[2] == 1 else img
    Image.fromarray(np.ascontiguousarray(arr)).save(path)


def read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    return arr


def grid(images: list[np.ndarray]) -> np.ndarray:
    """Images side by side on a white background, each padded to the tallest."""
    rgb = [
        np.repeat(i[..., None], 3, axis=2) if i.ndim == 2 else (np.repeat(i, 3, axis=2) if i.shape[2] == 1 else i)
        for i in images
    ]
    height = max(i.shape[0] for i in rgb)
    width = sum(i.shape[1] for i in rgb) + _GAP * (len(rgb) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for img in rgb:
        canvas[: img.shape[0], x : x + img.shape[1]] = img
        x += img.shape[1] + _GAP
    return canvas


def method_grid(folder: Path, method: str) -> np.ndarray | None:
    """clean | degraded | restored for one method, or None when its crop is missing."""
    return _grid_of([folder / "clean.png", folder / "degraded.png", folder / f"method-{slug(method)}.png"])


def view_grid(folder: Path, method: str) -> np.ndarray | None:
    """input | output of one photo with no reference (its views folder) for one method, or None."""
    return _grid_of([folder / "input.png", folder / f"method-{slug(method)}.png"])


def _grid_of(paths: list[Path]) -> np.ndarray | None:
    return grid([read_png(p) for p in paths]) if all(p.exists() for p in paths) else None
