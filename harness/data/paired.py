"""Pre-degraded pairs: ground truth (GT) beside its degraded input (LQ).

- ``paired:gt=DIR&lq=DIR&lq_template={stem}x4`` -- two folders; the LQ of ``GT/baby.png``
  is ``LQ/<lq_template>.*`` (``{stem}`` the GT's name without extension, as BasicSR's
  ``filename_tmpl``), any image extension.
- ``manifest:FILE.csv`` -- columns ``gt`` and ``lq`` (paths relative to the CSV), optional
  ``key`` and level columns (any other column: the levels the task declares, e.g. ``sigma``,
  ``scale``; see ``Task.levels``). A manifest with
  an ``lq`` column and no ``gt`` lists real photos with no reference (degradation ``as_is``).
- ``parquet:FILE_OR_DIR?gt=COL&lq=COL&key=COL`` -- image bytes, ``{bytes, path}`` structs or paths;
  ``?reference=none&lq=COL``: photos with no reference.
- ``hf:NAME?gt=COL&lq=COL`` -- a Hugging Face dataset with two image columns (see ``data/hf.py``).

The degradation ``given`` (:mod:`restorebench.data.given`) hands the LQ image to the method.
Pairing errors name the file (a GT without its LQ, an LQ without its GT, duplicate keys);
a unit's size mismatch names both files.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from restorebench.core.errors import ImageLoadError, UserError
from restorebench.core.interfaces import ImageRef, Params, Source
from restorebench.core.registry import register
from restorebench.data.images import IMAGE_EXTENSIONS, decode_image, file_hash, image_size, read_image
from restorebench.data.storage import LocalPath

MAX_LISTED = 8  # pairing problems named in one error


def _pair_ref(dataset: str, key: str, gt: str, lq: str, gt_hash: str, lq_hash: str, levels: dict) -> ImageRef:
    """An image of a paired source: its content hash covers both files (and the levels)."""
    digest = hashlib.sha256(f"{gt_hash}:{lq_hash}:{json.dumps(levels, sort_keys=True)}".encode()).hexdigest()
    return ImageRef(dataset, key, digest, json.dumps({"gt": gt, "lq": lq, "levels": levels}))


def _locator(image: ImageRef) -> dict[str, Any]:
    return json.loads(image.locator)


def _problems(kind: str, items: Iterable[str], hint: str) -> UserError:
    items = list(items)
    shown = "\n  ".join(items[:MAX_LISTED]) + (
        f"\n  ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    )
    return UserError(f"{kind}:\n  {shown}", hint=hint)


class _PairedFiles(Source):
    """Pairs of image files; subclasses list them."""

    paired = True

    def load(self, image: ImageRef) -> np.ndarray:
        return read_image(_locator(image)["gt"])

    def load_lq(self, image: ImageRef) -> np.ndarray:
        return read_image(_locator(image)["lq"])

    def levels(self, image: ImageRef) -> dict[str, Any]:
        return dict(_locator(image)["levels"])

    def pair_sizes(self, image: ImageRef) -> tuple[tuple[int, int], tuple[int, int]] | None:
        where = _locator(image)
        gt, lq = image_size(where["gt"]), image_size(where["lq"])
        return (gt, lq) if gt and lq else None


def _same_file(gt_hash: str, lq_hash: str, where: str, gt: str) -> str | None:
    """The problem of a pair whose LQ is its GT (a copy-paste slip that scores ~40 dB, silently)."""
    return f"{where}: the LQ is the GT file itself ({gt}): nothing to restore" if gt_hash == lq_hash else None


class PairedParams(Params):
    gt: LocalPath = Field(min_length=1)
    lq: LocalPath = Field(min_length=1)
    lq_template: str = "{stem}"

    @field_validator("lq_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{stem}" not in value:
            raise ValueError("lq_template must contain {stem}, e.g. {stem}x4")
        return value


def _images(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise UserError(f"the {what} folder {folder} does not exist or is not a directory")
    files = {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}
    if not files:
        raise UserError(f"the {what} folder {folder} holds no image file ({', '.join(IMAGE_EXTENSIONS)})")
    return files


@register
class PairedFolderSource(_PairedFiles):
    """GT and LQ folders paired by name (``lq_template``, as BasicSR's ``filename_tmpl``)."""

    name = "paired"
    Params = PairedParams

    def list_images(self) -> list[ImageRef]:
        p = self.params
        gt_files, lq_files = _images(Path(p.gt), "GT"), _images(Path(p.lq), "LQ")
        by_stem: dict[str, list[Path]] = {}
        for path in lq_files.values():
            by_stem.setdefault(path.stem, []).append(path)
        problems, refs, used = [], [], set()
        stems = {}
        for gt in gt_files.values():
            if gt.stem in stems:
                problems.append(f"GT {gt} and GT {stems[gt.stem]} have the same name (duplicate key {gt.stem})")
                continue
            stems[gt.stem] = gt
            want = p.lq_template.format(stem=gt.stem)
            found = by_stem.get(want, [])
            if not found:
                problems.append(f"GT {gt} has no LQ: expected {Path(p.lq) / want}.* (lq_template={p.lq_template})")
            elif len(found) > 1:
                problems.append(f"GT {gt} has {len(found)} LQ files: {', '.join(str(f) for f in found)}")
            else:
                used.add(found[0])
                hashes = file_hash(gt), file_hash(found[0])
                same = _same_file(*hashes, f"GT {gt} and LQ {found[0]}", str(gt))
                if same:
                    problems.append(same)
                refs.append(_pair_ref(self.ref, gt.stem, str(gt), str(found[0]), *hashes, {}))
        problems += [f"LQ {lq} has no GT (lq_template={p.lq_template})" for lq in lq_files.values() if lq not in used]
        if problems:
            raise _problems(
                f"cannot pair {p.gt} with {p.lq}", problems, "every GT needs exactly one LQ and every LQ one GT"
            )
        return refs


class ManifestParams(Params):
    target: LocalPath = Field(min_length=1)


@register
class ManifestSource(_PairedFiles):
    """A CSV of pairs: ``gt``, ``lq`` (paths relative to the CSV), optional ``key`` and level columns."""

    name = "manifest"
    Params = ManifestParams

    def _header(self) -> list[str]:
        import csv

        try:
            with open(self.params.target, newline="", encoding="utf-8-sig") as f:
                return next(csv.reader(f), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read manifest {self.params.target}: {exc}") from None

    @cached_property
    def has_reference(self) -> bool:  # type: ignore[override]
        """A manifest of ``lq`` paths only lists photos with no reference."""
        header = self._header()
        return not ("lq" in header and "gt" not in header)

    @property
    def paired(self) -> bool:  # type: ignore[override]
        return self.has_reference

    def load(self, image: ImageRef) -> np.ndarray:
        where = _locator(image)
        return read_image(where["gt"] or where["lq"])

    def list_images(self) -> list[ImageRef]:
        import pandas as pd

        path = Path(self.params.target)
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read manifest {path}: {exc}") from None
        if "lq" in table.columns and "gt" not in table.columns:
            return self._photos(path, table)
        missing = [c for c in ("gt", "lq") if c not in table.columns]
        if missing:
            raise UserError(
                f"manifest {path} lacks the column(s) {', '.join(missing)}; its columns: {', '.join(table.columns)}"
            )
        base, problems, refs, seen = path.parent, [], [], {}
        level_columns = [c for c in table.columns if c not in ("gt", "lq", "key")]  # the task's levels
        for row, record in enumerate(table.to_dict("records"), start=2):  # row 1 is the header
            gt, lq = (base / record[c] if record[c] else None for c in ("gt", "lq"))
            key = record.get("key") or (Path(record["gt"]).stem if record["gt"] else f"row{row}")
            levels = {}
            for column in level_columns:
                try:
                    levels[column] = float(record[column]) if record[column] else None
                except ValueError:
                    problems.append(
                        f"row {row}: {column}={record[column]!r} is not a number "
                        "(every column besides gt, lq and key is a level the pair stands for)"
                    )
            levels = {k: v for k, v in levels.items() if v is not None}
            for what, file in (("GT", gt), ("LQ", lq)):
                if file is None or not file.is_file():
                    problems.append(f"row {row}: {what} {file or '(empty)'} does not exist")
            if key in seen:
                problems.append(f"row {row}: duplicate key {key!r} (row {seen[key]})")
            seen.setdefault(key, row)
            if not problems and gt is not None and lq is not None:
                hashes = file_hash(gt), file_hash(lq)
                same = _same_file(*hashes, f"row {row}", str(gt))
                if same:
                    problems.append(same)
                refs.append(_pair_ref(self.ref, key, str(gt), str(lq), *hashes, levels))
        if problems:
            raise _problems(f"manifest {path} has bad rows", problems, "paths are relative to the CSV's folder")
        if not refs:
            raise UserError(f"manifest {path} lists no pair (it has a header and no row)", hint="add rows gt,lq")
        return refs

    def _photos(self, path: Path, table: Any) -> list[ImageRef]:
        """The rows of a manifest of photos with no reference (an ``lq`` column, no ``gt``)."""
        problems, refs, seen = [], [], {}
        for row, record in enumerate(table.to_dict("records"), start=2):
            file = path.parent / record["lq"] if record["lq"] else None
            key = record.get("key") or (Path(record["lq"]).stem if record["lq"] else f"row{row}")
            if file is None or not file.is_file():
                problems.append(f"row {row}: LQ {file or '(empty)'} does not exist")
            elif key in seen:
                problems.append(f"row {row}: duplicate key {key!r} (row {seen[key]})")
            else:
                seen[key] = row
                refs.append(
                    ImageRef(self.ref, key, file_hash(file), json.dumps({"gt": "", "lq": str(file), "levels": {}}))
                )
        if problems:
            raise _problems(f"manifest {path} has bad rows", problems, "paths are relative to the CSV's folder")
        if not refs:
            raise UserError(f"manifest {path} lists no photo (it has a header and no row)", hint="add rows lq")
        return refs


class ParquetParams(Params):
    target: LocalPath = Field(min_length=1)
    gt: str = "gt"
    lq: str = "lq"
    key: str | None = None
    reference: Literal["clean", "none"] = "clean"  # none: column lq holds photos with no reference (as_is)


_TABLES: dict[tuple[str, int], Any] = {}


@register
class ParquetSource(Source):
    """A Parquet file (or a folder of them) with GT and LQ columns of image bytes, structs or paths."""

    name = "parquet"
    Params = ParquetParams

    @property
    def has_reference(self) -> bool:
        return self.params.reference == "clean"

    @property
    def paired(self) -> bool:  # type: ignore[override]
        return self.has_reference

    def _columns(self) -> tuple[str | None, ...]:
        p = self.params
        return (p.gt if self.has_reference else None, p.lq, p.key)

    def _table(self) -> Any:
        p = self.params
        # read once per process (and again if the file changes); the columns are checked per source
        stamp = (p.target, os.stat(p.target).st_mtime_ns if os.path.exists(p.target) else 0)
        if stamp not in _TABLES:
            import pyarrow.parquet as pq

            if not os.path.exists(p.target):
                raise UserError(f"Parquet {p.target}: no such file or folder")
            try:
                _TABLES[stamp] = pq.read_table(p.target)
            except (OSError, ValueError) as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                raise UserError(f"cannot read Parquet {p.target}: {first}") from None
        table = _TABLES[stamp]
        missing = [c for c in self._columns() if c and c not in table.column_names]
        if missing:
            raise UserError(
                f"Parquet {p.target} has no column {missing[0]!r}; its columns: {', '.join(table.column_names)}",
                hint="name them with ?gt=COL&lq=COL",
            )
        return table

    def _cell(self, column: str, row: int) -> Any:
        return self._table().column(column)[row].as_py()

    def list_images(self) -> list[ImageRef]:
        p, table = self.params, self._table()
        keys = table.column(p.key).to_pylist() if p.key else [f"{i:05d}" for i in range(table.num_rows)]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise _problems(
                f"Parquet {p.target} has duplicate keys", [str(k) for k in duplicates], "keys must be unique"
            )
        if not self.has_reference:
            return [
                ImageRef(self.ref, str(key), _cell_hash(self._cell(p.lq, row)), json.dumps({"gt": "", "lq": str(row)}))
                for row, key in enumerate(keys)
            ]
        refs, problems = [], []
        for row, key in enumerate(keys):
            gt_hash, lq_hash = (_cell_hash(self._cell(c, row)) for c in (p.gt, p.lq))
            same = _same_file(gt_hash, lq_hash, f"row {row} ({key})", f"column {p.gt}")
            if same:
                problems.append(same)
            refs.append(_pair_ref(self.ref, str(key), str(row), str(row), gt_hash, lq_hash, {}))
        if problems:
            raise _problems(
                f"Parquet {p.target} has bad rows", problems, f"column {p.lq} must hold the degraded inputs"
            )
        return refs

    def pair_sizes(self, image: ImageRef) -> tuple[tuple[int, int], tuple[int, int]] | None:
        row = int(_locator(image)["gt"])
        sizes = []
        for column in (self.params.gt, self.params.lq):
            data, path = _cell_bytes(self._cell(column, row))
            sizes.append(image_size(data) if data else image_size(path) if path else None)
        return (sizes[0], sizes[1]) if all(sizes) else None

    def load(self, image: ImageRef) -> np.ndarray:
        if not self.has_reference:
            return self.load_lq(image)
        return _decode_cell(self._cell(self.params.gt, int(_locator(image)["gt"])), f"{self.ref} row {image.key} (gt)")

    def load_lq(self, image: ImageRef) -> np.ndarray:
        return _decode_cell(self._cell(self.params.lq, int(_locator(image)["lq"])), f"{self.ref} row {image.key} (lq)")


def _cell_bytes(cell: Any) -> tuple[bytes | None, str | None]:
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell), None
    if isinstance(cell, dict):
        return cell.get("bytes"), cell.get("path")
    if isinstance(cell, str):
        return None, cell
    return None, None


def _cell_hash(cell: Any) -> str:
    data, path = _cell_bytes(cell)
    if data:
        return hashlib.sha256(data).hexdigest()
    return file_hash(Path(path)) if path and os.path.isfile(path) else hashlib.sha256(str(path).encode()).hexdigest()


def _decode_cell(cell: Any, name: str) -> np.ndarray:
    data, path = _cell_bytes(cell)
    if data:
        return decode_image(data, name)
    if path:
        return read_image(path)
    raise ImageLoadError(f"cannot decode {name}: the cell holds neither image bytes nor a path")
