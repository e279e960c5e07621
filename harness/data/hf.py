"""``hf:NAME?split=test&column=image&limit=N``: a Hugging Face dataset.

NAME is a hub id, or a local directory written by ``Dataset.save_to_disk`` /
``DatasetDict.save_to_disk`` (offline, use the folder). Rows are keyed by index.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from restorebench.core.errors import ImageLoadError, UserError
from restorebench.core.interfaces import ImageRef, Params, Source
from restorebench.core.registry import register
from restorebench.data.images import decode_image, file_hash, read_image


class HFParams(Params):
    target: str = Field(min_length=1)
    split: str = "test"
    column: str | None = None
    limit: int | None = Field(None, ge=1)
    gt: str | None = None  # with lq: a paired dataset, GT and LQ image columns
    lq: str | None = None
    reference: Literal["clean", "none"] = "clean"  # none: column holds real photos with no reference (as_is)

    @model_validator(mode="after")
    def _both_or_neither(self) -> HFParams:
        if self.reference == "none" and self.gt is not None:
            raise ValueError("photos with no reference are one image column: column=COL&reference=none")
        if (self.gt is None) != (self.lq is None):
            raise ValueError("a paired Hugging Face dataset needs both gt=COL and lq=COL")
        if self.gt is not None and self.column is not None:
            raise ValueError("give column=COL for a dataset of clean images, or gt=COL&lq=COL for pairs, not both")
        return self

    @field_validator("target")
    @classmethod
    def _absolute_local_dir(cls, target: str) -> str:
        """A local ``save_to_disk`` folder is kept absolute: workers may run elsewhere."""
        return os.path.abspath(target) if os.path.isdir(target) else target


_HF_CACHE: dict[tuple, tuple[Any, str, str | None]] = {}


@register
class HFSource(Source):
    """A Hugging Face dataset (hub id or ``save_to_disk`` directory); rows keyed by index."""

    name = "hf"
    Params = HFParams

    @property
    def paired(self) -> bool:  # type: ignore[override]
        return self.params.gt is not None

    @property
    def has_reference(self) -> bool:
        return self.params.reference == "clean"

    def _dataset(self) -> tuple[Any, str, str | None]:
        """The split with its image column(s) cast to undecoded bytes, the GT column and the LQ's."""
        p = self.params
        key = (p.target, p.split, p.column, p.gt, p.lq)
        if key not in _HF_CACHE:
            import datasets

            ds = _open_split(p.target, p.split)
            column = _image_column(ds, p.gt or p.column, self.ref)
            lq = _image_column(ds, p.lq, self.ref) if p.lq else None
            for c in filter(None, (column, lq)):
                ds = ds.cast_column(c, datasets.Image(decode=False))
            _HF_CACHE[key] = (ds, column, lq)
        return _HF_CACHE[key]

    def list_images(self) -> list[ImageRef]:
        ds, column, lq = self._dataset()
        rows = len(ds) if self.params.limit is None else min(len(ds), self.params.limit)
        refs, row = [], 0
        columns = [column] + ([lq] if lq else [])
        for batch in ds.select(range(rows)).select_columns(columns).iter(batch_size=256):
            for i, cell in enumerate(batch[column]):
                digest = _cell_hash(cell)
                if lq:
                    digest = hashlib.sha256(f"{digest}:{_cell_hash(batch[lq][i])}".encode()).hexdigest()
                refs.append(ImageRef(self.ref, f"{row:05d}", digest, str(row)))
                row += 1
        return refs

    def load(self, image: ImageRef) -> np.ndarray:
        ds, column, _ = self._dataset()
        return _decode(ds[int(image.locator)][column], f"{self.ref} row {image.locator}")

    def load_lq(self, image: ImageRef) -> np.ndarray:
        ds, _, lq = self._dataset()
        if lq is None:
            return super().load_lq(image)
        return _decode(ds[int(image.locator)][lq], f"{self.ref} row {image.locator} ({lq})")


def _decode(cell: dict[str, Any] | None, name: str) -> np.ndarray:
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
    return file_hash(Path(path)) if path and os.path.isfile(path) else hashlib.sha256(path.encode()).hexdigest()
