"""``folder:DIR?recursive=false``: the PNG/JPEG/TIFF/BMP files of a local directory."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from pydantic import Field

from restorebench.core.errors import UserError
from restorebench.core.interfaces import ImageRef, Params, Source
from restorebench.core.registry import register
from restorebench.data.images import IMAGE_EXTENSIONS, file_hash, read_image

log = logging.getLogger(__name__)


class FolderParams(Params):
    target: str = Field(min_length=1)
    recursive: bool = False


@register
class FolderSource(Source):
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
        candidates = [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
        broken = sorted(p.relative_to(root).as_posix() for p in candidates if p.is_symlink() and not p.exists())
        if broken:
            log.warning("%s: %d broken symbolic link(s) skipped: %s", root, len(broken), ", ".join(broken[:5]))
        files = {p.relative_to(root).as_posix(): p for p in candidates if p.is_file()}
        if not files:
            where = "under" if self.params.recursive else "in"
            raise UserError(f"no image files {where} {root}; accepted extensions: {accepted}")
        return [ImageRef(self.ref, key, file_hash(p), str(p)) for key, p in sorted(files.items())]

    def load(self, image: ImageRef) -> np.ndarray:
        return read_image(image.locator)
