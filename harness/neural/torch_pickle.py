"""Reading a whole model pickled by ``torch.save(model)`` without running any of its code.

A restricted unpickler (:mod:`~restorebench.neural.torch_unpickler`) rebuilds tensors as
numpy arrays from the raw storage bytes (zip format of PyTorch >= 1.6, and the legacy
format before it: :mod:`~restorebench.neural.torch_archive`) and stands an inert stub in
for every other class; the stubs' ``_parameters`` / ``_buffers`` / ``_modules`` are then
walked here into the names ``model.state_dict()`` would give.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.core.errors import UserError
from restorebench.neural.files import TORCH_EXTENSIONS, existing_file, select_state_dict, strip_module_prefix
from restorebench.neural.torch_archive import read_torch_file
from restorebench.neural.torch_stubs import Stub, Tensor, describe

__all__ = ["read_pickled_model", "read_pickled_tensors"]


def read_pickled_model(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The state dict of a whole model pickled by ``torch.save(model)``, as numpy arrays.

    Works without the model's code: no class named in the file is imported or run. Also
    reads a pickled dict of tensors, and a dict holding the model or state dict under a
    key of :data:`~restorebench.neural.files.WRAPPER_KEYS`. bfloat16 comes back as float32.

    >>> state = read_pickled_model("SwinIR_whole_model.pth")  # doctest: +SKIP
    """
    path = existing_file(path, TORCH_EXTENSIONS)
    obj, little = read_torch_file(path)
    return _pickled_state_dict(obj, path, little)


def read_pickled_tensors(path: str | os.PathLike[str]) -> dict[str, np.ndarray] | None:
    """The state dict of a ``torch.save`` file that holds tensors and containers only, or
    ``None`` when it names any other class (a pickled model or object).

    The weights-only rule of ``torch.load(weights_only=True)``, for files its reader cannot
    parse (pickle protocol 4 and 5, whose ``FRAME`` opcode it lacks); any protocol works here.
    """
    path = existing_file(path, TORCH_EXTENSIONS)
    obj, little = read_torch_file(path)
    if _holds_objects(obj, set()):
        return None
    return _pickled_state_dict(obj, path, little)


def _holds_objects(obj: Any, seen: set[int]) -> bool:
    """Whether a payload holds a stand-in for a class (anything but tensors, dtypes and containers)."""
    if isinstance(obj, Stub) or (isinstance(obj, type) and issubclass(obj, Stub)):
        return True
    if id(obj) in seen or not isinstance(obj, (Mapping, list, tuple, set, frozenset)):
        return False
    seen.add(id(obj))
    items = [*obj.keys(), *obj.values()] if isinstance(obj, Mapping) else list(obj)
    return any(_holds_objects(item, seen) for item in items)


def _module_state(obj: Any) -> dict[str, Any] | None:
    if not isinstance(obj, Stub):
        return None
    state = obj.state
    if isinstance(state, tuple) and len(state) == 2 and all(isinstance(s, (dict, type(None))) for s in state):
        state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slot state)
    if isinstance(state, dict) and any(k in state for k in ("_parameters", "_buffers", "_modules")):
        return state
    return None


def _flatten(module: Stub, prefix: str, out: dict[str, Tensor], active: set[int], path: Path) -> None:
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
            if not isinstance(value, Tensor):
                raise UserError(f"{path}: {prefix}{name} is a {describe(value)}, not a tensor.")
            out[f"{prefix}{name}"] = value
    children = state.get("_modules") or {}
    for name, child in children.items() if isinstance(children, Mapping) else ():
        if child is None:
            continue
        if _module_state(child) is None:
            raise UserError(f"{path}: submodule {prefix}{name} is a {describe(child)}, not a module.")
        _flatten(child, f"{prefix}{name}.", out, active, path)
    active.discard(id(module))


def _pickled_state_dict(obj: Any, path: Path, little: bool) -> dict[str, np.ndarray]:
    def is_tensors(v: Any) -> bool:
        return (
            isinstance(v, Mapping)
            and bool(v)
            and all(isinstance(k, str) and isinstance(t, Tensor) for k, t in v.items())
        )

    def usable(v: Any) -> bool:
        return is_tensors(v) or _module_state(v) is not None

    if not usable(obj) and not isinstance(obj, Mapping):
        raise UserError(
            f"{path} holds a {describe(obj)}, which is neither a model nor a dict of "
            "tensors; nothing was run. Use the weights file the authors released."
        )
    chosen = select_state_dict(obj, usable, source=path)
    tensors: dict[str, Tensor] = dict(chosen) if is_tensors(chosen) else {}
    if not tensors:
        _flatten(chosen, "", tensors, set(), path)
    if not tensors:
        raise UserError(f"{path} holds a model without parameters or buffers; nothing to convert.")
    return strip_module_prefix({name: t.to_numpy(little) for name, t in tensors.items()})
