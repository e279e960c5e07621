"""Dark photos with no reference, taken as they are: the ``raw:DIR`` source and ``as_is``.

``raw:DIR?recursive=false`` lists the camera raw files of a folder (read with rawpy), with
no reference; ``folder:DIR?reference=none`` lists dark sRGB photos (JPEG, PNG, ...). Either
goes with the degradation ``as_is``: an sRGB photo is the input of the sRGB methods as it is;
a raw file becomes the packed raw input of the raw methods, with the layout of the ``lowlight``
and ``sid`` degradations (:mod:`restorebench.tasks.lowlight.degradations`), amplified by
``as_is?ratio=R`` or, when no ratio is given, by the ratio that brings the packed raw's mean
to 18 % (photographic mid-grey, in linear light), capped at SID's 300.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import Field

from restorebench import AsIs, Degraded, ImageLoadError, ImageRef, Params, Source, UserError, register
from restorebench.imaging import as_rgb
from restorebench.tasks.lowlight.degradations import raw_extras
from restorebench.tasks.lowlight.raw import pack_bayer, read_raw

__all__ = ["RawFolderSource", "AS_IS", "RAW_EXTENSIONS", "auto_ratio"]

# what LibRaw decodes, among the formats cameras write
RAW_EXTENSIONS = (".arw", ".cr2", ".cr3", ".nef", ".nrw", ".orf", ".raf", ".rw2", ".dng", ".pef", ".srw", ".raw")
MID_GREY = 0.18  # the mean an auto ratio brings a packed raw to (linear light)
MAX_RATIO = 300.0  # SID's cap on the amplification ratio


class RawFolderParams(Params):
    target: str = Field(min_length=1)
    recursive: bool = False


@register
class RawFolderSource(Source):
    """The camera raw files of a folder: dark photos with no reference (degradation ``as_is``)."""

    name = "raw"
    Params = RawFolderParams

    @property
    def has_reference(self) -> bool:
        return False

    def list_images(self) -> list[ImageRef]:
        import hashlib

        root = Path(self.params.target).expanduser().absolute()
        if not root.is_dir():
            raise UserError(f"raw folder {root} does not exist or is not a directory")
        paths = root.rglob("*") if self.params.recursive else root.iterdir()
        files = sorted(p for p in paths if p.suffix.lower() in RAW_EXTENSIONS and p.is_file())
        if not files:
            raise UserError(
                f"no camera raw file in {root}; accepted extensions: {', '.join(RAW_EXTENSIONS)}",
                hint="for dark JPEG/PNG photos use folder:DIR?reference=none",
            )
        return [
            ImageRef(self.ref, p.relative_to(root).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(), str(p))
            for p in files
        ]

    def raw_bytes(self, image: ImageRef) -> bytes:
        try:
            return Path(image.locator).read_bytes()
        except OSError as exc:
            raise ImageLoadError(f"cannot read raw file {image.locator}: {exc.strerror}") from None

    def load(self, image: ImageRef) -> np.ndarray:
        """The packed raw (``H/2 x W/2 x 4``, black-subtracted, not amplified)."""
        return pack_bayer(read_raw(self.raw_bytes(image), name=image.locator))


class PhotoParams(Params):
    ratio: float | None = Field(
        None, gt=1, le=1000, allow_inf_nan=False, description="amplification of a raw photo; None: to mid-grey"
    )


def auto_ratio(packed: np.ndarray) -> float:
    """The amplification that brings the mean of a packed raw to :data:`MID_GREY`, within [1, 300]."""
    mean = float(np.mean(np.clip(packed, 0.0, None)))
    return float(np.clip(MID_GREY / mean, 1.0, MAX_RATIO)) if mean > 0 else MAX_RATIO


def dark_photo(photo: np.ndarray, params: PhotoParams, image: ImageRef, source: Source) -> Degraded:
    """A dark photo as it is: a raw file (a ``raw:`` source) as the packed raw input of raw
    methods; an sRGB photo as the input of sRGB methods (gray repeated over three channels)."""
    if callable(getattr(source, "raw_bytes", None)):
        data = source.raw_bytes(image)
        raw = read_raw(data, name=image.locator)
        ratio = float(params.ratio) if params.ratio is not None else auto_ratio(photo)
        h, w = photo.shape[:2]
        return Degraded(
            image=np.asarray(photo, np.float32),
            degradation="as_is",
            params={"ratio": ratio},
            extras=raw_extras(raw, data),
            output_shape=(2 * h, 2 * w, 3),
        )
    rgb = as_rgb(np.asarray(photo, np.float32))
    level = {"ratio": float(params.ratio)} if params.ratio is not None else {}
    return Degraded(image=rgb, degradation="as_is", params=level)


AS_IS = AsIs(
    "a dark photo: camera raw files (raw:DIR) for the raw methods, or sRGB ones "
    "(folder:DIR?reference=none) for the sRGB methods; as_is?ratio=R amplifies a raw one",
    dark_photo,
    params=PhotoParams,
)
