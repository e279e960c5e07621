"""The ``mask`` degradation: irregular holes, generated or taken from a user's mask folder.

``mask?ratio=0.1-0.2`` draws a seeded free-form mask whose hole ratio lies in the bin
(``border=false`` keeps holes off the image border); ``mask?folder=DIR&ratio=0.3-0.4``
picks, deterministically per image, one of the folder's masks whose measured ratio is in
the bin, resized (nearest neighbour) to the image; ``invert=true`` for sets that store
holes as white. Mask files are read as luminance and thresholded at 0.5.

The degraded input is the image with every hole pixel set to :data:`HOLE_FILL` (white,
so the holes show in sample grids); the mask (1 = valid, 0 = hole, ``H x W`` float32)
travels in ``Degraded.extras["mask"]``. Methods read it there and paste the known pixels
back (see :mod:`restorebench.tasks.inpaint.baselines`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from pydantic import field_validator, model_validator

from restorebench import AsIs, Degradation, Degraded, ImageRef, Params, Source, register
from restorebench.tasks.inpaint.masks import (
    MASK_EXTENSIONS,
    RatioBin,
    fit_mask,
    free_form_mask,
    hole_ratio,
    read_mask_file,
    scan_mask_folder,
)

log = logging.getLogger(__name__)

HOLE_FILL = 1.0  # the value of every hole pixel in the degraded input


def existing_folder(value: str) -> str:
    """A mask folder's absolute path (workers may run elsewhere), or a ValueError saying it is not one."""
    path = Path(value).expanduser().absolute()
    if not path.is_dir():
        raise ValueError(f"mask folder {path} does not exist or is not a directory")
    return str(path)


class MaskParams(Params):
    ratio: str  # a hole-ratio bin LOW-HIGH, e.g. 0.1-0.2 (the paper's bins: 0.01-0.1, 0.1-0.2, ..., 0.5-0.6)
    border: bool = True  # False: no hole within a few pixels of the image border
    folder: str | None = None  # a folder of mask files to pick from instead of generating
    invert: bool = False  # the folder's masks store holes as white

    @field_validator("ratio")
    @classmethod
    def _bin(cls, value: str) -> str:
        return str(RatioBin.parse(value))

    @field_validator("folder")
    @classmethod
    def _folder(cls, value: str | None) -> str | None:
        return None if value is None else existing_folder(value)

    @model_validator(mode="after")
    def _usable(self) -> MaskParams:
        """A mask folder with no usable mask for the bin is refused before any work starts."""
        if self.folder:
            _fitting(Path(self.folder), RatioBin.parse(self.ratio), self.invert)
        return self


@register
class Mask(Degradation):
    """Irregular holes in a hole-ratio bin (Liu et al., ECCV 2018)."""

    name = "mask"
    task = "inpaint"
    level = "ratio"
    Params = MaskParams

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        h, w = image.shape[:2]
        ratio = RatioBin.parse(self.params.ratio)
        if self.params.folder:
            mask = self._from_folder(ratio, h, w, rng)
        else:
            mask = free_form_mask(h, w, ratio, rng, border=self.params.border)
        degraded = np.where(mask[..., None] > 0.5, image, np.float32(HOLE_FILL)).astype(np.float32)
        return Degraded(
            image=degraded,
            degradation=self.name,
            params=self.params.model_dump(),
            extras={"mask": mask, "hole_ratio": hole_ratio(mask)},
        )

    def _from_folder(self, ratio: RatioBin, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
        folder = Path(self.params.folder)
        fitting = _fitting(folder, ratio, self.params.invert)
        chosen = fitting[int(rng.integers(len(fitting)))]
        mask = read_mask_file(chosen.path, invert=self.params.invert)
        if mask.shape != (h, w) and (str(folder), mask.shape, (h, w)) not in _WARNED:
            _WARNED.add((str(folder), mask.shape, (h, w)))
            log.warning("masks of %s (%dx%d) are resized (nearest) to %dx%d images", folder, *mask.shape, h, w)
        return fit_mask(mask, h, w)


_SCANS: dict[tuple[str, bool, float], tuple[list, list[str]]] = {}
_WARNED: set[tuple] = set()  # (folder, mask size, image size) already warned about


def _fitting(folder: Path, ratio: RatioBin, invert: bool) -> list:
    """The folder's masks whose hole ratio is in ``ratio``; none is a ValueError naming every
    file left out and why (unreadable, all hole, no hole) or the ratios the masks have."""
    masks, skipped = _scanned(folder, invert)
    if not masks:
        why = f": {len(skipped)} file(s) rejected ({'; '.join(skipped[:5])})" if skipped else " (no mask file in it)"
        raise ValueError(f"mask folder {folder} holds no usable mask{why}")
    fitting = [m for m in masks if m.ratio in ratio]
    if not fitting:
        lo, hi = min(m.ratio for m in masks), max(m.ratio for m in masks)
        raise ValueError(
            f"no mask of {folder} has a hole ratio in bin {ratio} (its {len(masks)} masks range "
            f"{lo:.3f}-{hi:.3f}); pick another bin, or invert=true if the folder stores holes as white"
        )
    return fitting


def _scanned(folder: Path, invert: bool) -> tuple[list, list[str]]:
    """The folder's masks and ratios, read once per process (and again when the folder changes)."""
    key = (str(folder), invert, os.stat(folder).st_mtime)
    if key not in _SCANS:
        masks, skipped = scan_mask_folder(folder, invert=invert)
        if skipped:
            log.warning("mask folder %s: %d file(s) left out: %s", folder, len(skipped), "; ".join(skipped[:5]))
        _SCANS[key] = (masks, skipped)
    return _SCANS[key]


class PhotoParams(Params):
    masks: str  # the folder of the photos' masks: the mask of photo KEY.jpg is KEY.<png|jpg|...>
    invert: bool = False  # the masks store holes as white

    @field_validator("masks")
    @classmethod
    def _folder(cls, value: str) -> str:
        return existing_folder(value)


def user_mask(folder: str, key: str) -> Path | None:
    """The mask file of the photo ``key`` in ``folder`` (same relative name, any mask
    extension), or None."""
    stem = Path(folder) / Path(key).with_suffix("")
    found = sorted(p for p in stem.parent.glob(f"{stem.name}.*") if p.suffix.lower() in MASK_EXTENSIONS)
    return found[0] if found else None


def photo_with_mask(photo: np.ndarray, params: PhotoParams, image: ImageRef, source: Source) -> Degraded:
    """A photo and the user's mask of what to fill (degradation ``as_is?masks=DIR``): the holes
    set to :data:`HOLE_FILL`, the mask in ``extras`` as for ``mask``; a mask of another size is
    resized (nearest neighbour) to the photo."""
    path = user_mask(params.masks, image.key)
    if path is None:
        raise ValueError(f"no mask for {image.key} in {params.masks}")
    h, w = photo.shape[:2]
    mask = fit_mask(read_mask_file(path, invert=params.invert), h, w)
    filled = np.where(mask[..., None] > 0.5, photo, np.float32(HOLE_FILL)).astype(np.float32)
    return Degraded(
        image=filled,
        degradation="as_is",
        params={"masks": params.masks},
        extras={"mask": mask, "hole_ratio": hole_ratio(mask)},
    )


def mask_problems(params: PhotoParams, source: Source, images: list[ImageRef]) -> list[str]:
    """Photos without a usable mask, found before any work starts."""
    problems = []
    for image in images:
        path = user_mask(params.masks, image.key)
        if path is None:
            want = Path(params.masks) / Path(image.key).with_suffix(".png")
            problems.append(f"{image.key}: no mask (expected {want}, or another of {', '.join(MASK_EXTENSIONS)})")
            continue
        try:
            ratio = hole_ratio(read_mask_file(path, invert=params.invert))
        except ValueError as exc:
            problems.append(f"{image.key}: {exc}")
            continue
        if ratio in (0.0, 1.0):
            what = "every pixel a hole" if ratio == 1.0 else "no hole (black marks holes; invert=true if white does)"
            problems.append(f"{image.key}: its mask {path.name} has {what}")
    return problems


AS_IS = AsIs(
    "a photo and a mask of what to fill, KEY.png in a folder (as_is?masks=DIR; black = hole, invert=true for white)",
    photo_with_mask,
    params=PhotoParams,
    check=mask_problems,
)


def given_check(gt: tuple[int, int], lq: tuple[int, int], levels: object) -> str | None:
    """Pre-degraded inpainting pairs are refused before work starts: the methods need the mask of
    the holes, which a pair of images does not hold."""
    return (
        "inpainting needs the mask of the holes, which a pair of images does not hold: score clean images "
        "with mask?folder=DIR&ratio=..., or photos with no reference with as_is?masks=DIR"
    )
