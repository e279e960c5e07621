"""Reading both ``torch.save`` formats: the zip archive (PyTorch >= 1.6) and the legacy pickle stream.

Each reader unpickles the payload with :func:`~restorebench.neural.torch_unpickler.unpickle`
and hands it the storages' raw bytes; kept apart from the unpickler, which knows no format.
"""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.core.errors import UserError
from restorebench.neural.torch_stubs import NUMPY_DTYPES, Blob, Dtype, Storage, describe
from restorebench.neural.torch_unpickler import unpickle

__all__ = ["read_torch_file"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


def read_torch_file(path: Path) -> tuple[Any, bool]:
    """The unpickled payload of a ``torch.save`` file and whether its data is little-endian."""
    return _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)


def _storage_id(pid: Any, path: Path) -> tuple[str, Dtype, str, Any]:
    """Check a persistent id; return (kind, dtype, key, view metadata)."""
    if not isinstance(pid, tuple) or not pid:
        raise UserError(f"{path}: unexpected persistent id {pid!r}; not a torch.save() file.")
    kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if kind == "module":
        return kind, Dtype("uint8"), "", pid[1]
    if kind != "storage" or len(pid) < 5:
        raise UserError(f"{path}: unsupported persistent id {pid[:2]!r}.")
    dtype = pid[1]
    if not isinstance(dtype, Dtype) or not dtype.storage:
        raise UserError(f"{path}: unsupported storage type {describe(dtype)} (quantized or new).")
    return kind, dtype, str(pid[2]), pid[5] if len(pid) > 5 else None


def _read_zip(path: Path) -> tuple[Any, bool]:
    with zipfile.ZipFile(path) as zf:
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise UserError(f"{path} is a zip file but not a torch.save() archive (no single */data.pkl).")
        prefix = pickles[0][: -len("data.pkl")]
        names = set(zf.namelist())
        order = zf.read(f"{prefix}byteorder").decode().strip() if f"{prefix}byteorder" in names else "little"
        blobs: dict[str, Blob] = {}

        def persistent(pid: Any) -> Any:
            kind, dtype, key, extra = _storage_id(pid, path)
            if kind == "module":
                return extra
            if f"{prefix}data/{key}" not in names:
                raise UserError(f"{path}: storage {key} is missing from the archive; the file is truncated.")
            if key not in blobs:
                blobs[key] = Blob(zf.read(f"{prefix}data/{key}"))
            return Storage(blobs[key]), dtype.name

        return unpickle(path, io.BytesIO(zf.read(pickles[0])), persistent), order != "big"


def _read_legacy(path: Path) -> tuple[Any, bool]:
    def refuse(pid: Any) -> Any:
        raise UserError(f"{path}: unexpected persistent id in a header pickle.")

    roots: dict[str, tuple[Blob, str]] = {}

    def persistent(pid: Any) -> Any:
        kind, dtype, key, view = _storage_id(pid, path)
        if kind == "module":
            return view  # ("module", class, source file, source): the class
        blob, _ = roots.setdefault(key, (Blob(), dtype.name))
        if view is None:
            return Storage(blob), dtype.name
        _, offset, size = view
        itemsize = np.dtype(NUMPY_DTYPES[dtype.name]).itemsize
        return Storage(blob, int(offset) * itemsize, int(size) * itemsize), dtype.name

    size = path.stat().st_size
    with path.open("rb") as f:
        if unpickle(path, f, refuse) != _LEGACY_MAGIC or unpickle(path, f, refuse) != _LEGACY_PROTOCOL:
            raise UserError(
                f"{path} is not a file written by torch.save() (bad magic number); convert only accepts PyTorch files."
            )
        info = unpickle(path, f, refuse)
        little = not isinstance(info, dict) or info.get("little_endian", True)
        obj = unpickle(path, f, persistent)
        keys = unpickle(path, f, refuse)
        for key in keys if isinstance(keys, list) else ():
            if str(key) not in roots:
                raise UserError(f"{path}: storage {key} is listed but never used; the file is corrupt.")
            blob, dtype = roots[str(key)]
            itemsize = np.dtype(NUMPY_DTYPES[dtype]).itemsize
            header = f.read(8)
            count = struct.unpack("<q" if little else ">q", header)[0] if len(header) == 8 else -1
            if 0 <= count * itemsize <= size - f.tell():  # never ask read() for more than is there
                blob.data = f.read(count * itemsize)
            if blob.data is None or len(blob.data) != count * itemsize:
                raise UserError(f"{path} is truncated: storage {key} is incomplete.")
    return obj, little
