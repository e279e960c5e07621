"""What the restricted unpickler turns a ``torch.save`` pickle into, instead of torch objects.

Dtype markers, raw storages, tensors (layout checked, converted to numpy on request) and
an inert :class:`Stub` for every other class the pickle names. Kept apart so that the
unpickler, the readers of the file formats and the state-dict walk in
:mod:`~restorebench.neural.torch_pickle` share them; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from restorebench.core.errors import UserError

__all__ = ["NUMPY_DTYPES", "Blob", "Dtype", "Storage", "Stub", "Tensor", "describe"]

NUMPY_DTYPES = {
    "float32": "f4",
    "float64": "f8",
    "float16": "f2",
    "bfloat16": "u2",
    "int64": "i8",
    "int32": "i4",
    "int16": "i2",
    "int8": "i1",
    "uint8": "u1",
    "uint16": "u2",
    "uint32": "u4",
    "uint64": "u8",
    "bool": "?",
    "complex64": "c8",
    "complex128": "c16",
}
"""torch dtype names -> numpy type codes (bfloat16 kept as its raw 16 bits)."""


@dataclass(frozen=True)
class Dtype:
    """Stands in for ``torch.<dtype>`` and, with ``storage``, ``torch.<X>Storage``."""

    name: str
    storage: bool = False


@dataclass
class Blob:
    """The bytes of one storage, shared by every view of it."""

    data: bytes | None = None  # a storage's raw bytes; legacy files give them after the pickle


@dataclass
class Storage:
    """Stands in for a storage (or, in legacy files, a view of one): where a tensor's bytes are."""

    blob: Blob
    offset: int = 0  # bytes into the blob (legacy storage views)
    nbytes: int | None = None


@dataclass
class Tensor:
    """Stands in for a tensor: its storage and layout, read out by :meth:`to_numpy`."""

    storage: Storage
    offset: int  # in elements of dtype
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str

    def to_numpy(self, little: bool) -> np.ndarray:
        """The tensor as a new array in native byte order; bfloat16 as float32."""
        data = self.storage.blob.data
        if data is None:
            raise UserError("a tensor's storage is missing from the file; it is truncated or corrupt.")
        end = None if self.storage.nbytes is None else self.storage.offset + self.storage.nbytes
        raw = memoryview(data)[self.storage.offset : end]
        dtype = np.dtype(NUMPY_DTYPES[self.dtype]).newbyteorder("<" if little else ">")
        flat = np.frombuffer(raw, dtype=dtype, count=len(raw) // dtype.itemsize)
        size, stride = tuple(self.size), tuple(self.stride)
        ints = all(isinstance(v, int) and v >= 0 for v in (*size, *stride, self.offset))
        if not ints or len(size) != len(stride):
            raise UserError(f"a tensor has an invalid layout (size {size}, stride {stride}); the file is corrupt.")
        if 0 in size:
            out = np.zeros(size, dtype)
        else:
            last = self.offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= flat.size:  # as_strided does not check bounds: never read past the storage
                raise UserError(f"a tensor reaches past its storage ({last} >= {flat.size}); the file is corrupt.")
            if np.prod(size, dtype=float) > max(flat.size, 1 << 28):  # stride-0 blow-up
                raise UserError(f"a tensor of size {size} expands far beyond its storage; the file is corrupt.")
            strides = tuple(s * dtype.itemsize for s in stride)
            out = np.lib.stride_tricks.as_strided(flat[self.offset :], size, strides, writeable=False).copy()
        out = out.astype(dtype.newbyteorder("="), copy=False)
        if self.dtype == "bfloat16":
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out


class Stub:
    """Inert stand-in for any class a pickle names: it records what the pickle passes."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Stub:
        obj = super().__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, state=None, items={}, list=[])
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items[key] = value

    def append(self, value: Any) -> None:
        self.list.append(value)

    def extend(self, values: Any) -> None:
        self.list.extend(values)


def describe(obj: Any) -> str:
    """What ``obj`` is, for an error message (a stub says its class was not imported)."""
    cls = type(obj) if not isinstance(obj, type) else obj
    if issubclass(cls, Stub):
        return f"{cls.__module__}.{cls.__name__} object (not imported)"
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__
