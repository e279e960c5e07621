"""``synthetic:deadleaves?n=8&size=256&seed=0&rmin=2&rmax=64&gray=false``: seeded dead-leaves images.

Bit-identical on every machine: image i depends on (seed, i) and the drawing parameters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from restorebench.core.interfaces import ImageRef, Params, Source
from restorebench.core.refs import stable_json
from restorebench.core.registry import register

GENERATOR_VERSION = "1"  # bump when the dead-leaves pictures change for a given seed


class DeadLeavesParams(Params):
    target: Literal["deadleaves"] = "deadleaves"
    n: int = Field(8, ge=1)
    size: int = Field(256, ge=16)
    seed: int = 0
    rmin: float = Field(2, gt=0)
    rmax: float = 64
    gray: bool = False

    @model_validator(mode="after")
    def _check_radii(self) -> DeadLeavesParams:
        if not self.rmin < self.rmax:
            raise ValueError(f"need 0 < rmin < rmax, got rmin={self.rmin}, rmax={self.rmax}")
        return self


def deadleaves(
    size: int, rng: np.random.Generator, *, rmin: float = 2.0, rmax: float = 64.0, gray: bool = False
) -> np.ndarray:
    """A dead-leaves image: opaque disks of random colour stacked until the canvas is covered.

    Radii have density proportional to r**-3 on [rmin, rmax] (scale invariance); disks are
    generated front to back, each one visible only where no earlier disk lies, until no
    pixel is left (there is no background). Centres are uniform over the canvas grown by
    the radius, so the picture is stationary up to its borders.

    Returns float32 ``size x size x C`` in [0, 1], C = 1 if ``gray`` else 3.

    References
    ----------
    Lee, Mumford & Huang, "Occlusion models for natural images", IJCV 41, 2001.
    Cao, Guichard & Hornung, "Dead leaves model for measuring texture quality on a
    digital camera", Proc. SPIE 7537, 2010.
    """
    import cv2

    channels = 1 if gray else 3
    out = np.zeros((size, size, channels), np.float32)
    uncovered = np.ones((size, size), np.uint8)
    mean_area = np.pi * 2 * np.log(rmax / rmin) / (rmin**-2 - rmax**-2)  # pi E[r^2]
    chunk = int(np.clip(size * size / mean_area, 256, 1 << 16))
    labels = np.empty((size, size), np.int32)
    while uncovered.any():
        r, cx, cy, colours = _disks(rng, chunk, size, rmin, rmax, channels)
        visible = np.flatnonzero(_touches(uncovered, r, cx, cy))[::-1]  # back to front
        labels.fill(-1)
        xs, ys, rads = (np.round(v[visible] * 16).astype(int).tolist() for v in (cx, cy, r))  # 4 bits subpixel
        for x, y, rad, k in zip(xs, ys, rads, visible.tolist()):
            cv2.circle(labels, (x, y), rad, k, -1, cv2.LINE_8, 4)
        new = (labels >= 0) & (uncovered > 0)
        out[new] = colours[labels[new]]
        uncovered[new] = 0
    return out


def _disks(rng: np.random.Generator, count: int, size: int, rmin: float, rmax: float, channels: int) -> tuple:
    """Radii ~ r^-3 (inverse CDF), thinned by the area of centres whose disk can reach the canvas."""
    u = rng.random(count)
    r = (rmin**-2 - u * (rmin**-2 - rmax**-2)) ** -0.5
    r = r[rng.random(count) * (size + 2 * rmax) ** 2 < (size + 2 * r) ** 2]
    cx = rng.random(r.size) * (size - 1 + 2 * r) - r
    cy = rng.random(r.size) * (size - 1 + 2 * r) - r
    return r, cx, cy, rng.random((r.size, channels), dtype=np.float32)


def _touches(uncovered: np.ndarray, r: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Which disks' bounding boxes hold an uncovered pixel (others cannot change the picture)."""
    import cv2

    integral = cv2.integral(uncovered)
    h, w = uncovered.shape
    x0, x1 = (np.clip(np.floor(cx - r), 0, w).astype(int), np.clip(np.ceil(cx + r) + 1, 0, w).astype(int))
    y0, y1 = (np.clip(np.floor(cy - r), 0, h).astype(int), np.clip(np.ceil(cy + r) + 1, 0, h).astype(int))
    return integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0] > 0


def _item_rng(seed: int, index: int) -> np.random.Generator:
    digest = hashlib.sha256(stable_json(["deadleaves", seed, index]).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


@register
class SyntheticSource(Source):
    """Seeded dead-leaves images; image i depends on (seed, i) and the drawing parameters, not on n."""

    name = "synthetic"
    Params = DeadLeavesParams

    lazy = True

    def list_images(self) -> list[ImageRef]:
        return list(self.iter_images())

    def iter_images(self) -> Iterator[ImageRef]:
        recipe = self.params.model_dump(mode="json", exclude={"n"})
        return (ImageRef(self.ref, f"{i:05d}", _recipe_hash(recipe, i), str(i)) for i in range(self.params.n))

    def count_images(self) -> int:
        return self.params.n

    def load(self, image: ImageRef) -> np.ndarray:
        p = self.params
        return deadleaves(p.size, _item_rng(p.seed, int(image.locator)), rmin=p.rmin, rmax=p.rmax, gray=p.gray)


def _recipe_hash(recipe: dict[str, Any], index: int) -> str:
    text = stable_json({"generator": "deadleaves", "version": GENERATOR_VERSION, "params": recipe, "index": index})
    return hashlib.sha256(text.encode()).hexdigest()
