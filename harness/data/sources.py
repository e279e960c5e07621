"""Image sources: the datasets a suite names, as ``scheme:target?key=value`` references.

Schemes:

- ``bundled:photos`` / ``bundled:photos-train`` -- scikit-image's sample photos, read from
  the files inside the installed wheel (never downloaded); the two sets do not overlap.
- ``synthetic:deadleaves?n=8&size=256&seed=0&rmin=2&rmax=64&gray=false`` -- seeded
  dead-leaves images, bit-identical on every machine.
- ``folder:DIR?recursive=false`` -- the PNG/JPEG/TIFF/BMP files of a local directory.
- ``hf:NAME?split=test&column=image&limit=N`` -- a Hugging Face dataset id, or a local
  directory written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.

Workers rebuild a source from its reference with :func:`get_source` and load images by
themselves. Every loaded image goes through :func:`to_float_image`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from harness.errors import UserError
from harness.interfaces import ImageRef, Params, Source
from harness.refs import Ref, canonical, stable_json
from harness.registry import SOURCES

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
GENERATOR_VERSION = "1"  # bump when the dead-leaves pictures change for a given seed
_SCHEME_HINT = "write SCHEME:TARGET, e.g. bundled:photos, folder:DIR, synthetic:deadleaves?n=8, hf:NAME"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageLoadError(Exception):
    """One image cannot be read or decoded; the harness fails that unit and goes on."""



def build_source(text: str) -> Source:
    """Build a source from a dataset reference such as ``folder:photos?recursive=true``.

    >>> build_source("synthetic:deadleaves?n=2").ref
    'synthetic:deadleaves?n=2'
    """
    scheme, sep, rest = str(text).strip().partition(":")
    if not sep or not scheme:
        hint = f"for a directory write folder:{text}" if os.path.isdir(str(text)) else _SCHEME_HINT
        raise UserError(f"dataset reference {text!r} has no scheme", hint=hint)
    cls = SOURCES.get(scheme)
    if not rest.strip():
        raise UserError(f"dataset reference {text!r} has no target after {scheme + ':'!r}", hint=_SCHEME_HINT)
    ref = Ref.parse(rest, what="dataset reference")
    if "target" in ref.params:
        raise UserError(f"dataset reference {text!r}: give the target after the colon, not as ?target=")
    return cls.from_ref(Ref(scheme, {**ref.params, "target": ref.name}))


_SOURCE_CACHE: dict[str, Source] = {}


def get_source(text: str) -> Source:
    """:func:`build_source`, cached per process (workers ask for every batch)."""
    if text not in _SOURCE_CACHE:
        _SOURCE_CACHE[text] = build_source(text)
    return _SOURCE_CACHE[text]


class _SchemeSource(Source):
    """A source whose reference is ``scheme:target?params-that-differ-from-defaults``."""

    @property
    def ref(self) -> str:
        values = self.params.model_dump(mode="json")
        target = values.pop("target")
        fields = type(self.params).model_fields
        defaults = {k: f.default for k, f in fields.items() if k != "target" and not f.is_required()}
        return canonical(f"{self.name}:{target}", values, defaults)



def to_float_image(arr: np.ndarray) -> np.ndarray:
    """Convert an image array to the harness convention: float32 HWC in [0, 1], 1 or 3 channels.

    uint8 is divided by 255, uint16 by 65535, bool maps to {0, 1}; float input must already
    lie in [0, 1]. A 2-D array becomes HxWx1, HxWx2 (gray + alpha) becomes gray, and RGBA
    becomes RGB by discarding alpha (no compositing onto a background). Anything else
    raises ``ValueError``.

    >>> to_float_image(np.array([[0, 255]], np.uint8)).shape
    (1, 2, 1)
    """
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.size == 0:
        raise ValueError(f"expected an HxW or HxWxC image with C in 1-4, got shape {arr.shape}")
    if arr.shape[2] in (2, 4):
        arr = arr[:, :, : arr.shape[2] - 1]  # drop alpha
    scale = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535, np.dtype(np.bool_): 1}.get(arr.dtype)
    if scale is not None:
        return arr.astype(np.float32) / np.float32(scale)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise ValueError(f"float image values must lie in [0, 1], got [{out.min()}, {out.max()}]")
        return out
    raise ValueError(f"unsupported image dtype {arr.dtype}; expected uint8, uint16, bool or float in [0, 1]")


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG/TIFF/BMP bytes (16 bits kept, palettes expanded) with :func:`to_float_image`.

    ``name`` (a path or row) only labels the :class:`ImageLoadError` raised on failure.
    """
    import cv2

    if not data:
        raise ImageLoadError(f"cannot decode {name}: not a PNG/JPEG/TIFF/BMP image (0 bytes)")
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None:
        raise ImageLoadError(f"cannot decode {name}: not a PNG/JPEG/TIFF/BMP image or corrupt ({len(data)} bytes)")
    if arr.ndim == 3 and data[:8] == _PNG_SIGNATURE and len(data) > 25 and data[25] in (0, 4):
        arr = arr[:, :, 0]  # a gray(+alpha) PNG that the decoder expanded to BGR(A)
    elif arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr[:, :, [2, 1, 0]]  # BGR(A) -> RGB, alpha dropped
    try:
        return to_float_image(arr)
    except ValueError as exc:
        raise ImageLoadError(f"cannot decode {name}: {exc}") from None


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read and decode an image file; any failure is an :class:`ImageLoadError` naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_image(data, str(path))


def _file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return hashlib.sha256(f"unreadable:{path}".encode()).hexdigest()



_BUNDLED = {
    "photos": ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg"),
    "photos-train": (
        "brick.png", "grass.png", "gravel.png", "coins.png", "clock_motion.png", "color.png",
        "ihc.png", "motorcycle_right.png", "page.png", "text.png", "cell.png", "moon.png",
    ),
}  # fmt: skip


class BundledParams(Params):
    target: Literal["photos", "photos-train"] = "photos"


@SOURCES.register("bundled")
class BundledSource(_SchemeSource):
    """scikit-image's sample photos: ``photos`` is the test set, ``photos-train`` is disjoint from it."""

    name = "bundled"
    Params = BundledParams

    def list_images(self) -> list[ImageRef]:
        folder, refs = _skimage_data(), []
        for fname in _BUNDLED[self.params.target]:
            if (folder / fname).is_file():
                refs.append(ImageRef(self.ref, Path(fname).stem, _file_hash(folder / fname), fname))
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



class FolderParams(Params):
    target: str = Field(min_length=1)
    recursive: bool = False


@SOURCES.register("folder")
class FolderSource(_SchemeSource):
    """The image files of a local directory (hidden files skipped), keyed by relative path."""

    name = "folder"
    Params = FolderParams

    def list_images(self) -> list[ImageRef]:
        root = Path(self.params.target).expanduser().absolute()
        accepted = ", ".join(IMAGE_EXTENSIONS)
        if not root.is_dir():
            what = "does not exist" if not root.exists() else "is not a directory"
            raise UserError(f"dataset folder {root} {what}", hint=f"give a directory of {accepted} files")
        paths = root.rglob("*") if self.params.recursive else root.iterdir()
        files = {
            p.relative_to(root).as_posix(): p
            for p in paths
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        }
        if not files:
            where = "under" if self.params.recursive else "in"
            raise UserError(f"no image files {where} {root}; accepted extensions: {accepted}")
        return [ImageRef(self.ref, key, _file_hash(p), str(p)) for key, p in sorted(files.items())]

    def load(self, image: ImageRef) -> np.ndarray:
        return read_image(image.locator)



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


@SOURCES.register("synthetic")
class SyntheticSource(_SchemeSource):
    """Seeded dead-leaves images; image i depends on (seed, i) and the drawing parameters, not on n."""

    name = "synthetic"
    Params = DeadLeavesParams

    def list_images(self) -> list[ImageRef]:
        recipe = self.params.model_dump(mode="json", exclude={"n"})
        return [ImageRef(self.ref, f"{i:05d}", _recipe_hash(recipe, i), str(i)) for i in range(self.params.n)]

    def load(self, image: ImageRef) -> np.ndarray:
        p = self.params
        return deadleaves(p.size, _item_rng(p.seed, int(image.locator)), rmin=p.rmin, rmax=p.rmax, gray=p.gray)


def _recipe_hash(recipe: dict[str, Any], index: int) -> str:
    text = stable_json({"generator": "deadleaves", "version": GENERATOR_VERSION, "params": recipe, "index": index})
    return hashlib.sha256(text.encode()).hexdigest()



class HFParams(Params):
    target: str = Field(min_length=1)
    split: str = "test"
    column: str | None = None
    limit: int | None = Field(None, ge=1)

    @field_validator("target")
    @classmethod
    def _absolute_local_dir(cls, target: str) -> str:
        """A local ``save_to_disk`` folder is kept absolute: workers may run elsewhere."""
        return os.path.abspath(target) if os.path.isdir(target) else target


_HF_CACHE: dict[tuple[str, str, str | None], tuple[Any, str]] = {}


@SOURCES.register("hf")
class HFSource(_SchemeSource):
    """A Hugging Face dataset (hub id or ``save_to_disk`` directory); rows keyed by index."""

    name = "hf"
    Params = HFParams

    def _dataset(self) -> tuple[Any, str]:
        """The split with its image column cast to undecoded bytes, and that column's name."""
        p = self.params
        key = (p.target, p.split, p.column)
        if key not in _HF_CACHE:
            import datasets

            ds = _open_split(p.target, p.split)
            column = _image_column(ds, p.column, self.ref)
            _HF_CACHE[key] = (ds.cast_column(column, datasets.Image(decode=False)), column)
        return _HF_CACHE[key]

    def list_images(self) -> list[ImageRef]:
        ds, column = self._dataset()
        rows = len(ds) if self.params.limit is None else min(len(ds), self.params.limit)
        refs, row = [], 0
        for batch in ds.select(range(rows)).select_columns([column]).iter(batch_size=256):
            for cell in batch[column]:
                refs.append(ImageRef(self.ref, f"{row:05d}", _cell_hash(cell), str(row)))
                row += 1
        return refs

    def load(self, image: ImageRef) -> np.ndarray:
        ds, column = self._dataset()
        cell, name = ds[int(image.locator)][column], f"{self.ref} row {image.locator}"
        if cell and cell.get("bytes"):
            return decode_image(cell["bytes"], name)
        if cell and cell.get("path"):
            return read_image(cell["path"])
        raise ImageLoadError(f"cannot decode {name}: the row holds neither image bytes nor a path")


def _open_split(target: str, split: str) -> Any:
    import datasets

    if os.path.isdir(target):
        try:
            ds = datasets.load_from_disk(target)
        except FileNotFoundError as exc:
            raise UserError(f"{target} is not a dataset written by save_to_disk: {exc}") from None
        if isinstance(ds, datasets.DatasetDict):
            if split not in ds:
                raise UserError(f"dataset {target} has no split {split!r}; splits: {', '.join(sorted(ds))}")
            ds = ds[split]
        return ds
    try:
        return datasets.load_dataset(target, split=split)
    except Exception as exc:
        raise UserError(
            f"could not load Hugging Face dataset {target!r} (split {split!r}): {exc}",
            hint="the hub is unreachable offline; save it once with Dataset.save_to_disk(DIR) and use hf:DIR",
        ) from None


def _image_column(ds: Any, column: str | None, ref: str) -> str:
    import datasets

    images = [k for k, f in ds.features.items() if isinstance(f, datasets.Image)]
    if column is None and images:
        return images[0]
    if column is not None and column in images:
        return column
    what = f"has no image column {column!r}" if column else "has no image column"
    raise UserError(f"dataset {ref} {what}; columns: {', '.join(ds.column_names)}", hint="pick one with ?column=NAME")


def _cell_hash(cell: dict[str, Any] | None) -> str:
    if cell and cell.get("bytes"):
        return hashlib.sha256(cell["bytes"]).hexdigest()
    path = (cell or {}).get("path") or ""
    return _file_hash(Path(path)) if path and os.path.isfile(path) else hashlib.sha256(path.encode()).hexdigest()
