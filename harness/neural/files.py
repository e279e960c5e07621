"""What every weights reader shares: accepted extensions, the file check, and picking a state
dict out of a loaded payload.

Kept apart from :mod:`~restorebench.neural.checkpoints` so that the reader of pickled models
(:mod:`~restorebench.neural.torch_pickle`) and the checkpoint loader can both use them
without importing each other. Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError

__all__ = [
    "CHECKPOINT_EXTENSIONS",
    "CONVERT_HINT",
    "TORCH_EXTENSIONS",
    "WRAPPER_KEYS",
    "existing_file",
    "select_state_dict",
    "strip_module_prefix",
]

TORCH_EXTENSIONS = (".pth", ".pt", ".ckpt", ".bin")
CHECKPOINT_EXTENSIONS = (".safetensors", *TORCH_EXTENSIONS)
"""File extensions :func:`restorebench.neural.checkpoints.load_checkpoint` accepts."""

WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "net", "generator")
"""Keys under which training code commonly nests a state dict, most preferred first.

BasicSR saves ``{"params": ..., "params_ema": ...}`` (the EMA weights are the ones to
evaluate), Lightning ``{"state_dict": ...}``, others ``{"model": ...}``, ``{"net": ...}``
or a GAN's ``{"generator": ...}``.
"""

CONVERT_HINT = "restorebench convert FILE --method TASK/NAME --out FILE.safetensors"


def select_state_dict(obj: Any, is_state_dict: Callable[[Any], bool], *, source: Path) -> Any:
    """Pick the state dict from a loaded payload (see
    :func:`restorebench.neural.checkpoints.load_checkpoint` for the rule).

    ``is_state_dict(value)`` says whether a value is usable as is; shared with
    :mod:`restorebench.neural.torch_pickle`, whose payloads also include whole-model stubs.
    """
    if isinstance(obj, Mapping):
        for key in WRAPPER_KEYS:
            if key in obj and is_state_dict(obj[key]):
                return obj[key]
    if is_state_dict(obj):
        return obj
    if isinstance(obj, Mapping):
        keys = ", ".join(repr(k) for k in list(obj)[:12])
        raise UserError(
            f"{source} holds a dict with keys {keys} but no state dict (a dict of tensors) "
            f"at the top level or under any of {', '.join(WRAPPER_KEYS)}; "
            "save model.state_dict() instead."
        )
    raise UserError(f"{source} holds a {type(obj).__name__}, not a state dict; save model.state_dict() instead.")


def strip_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the ``"module."`` prefix that ``DataParallel`` puts before every key."""
    return {(k.removeprefix("module.")): v for k, v in state.items()}


def existing_file(path: str | os.PathLike[str], accepted: tuple[str, ...]) -> Path:
    """``path`` as a Path when it exists and has an accepted extension; else a UserError that says so."""
    path = Path(path)
    if path.suffix.lower() == ".mat" and ".mat" not in accepted:
        raise UserError(
            f"{path} is a MATLAB .mat file, which is not loaded directly; convert it first with `{CONVERT_HINT}`."
        )
    if path.suffix.lower() not in accepted:
        raise UserError(f"{path} has an unknown extension {path.suffix!r}; accepted: {', '.join(accepted)}.")
    if not path.is_file():
        raise UserError(f"{path} does not exist; check the path (accepted extensions: {', '.join(accepted)}).")
    return path
