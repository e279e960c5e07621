"""``folder:DIR?recursive=false``: the PNG/JPEG/TIFF/BMP files of a directory, local or a
filesystem URI (``folder:s3://bucket/photos``; see :mod:`~restorebench.data.storage`).

``?reference=none``: the files are real photos with no clean reference (noisy phone shots,
scanned black-and-white prints), taken as they are by the ``as_is`` degradation."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from restorebench.core.errors import UserError
from restorebench.core.interfaces import ImageRef, Params, Source
from restorebench.core.registry import register
from restorebench.data.images import IMAGE_EXTENSIONS, decode_image, file_hash, is_image_name, read_image
from restorebench.data.storage import content_hashes, is_uri, list_files, read_bytes

log = logging.getLogger(__name__)


class FolderParams(Params):
    target: str = Field(min_length=1)
    recursive: bool = False
    # a remote folder's identity: "content" reads every file once on the driver (the same
    # numbers as a local copy of it); "stat" uses size and modification time (no download)
    hash: Literal["content", "stat"] = "content"
    # "clean": the images are clean references, degraded by the run; "none": real photos with
    # no reference, scored with no-reference metrics (degradation as_is)
    reference: Literal["clean", "none"] = "clean"


@register
class FolderSource(Source):
    """The image files of a local directory (hidden files skipped), keyed by relative path."""

    name = "folder"
    Params = FolderParams

    @property
    def has_reference(self) -> bool:
        return self.params.reference == "clean"

    def list_images(self) -> list[ImageRef]:
        if is_uri(self.params.target):
            return self._list_remote(self.params.target)
        root = Path(self.params.target).expanduser().absolute()
        accepted = ", ".join(IMAGE_EXTENSIONS)
        if not root.is_dir():
            what = "does not exist" if not root.exists() else "is not a directory"
            raise UserError(f"dataset folder {root} {what}", hint=f"give a directory of {accepted} files")
        _refuse_pair_tree(root, self.params.recursive)
        paths = root.rglob("*") if self.params.recursive else root.iterdir()
        candidates = [p for p in paths if is_image_name(p.name)]
        broken = sorted(p.relative_to(root).as_posix() for p in candidates if p.is_symlink() and not p.exists())
        if broken:
            log.warning("%s: %d broken symbolic link(s) skipped: %s", root, len(broken), ", ".join(broken[:5]))
        files = {p.relative_to(root).as_posix(): p for p in candidates if p.is_file()}
        if not files:
            where = "under" if self.params.recursive else "in"
            folders = sorted(p.name for p in root.iterdir() if p.is_dir())
            hint = None
            if {f.lower() for f in folders} & PAIR_FOLDERS:
                hint = (
                    f"its subfolders {', '.join(folders[:4])} look like pairs: use paired:gt=DIR&lq=DIR with given?..."
                )
            elif folders:
                hint = "add ?recursive=true to read its subfolders"
            raise UserError(f"no image files {where} {root}; accepted extensions: {accepted}", hint=hint)
        return [ImageRef(self.ref, key, file_hash(p), str(p)) for key, p in sorted(files.items())]

    def _list_remote(self, uri: str) -> list[ImageRef]:
        files = [f for f in list_files(uri, recursive=self.params.recursive) if is_image_name(f.key)]
        if not files:
            raise UserError(
                f"no image files under {uri}; accepted extensions: {', '.join(IMAGE_EXTENSIONS)}",
                hint=None if self.params.recursive else "add ?recursive=true to read its subfolders",
            )
        if self.params.hash == "stat":
            return [ImageRef(self.ref, f.key, f.identity, f.uri) for f in files]
        hashes = content_hashes([f.uri for f in files])
        return [ImageRef(self.ref, f.key, h, f.uri) for f, h in zip(files, hashes)]

    def load(self, image: ImageRef) -> np.ndarray:
        if is_uri(image.locator):  # the worker reads the file itself, not the driver
            return decode_image(read_bytes(image.locator), image.locator)
        return read_image(image.locator)


PAIR_FOLDERS = {
    "hr",
    "lr",
    "gt",
    "lq",
    "x2",
    "x3",
    "x4",
    "x8",
    "lr_bicubic",
    "hr_mod",
    "lr_mod",
    "noisy",
    "clean",
    "target",
    "input",
}


def _refuse_pair_tree(root: Path, recursive: bool) -> None:
    """A tree whose subfolders look like ground truth and degraded inputs (BasicSR's HR/ and
    LR_bicubic/X4/, SIDD's GT/ and NOISY/) is refused: read as one folder, the degraded inputs
    would count as ground truth."""
    subfolders = [p for p in root.iterdir() if p.is_dir()]
    if recursive:
        subfolders = [p for p in root.rglob("*") if p.is_dir()]
    names = {p.name.lower() for p in subfolders}
    suspicious = sorted(p.relative_to(root).as_posix() for p in subfolders if p.name.lower() in PAIR_FOLDERS)
    looks_paired = len(names & PAIR_FOLDERS) >= 2 or any(n in names for n in ("lr_bicubic", "x2", "x3", "x4"))
    if recursive and looks_paired:
        raise UserError(
            f"{root} looks like ground truth beside degraded inputs ({', '.join(suspicious[:4])}); read recursively "
            "as one folder, the degraded images would be scored as ground truth",
            hint=f"use paired:gt={root}/HR&lq={root}/LR_bicubic/X4&lq_template={{stem}}x4 (or a manifest:FILE.csv), "
            "with given?scale=4",
        )
