"""Readers for the formats that papers released their weights in; no code from a file runs.

* :func:`read_pickled_model`: a whole model saved with ``torch.save(model)`` (zip format
  of PyTorch >= 1.6 and the legacy format before it), read by a restricted unpickler
  that rebuilds tensors as numpy arrays from the raw storage bytes and stands an inert
  stub in for every other class, then walks the stubs' ``_parameters`` / ``_buffers`` /
  ``_modules`` into the names ``model.state_dict()`` would give.
* :func:`read_matconvnet`: MatConvNet SimpleNN networks (``net.layers``), MATLAB v5
  (scipy.io) or v7.3 (HDF5, h5py).
* :func:`read_mat_variables`: the plain numeric variables of a ``.mat`` file (SRCNN's
  original release stores ``weights_conv1``, ``biases_conv1``, ... this way).
* :func:`read_official`: picks the reader by extension and content.

Arrays keep MATLAB's dimension order (conv filters ``H x W x Cin x Cout``); converting to
torch's ``(Cout, Cin, H, W)`` is the model's job: ``np.transpose(filters, (3, 2, 0, 1))``.
torch, scipy.io and h5py are imported inside the functions.
"""

from __future__ import annotations

import builtins
import collections
import io
import logging
import os
import pickle
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from tasks.nn.checkpoints import (
    TORCH_EXTENSIONS,
    PickledCheckpointError,
    load_checkpoint,
    select_state_dict,
    strip_module_prefix,
)

__all__ = ["MatLayer", "OfficialWeights", "read_matconvnet", "read_mat_variables",
           "read_official", "read_pickled_model"]

logger = logging.getLogger(__name__)

OFFICIAL_EXTENSIONS = (".safetensors", *TORCH_EXTENSIONS, ".mat")


@dataclass(frozen=True, eq=False)
class MatLayer:
    """One MatConvNet SimpleNN layer.

    ``weights`` are float32 arrays in MATLAB's order and shape (at least 2-D): ``conv``
    ``(filters H x W x Cin x Cout, biases)``, always 4-D filters although MATLAB drops
    trailing singleton dimensions; ``bnorm`` ``(gain, bias, moments C x 2: mean, std)``.
    ``attrs`` holds the other fields (``stride``, ``pad``, ``epsilon``, ...): strings as
    str, 1-element arrays as Python scalars, vectors as 1-D arrays, empty arrays as None,
    cells as lists, structs as dicts; MATLAB logicals read as uint8 0/1 in both versions.
    """

    type: str
    name: str
    weights: tuple[np.ndarray, ...]
    attrs: dict[str, Any]


@dataclass
class OfficialWeights:
    """What :func:`read_official` found; exactly one of the three payloads is set."""

    source_format: str  # safetensors, state_dict, pickled_model, matconvnet_v5/_v73, mat_variables_v5/_v73
    state_dict: dict[str, np.ndarray] | None = None
    layers: list[MatLayer] | None = None
    variables: dict[str, np.ndarray] | None = None


def read_official(path: str | os.PathLike[str]) -> OfficialWeights:
    """Read released weights in any supported format.

    ``.safetensors`` and ``.pth``/``.pt``/``.ckpt``/``.bin`` state dicts go through the
    weights-only :func:`~tasks.nn.checkpoints.load_checkpoint`; a PyTorch file that holds
    a whole pickled model falls back to :func:`read_pickled_model`. A ``.mat`` file with
    a ``net`` or ``layers`` variable is read as MatConvNet, any other as plain variables.

    >>> w = read_official("DnCNN/model/specifics/sigma=25.mat")  # doctest: +SKIP
    >>> w.source_format, w.layers[0].type  # doctest: +SKIP
    ('matconvnet_v5', 'conv')
    """
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        version = _mat_version(path)
        tree = _load_mat(path, version)
        if "net" in tree or "layers" in tree:
            return OfficialWeights(f"matconvnet_{version}", layers=_layers_from(tree, path))
        return OfficialWeights(f"mat_variables_{version}", variables=_variables_from(tree, path))
    if suffix == ".safetensors":
        return OfficialWeights("safetensors", state_dict=_numpy_state(load_checkpoint(path)[0]))
    try:
        state = load_checkpoint(path)[0]
    except PickledCheckpointError:
        return OfficialWeights("pickled_model", state_dict=read_pickled_model(path))
    return OfficialWeights("state_dict", state_dict=_numpy_state(state))


def read_matconvnet(path: str | os.PathLike[str]) -> list[MatLayer]:
    """The layers of a MatConvNet SimpleNN ``.mat`` file (variable ``net``, or ``layers``).

    >>> [l.type for l in read_matconvnet("sigma=25.mat")][:3]  # doctest: +SKIP
    ['conv', 'relu', 'conv']
    """
    path = _existing(path, (".mat",))
    return _layers_from(_load_mat(path, _mat_version(path)), path)


def read_mat_variables(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The numeric top-level variables of a ``.mat`` file, dtype and MATLAB shape as stored.

    >>> read_mat_variables("x3.mat")["weights_conv1"].shape  # doctest: +SKIP
    (1, 81, 64)
    """
    path = _existing(path, (".mat",))
    return _variables_from(_load_mat(path, _mat_version(path)), path)


def read_pickled_model(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The state dict of a whole model pickled by ``torch.save(model)``, as numpy arrays.

    Works without the model's code: no class named in the file is imported or run. Also
    reads a pickled dict of tensors, and a dict holding the model or state dict under a
    key of :data:`~tasks.nn.checkpoints.WRAPPER_KEYS`. bfloat16 comes back as float32.

    >>> state = read_pickled_model("SwinIR_whole_model.pth")  # doctest: +SKIP
    """
    path = _existing(path, TORCH_EXTENSIONS)
    if zipfile.is_zipfile(path):
        obj, little = _read_zip(path)
    else:
        obj, little = _read_legacy(path)
    return _pickled_state_dict(obj, path, little)


def _existing(path: str | os.PathLike[str], accepted: tuple[str, ...] = OFFICIAL_EXTENSIONS) -> Path:
    path = Path(path)
    if path.suffix.lower() not in accepted:
        raise UserError(f"{path} has an unknown extension {path.suffix!r}; accepted: {', '.join(accepted)}.")
    if not path.is_file():
        raise UserError(f"{path} does not exist; check the path (accepted extensions: {', '.join(accepted)}).")
    return path


def _numpy_state(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    import torch

    def to_numpy(t: torch.Tensor) -> np.ndarray:
        t = t.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()

    return {name: to_numpy(t) for name, t in state.items()}


# --- restricted unpickling of torch.save files -------------------------------------------

_STORAGES = {"FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
             "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
             "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
             "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
             "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8"}
_NUMPY = {"float32": "f4", "float64": "f8", "float16": "f2", "bfloat16": "u2", "int64": "i8",
          "int32": "i4", "int16": "i2", "int8": "i1", "uint8": "u1", "uint16": "u2",
          "uint32": "u4", "uint64": "u8", "bool": "?", "complex64": "c8", "complex128": "c16"}
_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "long": "int64",
                  "int": "int32", "short": "int16", "cfloat": "complex64", "cdouble": "complex128"}
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


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                       hooks: Any, dtype: Any, *_: Any) -> _Tensor:
    if not isinstance(dtype, _Dtype) or dtype.name not in _NUMPY:
        raise UserError(f"unsupported tensor dtype {_describe(dtype)}.")
    return _rebuild_tensor(storage, offset, size, stride, dtype=dtype.name)


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
    ("torch._utils", "_rebuild_parameter"): lambda data, *_: data,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda data, *_: data,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("copyreg", "_reconstructor"): _reconstructor,
    ("copy_reg", "_reconstructor"): _reconstructor,
    ("_codecs", "encode"): _codecs_encode,
    **{(mod, name): getattr(builtins, name)
       for mod in ("builtins", "__builtin__") for name in ("set", "frozenset", "complex", "slice")},
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
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, struct.error, UnicodeDecodeError, RecursionError) as exc:
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
            raise UserError(f"{path} is not a file written by torch.save() (bad magic number); "
                            "convert only accepts PyTorch files.")
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
        return isinstance(v, Mapping) and bool(v) and all(
            isinstance(k, str) and isinstance(t, _Tensor) for k, t in v.items())

    def usable(v: Any) -> bool:
        return is_tensors(v) or _module_state(v) is not None

    if not usable(obj) and not isinstance(obj, Mapping):
        raise UserError(f"{path} holds a {_describe(obj)}, which is neither a model nor a dict of "
                        "tensors; nothing was run. Use the weights file the authors released.")
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


# --- MATLAB .mat files -------------------------------------------------------------------

_MATLAB_NUMERIC = {"double": "f8", "single": "f4", "int8": "i1", "uint8": "u1", "int16": "i2",
                   "uint16": "u2", "int32": "i4", "uint32": "u4", "int64": "i8", "uint64": "u8",
                   "logical": "u1"}


def _mat_version(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(128)
    if head.startswith(b"\x89HDF") or head.startswith(b"MATLAB 7.3"):
        return "v73"
    if head.startswith(b"MATLAB 5.0"):
        return "v5"
    raise UserError(f"{path} is not a MATLAB v5 or v7.3 MAT-file (unrecognised header); "
                    "re-save it in MATLAB with save(..., '-v7') or '-v7.3'.")


def _load_mat(path: Path, version: str) -> dict[str, Any]:
    """All variables as plain values: str, ndarray, dict (struct), list (cell), None."""
    if version == "v5":
        import scipy.io
        from scipy.io.matlab import MatReadError

        try:
            raw = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False)
        except (MatReadError, ValueError, TypeError, OSError, NotImplementedError, RecursionError) as exc:
            raise UserError(f"{path} is not a readable MATLAB v5 file ({exc}).") from exc
        return {k: _from_v5(v) for k, v in raw.items() if not k.startswith("__")}
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return {k: _from_h5(f[k], f) for k in f if not k.startswith("#")}
    except (OSError, KeyError, ValueError, TypeError, RecursionError) as exc:  # RecursionError: cyclic refs
        raise UserError(f"{path} is not a readable MATLAB v7.3 (HDF5) file ({exc}).") from exc


def _from_v5(value: Any) -> Any:
    from scipy.io.matlab import mat_struct

    if isinstance(value, mat_struct):
        return {name: _from_v5(getattr(value, name)) for name in value._fieldnames}
    if not isinstance(value, np.ndarray):
        return None  # function handles, opaque objects
    if value.dtype == object:
        items = value.ravel(order="F")
        if items.size and all(isinstance(v, mat_struct) for v in items):  # struct (array)
            return _from_v5(items[0]) if items.size == 1 else [_from_v5(v) for v in items]
        return [_from_v5(v) for v in items]  # cell
    if value.dtype.kind == "U":
        return "".join(value.ravel().tolist())
    return value if value.dtype.kind in "biufc" else None


def _from_h5(obj: Any, f: Any) -> Any:
    import h5py

    cls = obj.attrs.get("MATLAB_class")
    cls = cls.decode() if isinstance(cls, bytes) else (str(cls) if cls is not None else None)
    if isinstance(obj, h5py.Group):
        fields = {k: obj[k] for k in obj}
        if fields and all(isinstance(d, h5py.Dataset) and d.dtype == h5py.ref_dtype
                          and "MATLAB_class" not in d.attrs for d in fields.values()):
            refs = {k: d[()].T.ravel(order="F") for k, d in fields.items()}  # struct array
            n = min(len(r) for r in refs.values())
            items = [{k: _from_h5(f[r[i]], f) for k, r in refs.items()} for i in range(n)]
            return items[0] if n == 1 else items
        return {k: _from_h5(v, f) for k, v in fields.items()} if cls in (None, "struct") else None
    if "MATLAB_sparse" in obj.attrs:
        logger.warning("skipping sparse MATLAB array %s", obj.name)
        return None
    if obj.attrs.get("MATLAB_empty", 0):
        dims = tuple(int(d) for d in np.asarray(obj[()]).ravel())
        return {"cell": [], "char": "", "struct": {}}.get(cls, np.zeros(dims, _MATLAB_NUMERIC.get(cls, "f8")))
    data = obj[()]
    if cls == "cell":
        return [_from_h5(f[ref], f) for ref in np.asarray(data).T.ravel(order="F")]
    if cls == "char":
        return "".join("".join(map(chr, row)) for row in np.atleast_2d(np.asarray(data).T))
    if cls in _MATLAB_NUMERIC:
        array = np.asarray(data)
        if array.dtype.names and {"real", "imag"} <= set(array.dtype.names):
            array = array["real"] + 1j * array["imag"]
        return array.T.astype(np.uint8) if cls == "logical" else array.T  # uint8, as scipy reads v5
    logger.warning("skipping MATLAB value %s of class %s", obj.name, cls)
    return None


def _layers_from(tree: dict[str, Any], path: Path) -> list[MatLayer]:
    net = tree.get("net")
    layers = net.get("layers") if isinstance(net, dict) else tree.get("layers")
    layers = [layers] if isinstance(layers, dict) else layers
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise UserError(f"{path} has no MatConvNet SimpleNN network (a 'net' struct whose 'layers' "
                        "is a cell array of structs).")
    if any("block" in layer for layer in layers):
        raise UserError(f"{path} holds a MatConvNet DagNN network, which is not supported; "
                        "convert it to SimpleNN in MATLAB or use a PyTorch release of the weights.")
    return [_layer(i, layer, path) for i, layer in enumerate(layers)]


def _layer(index: int, fields: dict[str, Any], path: Path) -> MatLayer:
    kind, name = fields.get("type"), fields.get("name")
    if not isinstance(kind, str):
        raise UserError(f"{path}: layer {index + 1} has no 'type' string; not a MatConvNet SimpleNN file.")
    weights = fields.get("weights")
    if weights is None and "filters" in fields:  # MatConvNet before beta-12
        weights = [fields["filters"], fields.get("biases")]
    arrays = []
    for w in [weights] if isinstance(weights, np.ndarray) else (weights or []):
        if w is None:
            continue
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "biuf":
            raise UserError(f"{path}: layer {index + 1} ({kind}) has a non-numeric weight {type(w).__name__}.")
        arrays.append(np.array(w, dtype=np.float32))
    if kind in ("conv", "convt") and arrays and 0 < arrays[0].ndim < 4:
        arrays[0] = arrays[0].reshape(arrays[0].shape + (1,) * (4 - arrays[0].ndim))
    skip = {"type", "name", "weights", "filters", "biases"}
    attrs = {k: _attr(v) for k, v in fields.items() if k not in skip}
    return MatLayer(kind, name if isinstance(name, str) else f"layer{index + 1}", tuple(arrays), attrs)


def _attr(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _attr(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_attr(v) for v in value]
    if not isinstance(value, np.ndarray):
        return value
    if value.size == 0:
        return None
    if value.size == 1:
        return value.item()
    if sum(d > 1 for d in value.shape) == 1:
        return value.ravel(order="F")
    return value


def _variables_from(tree: dict[str, Any], path: Path) -> dict[str, np.ndarray]:
    found = {k: v for k, v in tree.items() if isinstance(v, np.ndarray) and v.dtype.kind in "biufc"}
    if not found:
        raise UserError(f"{path} holds no numeric variables (found: {', '.join(tree) or 'nothing'}); "
                        "it is neither a MatConvNet network nor a file of weight arrays.")
    return found
