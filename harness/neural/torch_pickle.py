"""Reading a whole model pickled by ``torch.save(model)`` without running any of its code.

A restricted unpickler rebuilds tensors as numpy arrays from the raw storage bytes (zip
format of PyTorch >= 1.6, and the legacy format before it) and stands an inert stub in
for every other class; the stubs' ``_parameters`` / ``_buffers`` / ``_modules`` are then
walked into the names ``model.state_dict()`` would give.
"""

from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.core.errors import UserError
from restorebench.neural.files import TORCH_EXTENSIONS, existing_file, select_state_dict, strip_module_prefix

__all__ = ["read_pickled_model", "read_pickled_tensors"]


def read_pickled_model(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The state dict of a whole model pickled by ``torch.save(model)``, as numpy arrays.

    Works without the model's code: no class named in the file is imported or run. Also
    reads a pickled dict of tensors, and a dict holding the model or state dict under a
    key of :data:`~restorebench.neural.files.WRAPPER_KEYS`. bfloat16 comes back as float32.

    >>> state = read_pickled_model("SwinIR_whole_model.pth")  # doctest: +SKIP
    """
    path = existing_file(path, TORCH_EXTENSIONS)
    obj, little = _read(path)
    return _pickled_state_dict(obj, path, little)


def read_pickled_tensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """The state dict of a ``torch.save`` file that holds tensors and containers only, or
    ``None`` when it names any other class (a pickled model or object).

    The weights-only rule of ``torch.load(weights_only=True)``, for files its reader cannot
    parse (pickle protocol 4 and 5, whose ``FRAME`` opcode it lacks); any protocol works here.
    """
    path = existing_file(path, TORCH_EXTENSIONS)
    obj, little = _read(path)
    if _holds_objects(obj, set()):
        return None
    return _pickled_state_dict(obj, path, little)


def _read(path: Path) -> tuple[Any, bool]:
    return _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)


def _holds_objects(obj: Any, seen: set[int]) -> bool:
    """Whether a payload holds a stand-in for a class (anything but tensors, dtypes and containers)."""
    if isinstance(obj, _Stub) or (isinstance(obj, type) and issubclass(obj, _Stub)):
        return True
    if id(obj) in seen or not isinstance(obj, (Mapping, list, tuple, set, frozenset)):
        return False
    seen.add(id(obj))
    items = [*obj.keys(), *obj.values()] if isinstance(obj, Mapping) else list(obj)
    return any(_holds_objects(item, seen) for item in items)


# --- restricted unpickling of torch.save files -------------------------------------------

_STORAGES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
    "UntypedStorage": "uint8",
}
_NUMPY = {
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
_DTYPE_ALIASES = {
    "float": "float32",
    "double": "float64",
    "half": "float16",
    "long": "int64",
    "int": "int32",
    "short": "int16",
    "cfloat": "complex64",
    "cdouble": "complex128",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


@dataclass(frozen=True)
class _Dtype:
    """Stands in for ``torch.<dtype>`` and, with ``storage``, ``torch.<X>Storage``."""

    name: str
    storage: bool = False


@dataclass
class _Blob:
    data: bytes | None = None  # a storage's raw bytes; legacy files give them after the pickle


@dataclass
class _Storage:
    blob: _Blob
    offset: int = 0  # bytes into the blob (legacy storage views)
    nbytes: int | None = None


@dataclass
class _Tensor:
    storage: _Storage
    offset: int  # in elements of dtype
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str

    def to_numpy(self, little: bool) -> np.ndarray:
        data = self.storage.blob.data
        if data is None:
            raise UserError("a tensor's storage is missing from the file; it is truncated or corrupt.")
        end = None if self.storage.nbytes is None else self.storage.offset + self.storage.nbytes
        raw = memoryview(data)[self.storage.offset : end]
        dtype = np.dtype(_NUMPY[self.dtype]).newbyteorder("<" if little else ">")
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


class _Stub:
    """Inert stand-in for any class a pickle names: it records what the pickle passes."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Stub:
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


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any, dtype: str | None = None) -> _Tensor:
    if not isinstance(storage, tuple) or len(storage) != 2 or not isinstance(storage[0], _Storage):
        raise UserError(f"a tensor refers to a {_describe(storage)}, not a storage; the file is corrupt.")
    return _Tensor(storage[0], offset, tuple(size), tuple(stride), dtype or storage[1])


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *_: Any
) -> _Tensor:
    if not isinstance(dtype, _Dtype) or dtype.name not in _NUMPY:
        raise UserError(f"unsupported tensor dtype {_describe(dtype)}.")
    return _rebuild_tensor(storage, offset, size, stride, dtype=dtype.name)


def _parameter(data: Any = None, *_: Any) -> _Tensor:
    """``torch.nn.Parameter(data, requires_grad)``, as PyTorch 0.4 pickled parameters: the
    tensor itself (nothing of torch is imported or run)."""
    if not isinstance(data, _Tensor):
        raise UserError(f"a Parameter wraps a {_describe(data)}, not a tensor; the file is corrupt.")
    return data


def _rebuild_from_type_v2(func: Callable[..., Any], new_type: Any, args: Any, state: Any) -> Any:
    return func(*args)  # func came from find_class, so it is one of ours or a stub


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    return cls.__new__(cls) if isinstance(cls, type) and issubclass(cls, _Stub) else _Stub(cls, base, state)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UserError(f"the pickle encodes bytes with {encoding!r}; only latin1 is supported.")
    return text.encode("latin1")


_SAFE: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _parameter,  # (data, requires_grad, backward_hooks)
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter,  # (..., state)
    ("torch.nn.parameter", "Parameter"): _parameter,  # PyTorch 0.4: Parameter(data, requires_grad)
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    **{
        (mod, name): getattr(builtins, name)
        for mod in ("builtins", "__builtin__")
        for name in ("set", "frozenset", "complex", "slice")
    },
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves globals to our own safe functions, dtype markers or inert stubs only."""

    def __init__(self, file: Any, persistent: Callable[[tuple[Any, ...]], Any]) -> None:
        super().__init__(file, encoding="utf-8")
        self._persistent = persistent
        self._stubs: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE:
            return _SAFE[module, name]
        if module == "torch" and name in _STORAGES:
            return _Dtype(_STORAGES[name], storage=True)
        if module == "torch" and _DTYPE_ALIASES.get(name, name) in _NUMPY:
            return _Dtype(_DTYPE_ALIASES.get(name, name))
        if (module, name) not in self._stubs:
            self._stubs[module, name] = type(str(name), (_Stub,), {"__module__": str(module)})
        return self._stubs[module, name]

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)


def _unpickle(path: Path, stream: Any, persistent: Callable[[tuple[Any, ...]], Any]) -> Any:
    try:
        return _RestrictedUnpickler(stream, persistent).load()
    except UserError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        struct.error,
        UnicodeDecodeError,
        RecursionError,
        OverflowError,
        MemoryError,
    ) as exc:
        raise UserError(
            f"{path}: cannot read the pickled model ({type(exc).__name__}: {exc}); the file is "
            "not a torch.save() file, is corrupt, or uses a construct this reader refuses."
        ) from exc


def _storage_id(pid: Any, path: Path) -> tuple[str, _Dtype, str, Any]:
    """Check a persistent id; return (kind, dtype, key, view metadata)."""
    if not isinstance(pid, tuple) or not pid:
        raise UserError(f"{path}: unexpected persistent id {pid!r}; not a torch.save() file.")
    kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
    if kind == "module":
        return kind, _Dtype("uint8"), "", pid[1]
    if kind != "storage" or len(pid) < 5:
        raise UserError(f"{path}: unsupported persistent id {pid[:2]!r}.")
    dtype = pid[1]
    if not isinstance(dtype, _Dtype) or not dtype.storage:
        raise UserError(f"{path}: unsupported storage type {_describe(dtype)} (quantized or new).")
    return kind, dtype, str(pid[2]), pid[5] if len(pid) > 5 else None


def _read_zip(path: Path) -> tuple[Any, bool]:
    with zipfile.ZipFile(path) as zf:
        pickles = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise UserError(f"{path} is a zip file but not a torch.save() archive (no single */data.pkl).")
        prefix = pickles[0][: -len("data.pkl")]
        names = set(zf.namelist())
        order = zf.read(f"{prefix}byteorder").decode().strip() if f"{prefix}byteorder" in names else "little"
        blobs: dict[str, _Blob] = {}

        def persistent(pid: Any) -> Any:
            kind, dtype, key, extra = _storage_id(pid, path)
            if kind == "module":
                return extra
            if f"{prefix}data/{key}" not in names:
                raise UserError(f"{path}: storage {key} is missing from the archive; the file is truncated.")
            if key not in blobs:
                blobs[key] = _Blob(zf.read(f"{prefix}data/{key}"))
            return _Storage(blobs[key]), dtype.name

        return _unpickle(path, io.BytesIO(zf.read(pickles[0])), persistent), order != "big"


def _read_legacy(path: Path) -> tuple[Any, bool]:
    def refuse(pid: Any) -> Any:
        raise UserError(f"{path}: unexpected persistent id in a header pickle.")

    roots: dict[str, tuple[_Blob, str]] = {}

    def persistent(pid: Any) -> Any:
        kind, dtype, key, view = _storage_id(pid, path)
        if kind == "module":
            return view  # ("module", class, source file, source): the class
        blob, _ = roots.setdefault(key, (_Blob(), dtype.name))
        if view is None:
            return _Storage(blob), dtype.name
        _, offset, size = view
        itemsize = np.dtype(_NUMPY[dtype.name]).itemsize
        return _Storage(blob, int(offset) * itemsize, int(size) * itemsize), dtype.name

    size = path.stat().st_size
    with path.open("rb") as f:
        if _unpickle(path, f, refuse) != _LEGACY_MAGIC or _unpickle(path, f, refuse) != _LEGACY_PROTOCOL:
            raise UserError(
                f"{path} is not a file written by torch.save() (bad magic number); convert only accepts PyTorch files."
            )
        info = _unpickle(path, f, refuse)
        little = not isinstance(info, dict) or info.get("little_endian", True)
        obj = _unpickle(path, f, persistent)
        keys = _unpickle(path, f, refuse)
        for key in keys if isinstance(keys, list) else ():
            if str(key) not in roots:
                raise UserError(f"{path}: storage {key} is listed but never used; the file is corrupt.")
            blob, dtype = roots[str(key)]
            itemsize = np.dtype(_NUMPY[dtype]).itemsize
            header = f.read(8)
            count = struct.unpack("<q" if little else ">q", header)[0] if len(header) == 8 else -1
            if 0 <= count * itemsize <= size - f.tell():  # never ask read() for more than is there
                blob.data = f.read(count * itemsize)
            if blob.data is None or len(blob.data) != count * itemsize:
                raise UserError(f"{path} is truncated: storage {key} is incomplete.")
    return obj, little


def _module_state(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, _Stub):
        return None
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, (dict, type(None))) for s in state):
        state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
    if isinstance(state, dict) and any(k in state for k in ("_parameters", "_buffers", "_modules")):
        return state
    return None


def _flatten(module: _Stub, prefix: str, out: dict[str, _Tensor], active: set[int], path: Path) -> None:
    state = _module_state(module) or {}
    if id(module) in active:
        raise UserError(f"{path}: module {prefix!r} contains itself; the file is corrupt.")
    active.add(id(module))
    skip = state.get("_non_persistent_buffers_set")
    skip = set(skip) if isinstance(skip, (set, frozenset, list, tuple)) else set()
    for group in ("_parameters", "_buffers"):
        entries = state.get(group) or {}
        for name, value in entries.items() if isinstance(entries, Mapping) else ():
            if value is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(value, _Tensor):
                raise UserError(f"{path}: {prefix}{name} is a {_describe(value)}, not a tensor.")
            out[f"{prefix}{name}"] = value
    children = state.get("_modules") or {}
    for name, child in children.items() if isinstance(children, Mapping) else ():
        if child is None:
            continue
        if _module_state(child) is None:
            raise UserError(f"{path}: submodule {prefix}{name} is a {_describe(child)}, not a module.")
        _flatten(child, f"{prefix}{name}.", out, active, path)
    active.discard(id(module))


def _pickled_state_dict(obj: Any, path: Path, little: bool) -> dict[str, np.ndarray]:
    def is_tensors(v: Any) -> bool:
        return (
            isinstance(v, Mapping)
            and bool(v)
            and all(isinstance(k, str) and isinstance(t, _Tensor) for k, t in v.items())
        )

    def usable(v: Any) -> bool:
        return is_tensors(v) or _module_state(v) is not None

    if not usable(obj) and not isinstance(obj, Mapping):
        raise UserError(
            f"{path} holds a {_describe(obj)}, which is neither a model nor a dict of "
            "tensors; nothing was run. Use the weights file the authors released."
        )
    chosen = select_state_dict(obj, usable, source=path)
    tensors: dict[str, _Tensor] = dict(chosen) if is_tensors(chosen) else {}
    if not tensors:
        _flatten(chosen, "", tensors, set(), path)
    if not tensors:
        raise UserError(f"{path} holds a model without parameters or buffers; nothing to convert.")
    return strip_module_prefix({name: t.to_numpy(little) for name, t in tensors.items()})


def _describe(obj: Any) -> str:
    cls = type(obj) if not isinstance(obj, type) else obj
    if issubclass(cls, _Stub):
        return f"{cls.__module__}.{cls.__name__} object (not imported)"
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__
