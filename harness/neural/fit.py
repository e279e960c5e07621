"""Whether a checkpoint fits a network, decided from tensor names and shapes before anything is built.

A checkpoint's metadata ``config`` says how to build its network; its tensors say what the
network must hold. The two are checked against each other before the network is built,
so that damaged or hostile metadata (``depth: 1000000000``) is refused in milliseconds
instead of growing a process without bound:

* :func:`check_config`: each config key that the tensors determine (what a method's
  ``config_from_tensors`` reads from names and shapes) must equal what they say;
* :func:`bounded_build`: the network is built on torch's meta device (no memory for
  weights) while every registered parameter, buffer and submodule is counted; past what
  the file's tensors could fill, the build stops with a one-line error;
* :func:`normalise_state`: legacy layouts brought to the network's (1-element buffers such
  as PyTorch 0.4's ``num_batches_tracked`` as scalars, renamed weight/spectral-norm
  parametrisations, missing batch-norm counters);
* :func:`describe_mismatch`: key and shape differences in one short line (counts, the
  first few names), never thousands of keys.

torch is imported inside the functions.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from restorebench.core.errors import UserError

if TYPE_CHECKING:
    import torch

__all__ = ["bounded_build", "check_config", "describe_mismatch", "normalise_state"]

T = TypeVar("T")
Shapes = Mapping[str, tuple[int, ...]]

TENSORS_PER_STORED = 2
"""Parameters and buffers a build may register per tensor in the file (spectral norm keeps
``weight_orig``, ``weight_u`` and ``weight_v`` for one weight; registrations replaced later
count twice), plus :data:`SLACK`."""
MODULES_PER_STORED = 8
"""Submodule registrations a build may make per tensor in the file (activations, pools and
containers hold none), plus :data:`SLACK`."""
SLACK = 256


def check_config(path: str | os.PathLike[str], config: Mapping[str, Any], said: Mapping[str, Any], name: str) -> None:
    """Refuse a config whose keys contradict what the tensors say (``said``, from the method's
    ``config_from_tensors``), naming the key, its value and the tensors' value.

    >>> check_config("m.safetensors", {"depth": 5, "features": 8}, {"depth": 5}, "denoise/dncnn")  # fits
    >>> check_config("m.safetensors", {"depth": 10**9}, {"depth": 5}, "denoise/dncnn")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    restorebench.core.errors.UserError: m.safetensors: its metadata config has depth=1000000000 but its tensors say depth=5; ...
    """
    for key, value in said.items():
        if key in config and not _same(config[key], value):
            raise UserError(
                f"{path}: its metadata config has {key}={_short(config[key])} but its tensors say "
                f"{key}={_short(value)}; {name} is not built from it",
                hint="the metadata is damaged or belongs to other weights; re-create the file with "
                "`restorebench convert` (released weights) or `restorebench train`",
            )


def bounded_build(
    build: Callable[[], T], *, tensors: int, config: Mapping[str, Any], path: str | os.PathLike[str], name: str
) -> T:
    """``build()`` on torch's meta device, stopped once it registers more parameters, buffers
    or submodules than a file of ``tensors`` tensors could fill (see :data:`TENSORS_PER_STORED`).

    Covers every network, including those whose method reads nothing from the tensors: a
    config that asks for a billion layers is refused after the first few hundred, in
    milliseconds. Only registrations made by this thread count.
    """
    import torch
    from torch.nn.modules import module as modules

    limits = (TENSORS_PER_STORED * tensors + SLACK, MODULES_PER_STORED * tensors + SLACK)
    counts = [0, 0]
    owner = threading.get_ident()

    def counter(kind: int) -> Callable[..., None]:
        def hook(module: Any, key: str, value: Any) -> None:
            if threading.get_ident() == owner:
                counts[kind] += 1
                if counts[kind] > limits[kind]:
                    raise _Oversized

        return hook

    handles = [
        modules.register_module_parameter_registration_hook(counter(0)),
        modules.register_module_buffer_registration_hook(counter(0)),
        modules.register_module_module_registration_hook(counter(1)),
    ]
    try:
        with torch.device("meta"):
            return build()
    except _Oversized:
        kind = 0 if counts[0] > limits[0] else 1
        what = ("parameters and buffers", "submodules")[kind]
        raise UserError(
            f"{path}: its metadata config builds more than {limits[kind]} {what} in {name}, "
            f"but its tensors number {tensors}{_largest(config)}; {name} is not built from it",
            hint="the metadata is damaged or belongs to other weights; re-create the file with "
            "`restorebench convert` (released weights) or `restorebench train`",
        ) from None
    finally:
        for handle in handles:
            handle.remove()


class _Oversized(BaseException):
    """Raised inside a build; a BaseException so that no ``except Exception`` in a network's
    constructor swallows it."""


def normalise_state(state: Mapping[str, torch.Tensor], expected: Shapes) -> dict[str, torch.Tensor]:
    """``state`` in the layout of a network whose tensors have the ``expected`` shapes.

    * a 1-element tensor where a scalar is expected, or the reverse (PyTorch 0.3/0.4 stored
      batch norm's ``num_batches_tracked`` as ``(1,)``; torch's own ``load_state_dict``
      accepts it, a shape check does not);
    * an unexpected key renamed to the expected one it stands for: a ``module.`` prefix,
      or the ``torch.nn.utils.parametrizations`` names of weight and spectral norm
      (``X.parametrizations.weight.original0/1`` = ``X.weight_g/_v``,
      ``X.parametrizations.weight.original`` / ``.0._u`` / ``.0._v`` = ``X.weight_orig/_u/_v``);
    * batch norm's ``num_batches_tracked`` that older releases lack: zero.

    Everything else is left as it is (a mismatch is :func:`describe_mismatch`'s to report).
    """
    import torch

    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key not in expected:
            key = next((c for c in _renamed(key) if c in expected and c not in state), key)
        want = expected.get(key)
        if want is not None and tuple(tensor.shape) != want and tensor.numel() == 1 and len(want) <= 1:
            if (not want or want == (1,)) and tensor.dim() <= 1:
                tensor = tensor.reshape(want)
        out[key] = tensor
    for key, want in expected.items():
        if key.endswith("num_batches_tracked") and key not in out and want == ():
            out[key] = torch.zeros((), dtype=torch.long)
    return out


def describe_mismatch(expected: Shapes, stored: Shapes, *, optional: Callable[[str], bool] = lambda k: False) -> str:
    """Key and shape differences in one short line: counts and the first few of each, or ``""``.

    >>> describe_mismatch({"a.weight": (2,), "b.weight": (3,)}, {"a.weight": (4,), "c.bias": (3,)})
    '1 missing (b.weight); 1 unexpected (c.bias); 1 of another shape (a.weight: stored (4,), expected (2,))'
    """
    missing = [k for k in expected if k not in stored and not optional(k)]
    unexpected = [k for k in stored if k not in expected]
    wrong = [f"{k}: stored {stored[k]}, expected {v}" for k, v in expected.items() if k in stored and stored[k] != v]
    parts = [
        f"{len(names)} {what} ({_first(names)})"
        for names, what in ((missing, "missing"), (unexpected, "unexpected"), (wrong, "of another shape"))
        if names
    ]
    return "; ".join(parts)


# ---------------------------------------------------------------- helpers

_PARAMETRIZATIONS = {
    ".parametrizations.weight.original0": ".weight_g",  # weight norm: g, then v
    ".parametrizations.weight.original1": ".weight_v",
    ".parametrizations.weight.original": ".weight_orig",  # spectral norm
    ".parametrizations.weight.0._u": ".weight_u",
    ".parametrizations.weight.0._v": ".weight_v",
}


def _renamed(key: str) -> Iterator[str]:
    """Names a legacy or wrapped key may stand for, most likely first."""
    bare = key
    while bare.startswith("module."):
        bare = bare[len("module.") :]
        yield bare
    for new, old in _PARAMETRIZATIONS.items():
        if bare.endswith(new):
            yield bare[: -len(new)] + old
        if bare.endswith(old):
            yield bare[: -len(old)] + new


def _first(names: list[str], n: int = 3) -> str:
    shown = ", ".join(names[:n])
    return shown if len(names) <= n else f"{shown}, ... {len(names) - n} more"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 8:
        return f"[{', '.join(map(repr, value[:4]))}, ... {len(value)} entries]"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _largest(config: Mapping[str, Any]) -> str:
    """``"; largest value in the config: depth=1000000000"`` (or the longest list), or ``""``."""
    best: tuple[float, str] | None = None
    for key, value in config.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            size, text = float(value), f"{key}={_short(value)}"
        elif isinstance(value, (list, tuple)):
            numbers = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
            size = max([float(len(value)), *map(float, numbers)])
            text = f"{key}={_short(value)}"
        else:
            continue
        if best is None or size > best[0]:
            best = (size, text)
    return f" (largest value in the config: {best[1]})" if best else ""
