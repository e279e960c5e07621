"""A pickle loader that runs nothing from a ``torch.save`` file.

Globals resolve only to our own tensor-rebuilding functions, a few builtins, dtype
markers, or inert stubs (:mod:`~restorebench.neural.torch_stubs`); persistent ids (the
storages) are left to the caller, which knows the file format.
"""

from __future__ import annotations

import builtins
import collections
import pickle
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError
from restorebench.neural.torch_stubs import NUMPY_DTYPES, Dtype, Storage, Stub, Tensor, describe

__all__ = ["unpickle"]

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


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any, dtype: str | None = None) -> Tensor:
    if not isinstance(storage, tuple) or len(storage) != 2 or not isinstance(storage[0], Storage):
        raise UserError(f"a tensor refers to a {describe(storage)}, not a storage; the file is corrupt.")
    return Tensor(storage[0], offset, tuple(size), tuple(stride), dtype or storage[1])


def _rebuild_tensor_v3(
    storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any, hooks: Any, dtype: Any, *_: Any
) -> Tensor:
    if not isinstance(dtype, Dtype) or dtype.name not in NUMPY_DTYPES:
        raise UserError(f"unsupported tensor dtype {describe(dtype)}.")
    return _rebuild_tensor(storage, offset, size, stride, dtype=dtype.name)


def _parameter(data: Any = None, *_: Any) -> Tensor:
    """``torch.nn.Parameter(data, requires_grad)``, as PyTorch 0.4 pickled parameters: the
    tensor itself (nothing of torch is imported or run)."""
    if not isinstance(data, Tensor):
        raise UserError(f"a Parameter wraps a {describe(data)}, not a tensor; the file is corrupt.")
    return data


def _rebuild_from_type_v2(func: Callable[..., Any], new_type: Any, args: Any, state: Any) -> Any:
    return func(*args)  # func came from find_class, so it is one of ours or a stub


def _reconstructor(cls: Any, base: Any, state: Any) -> Any:
    return cls.__new__(cls) if isinstance(cls, type) and issubclass(cls, Stub) else Stub(cls, base, state)


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
            return Dtype(_STORAGES[name], storage=True)
        if module == "torch" and _DTYPE_ALIASES.get(name, name) in NUMPY_DTYPES:
            return Dtype(_DTYPE_ALIASES.get(name, name))
        if (module, name) not in self._stubs:
            self._stubs[module, name] = type(str(name), (Stub,), {"__module__": str(module)})
        return self._stubs[module, name]

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)


def unpickle(path: Path, stream: Any, persistent: Callable[[tuple[Any, ...]], Any]) -> Any:
    """Load one pickle from ``stream``; ``persistent(pid)`` resolves its storages. Any failure is a
    :class:`~restorebench.core.errors.UserError` naming ``path``."""
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
