"""``bundled:photos`` / ``bundled:photos-train``: scikit-image's sample photos.

Read from the files inside the installed wheel (never downloaded); the two sets do not
overlap, so ``photos-train`` can train what ``photos`` tests.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Literal

import numpy as np

from restorebench.core.errors import UserError
from restorebench.core.interfaces import ImageRef, Params, Source
from restorebench.core.registry import register
from restorebench.data.images import file_hash, read_image

log = logging.getLogger(__name__)


_BUNDLED = {
    "photos": ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"),
    "photos-train": (
        "brick.png",
        "grass.png",
        "gravel.png",
        "coins.png",
        "clock_motion.png",
        "color.png",
        "ihc.png",
        "motorcycle_right.png",
        "page.png",
        "text.png",
        "cell.png",
        "moon.png",
    ),
}


class BundledParams(Params):
    target: Literal["photos", "photos-train"] = "photos"


@register
class BundledSource(Source):
    """scikit-image's sample photos: ``photos`` is the test set, ``photos-train`` is disjoint from it."""

    name = "bundled"
    Params = BundledParams

    def list_images(self) -> list[ImageRef]:
        folder, refs = _skimage_data(), []
        for fname in _BUNDLED[self.params.target]:
            if (folder / fname).is_file():
                refs.append(ImageRef(self.ref, Path(fname).stem, file_hash(folder / fname), fname))
            else:
                log.warning("bundled:%s: %s is missing from this scikit-image; skipped", self.params.target, fname)
        return sorted(refs, key=lambda r: r.key)

    def load(self, image: ImageRef) -> np.ndarray:
        return read_image(_skimage_data() / image.locator)  # each worker's own install


def _skimage_data() -> Path:
    spec = importlib.util.find_spec("skimage")  # finds the files without importing skimage.data
    if spec is None or spec.origin is None:
        raise UserError("bundled datasets need scikit-image", hint="pip install scikit-image")
    return Path(spec.origin).parent / "data"
