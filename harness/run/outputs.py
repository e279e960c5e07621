"""``--save-outputs``: every restored image as a PNG under ``RUN_DIR/outputs``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from restorebench.core.refs import slug
from restorebench.data.images import IMAGE_EXTENSIONS

if TYPE_CHECKING:
    from restorebench.run.units import WorkUnit


def output_path(root: Path, unit: WorkUnit, method: str) -> Path:
    """Where ``--save-outputs`` puts one restored image: ``DATASET/DEGRADATION/METHOD/IMAGE.png``."""
    key = Path(unit.image.key)
    name = slug((key.with_suffix("") if key.suffix.lower() in IMAGE_EXTENSIONS else key).as_posix())
    return root / slug(unit.dataset) / slug(unit.degradation) / slug(method) / f"{name}.png"


def save_output(root: Path, unit: WorkUnit, method: str, png: bytes) -> Path:
    """Write one restored image (PNG bytes from the worker), atomically."""
    import os
    import uuid

    path = output_path(root, unit, method)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return path
