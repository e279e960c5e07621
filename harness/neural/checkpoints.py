"""restorebench's checkpoint format: weights only, never pickled code.

A checkpoint is a ``.safetensors`` file: the tensors of a ``state_dict`` plus one header
metadata key, ``"restorebench"``, holding a JSON object that says what the weights are
(``architecture`` and its constructor ``config``, the training recipe and data with their
SHA-256, steps, validation metrics reached, library versions).

:func:`load_checkpoint` also reads the plain PyTorch state dicts that most projects
release (``.pth``, ``.pt``, ``.ckpt``, ``.bin``) with ``torch.load(weights_only=True)``,
which rebuilds tensors and containers but never imports or runs a class from the file.
A file that holds a whole pickled model is refused with a pointer to
``restorebench convert``, which reads it with :func:`restorebench.neural.official.read_pickled_model`.

torch and safetensors are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restorebench.core.errors import UserError
from restorebench.neural.files import (
    CHECKPOINT_EXTENSIONS,
    CONVERT_HINT,
    TORCH_EXTENSIONS,
    WRAPPER_KEYS,
    existing_file,
    select_state_dict,
    strip_module_prefix,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKPOINT_EXTENSIONS",
    "METADATA_KEY",
    "PickledCheckpointError",
    "TORCH_EXTENSIONS",
    "WRAPPER_KEYS",
    "checkpoint_hash",
    "existing_file",
    "file_sha256",
    "load_checkpoint",
    "read_metadata",
    "save_checkpoint",
    "select_state_dict",
    "strip_module_prefix",
]

METADATA_KEY = "restorebench"
"""The safetensors header metadata key that holds restorebench's JSON metadata."""


class PickledCheckpointError(UserError):
    """A PyTorch file holds pickled Python objects (e.g. a whole model), not just tensors."""


def save_checkpoint(
    path: str | os.PathLike[str],
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
) -> Path:
    """Write ``state_dict`` and ``metadata`` to a ``.safetensors`` file, atomically.

    Tensors are detached, moved to the CPU and made contiguous (tensors that share
    memory are copied apart, as safetensors requires). ``metadata`` must hold
    ``"architecture"`` (a str) and may hold ``"config"`` (a dict of constructor keyword
    arguments); everything else is free-form JSON. The file is written under a temporary
    name in the same folder and renamed into place, so a reader never sees half a file.

    Example
    -------
    >>> import torch
    >>> p = save_checkpoint("/tmp/w.safetensors", {"conv.weight": torch.zeros(4, 1, 3, 3)},
    ...                     {"architecture": "dncnn", "config": {"depth": 17}})
    >>> load_checkpoint(p)[1]["architecture"]
    'dncnn'
    """
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise UserError(f"checkpoint path {path} must end in .safetensors; rename it.")
    header = {METADATA_KEY: _metadata_json(metadata)}
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in state_dict.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise UserError(
                f"state_dict entry {name!r} is a {type(tensor).__name__}; a checkpoint "
                "holds tensors under string names only (pass model.state_dict())."
            )
        t = tensor.detach().to("cpu").contiguous()
        storage = t.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != t.nbytes:
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        tensors[name] = t
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=header)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a weights-only checkpoint: ``(state_dict, metadata)`` with CPU tensors.

    * ``.safetensors``: the tensors and the parsed ``"restorebench"`` metadata
      (``{}`` when the file has none).
    * ``.pth`` / ``.pt`` / ``.ckpt`` / ``.bin``: ``torch.load(weights_only=True)``;
      metadata is ``{}``. The payload is either a plain state dict (every value a
      tensor) or a dict holding one under a key of :data:`WRAPPER_KEYS`; when several
      wrapper keys hold a state dict the first in that order wins (``params_ema`` over
      ``params`` over ``state_dict`` over ``model`` over ``net`` over ``generator``).
      A leading ``"module."`` (left by ``DataParallel``) is stripped from every key.

    A file holding pickled Python objects raises :class:`PickledCheckpointError`:
    nothing is ever unpickled here; ``restorebench convert`` reads such files safely.

    Example
    -------
    >>> state, meta = load_checkpoint("weights/dncnn_25.pth")  # doctest: +SKIP
    """
    path = existing_file(path, CHECKPOINT_EXTENSIONS)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _load_safetensors(path)
    return _load_torch(path), {}


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a ``.safetensors`` file (tensor names, dtypes, shapes and the
    metadata), read without torch and without reading a tensor."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size <= 100_000_000:
                raise ValueError(f"header size {size} is implausible")
            header = json.loads(f.read(size))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
    except (OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable .safetensors file ({exc}); re-download or re-save it.") from exc
    return header


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a ``.safetensors`` checkpoint, from its header alone (no torch,
    no tensors read): cheap enough for listings."""
    header = read_header(path)
    try:
        raw = (header.get("__metadata__") or {}).get(METADATA_KEY)
        metadata = json.loads(raw) if raw else {}
    except (ValueError, AttributeError) as exc:
        raise UserError(f"{path} is not a readable .safetensors file ({exc}); re-download or re-save it.") from exc
    return metadata if isinstance(metadata, dict) else {}


BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")  # batch-norm state, not learned


def stored_shapes(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape as the checkpoint's header records it (no tensor is read)."""
    header = read_header(path)
    try:
        return {k: tuple(int(n) for n in v["shape"]) for k, v in header.items() if k != "__metadata__"}
    except (TypeError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: malformed tensor entry in the .safetensors header ({exc})") from None


def parameter_count(path: str | os.PathLike[str]) -> int:
    """Learned parameters stored in a checkpoint: every tensor but batch-norm buffers and
    spectral norm's power-iteration vectors (``X.weight_u`` / ``X.weight_v`` beside
    ``X.weight_orig``), counted from the header's shapes (what the network built from it
    would report, without building it)."""
    shapes = stored_shapes(path)
    total = 0
    for name, shape in shapes.items():
        spectral = name.endswith((".weight_u", ".weight_v")) and f"{name[:-9]}.weight_orig" in shapes
        if not name.endswith(BUFFER_SUFFIXES) and not spectral:
            total += math.prod(shape)
    return total


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks.

    >>> file_sha256("/dev/null")
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'
    """
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}; check the path.") from exc
    return digest.hexdigest()


def checkpoint_hash(path: str | os.PathLike[str]) -> str:
    """The identity of a checkpoint in unit ids: the SHA-256 of the file.

    >>> checkpoint_hash("/dev/null")[:8]
    'e3b0c442'
    """
    return file_sha256(path)


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    if not isinstance(metadata, Mapping):
        raise UserError(f"checkpoint metadata must be a dict, got {type(metadata).__name__}.")
    if not isinstance(metadata.get("architecture"), str):
        raise UserError("checkpoint metadata needs 'architecture': the registered name of the network (a str); add it.")
    if not isinstance(metadata.get("config", {}), dict):
        raise UserError(
            "checkpoint metadata 'config' must be a dict of the architecture's constructor keyword arguments."
        )
    try:
        return json.dumps(dict(metadata), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"checkpoint metadata is not plain JSON ({exc}); use str, numbers, bools, "
            "None, lists and dicts only (convert paths and arrays first)."
        ) from exc


def _load_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable .safetensors file ({exc}); re-download or re-save it.") from exc
    raw = header.get(METADATA_KEY)
    if raw is None:
        return tensors, {}
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path}: the {METADATA_KEY!r} metadata is not valid JSON ({exc}); "
            "re-save the checkpoint with save_checkpoint."
        ) from exc
    if not isinstance(metadata, dict):
        raise UserError(f"{path}: the {METADATA_KEY!r} metadata is not a JSON object.")
    return tensors, metadata


def _load_torch(path: Path) -> dict[str, torch.Tensor]:
    import pickle

    import torch

    try:
        with _quiet_pickle_protocol():
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        text = str(exc).lower()
        if any(marker in text for marker in _PICKLED_MARKERS):
            raise _pickled(path) from exc
        if _protocol_4_opcode(text):  # torch's reader lacks FRAME & co.: read it with ours
            return _load_torch_restricted(path)
        raise _unreadable(path, exc) from exc
    except Exception as exc:  # torch.load raises anything (IndexError, KeyError, ...) on garbage
        raise _unreadable(path, exc) from exc

    def is_state_dict(value: Any) -> bool:
        return (
            isinstance(value, Mapping)
            and len(value) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
        )

    return strip_module_prefix(select_state_dict(obj, is_state_dict, source=path))


def _load_torch_restricted(path: Path) -> dict[str, torch.Tensor]:
    """A state dict that torch's weights-only reader cannot parse (pickle protocol 4 or 5),
    read by restorebench's restricted unpickler with the same rule: tensors and containers
    only, a file naming any other class is refused as pickled objects."""
    import torch

    from restorebench.neural.torch_pickle import read_pickled_tensors

    state = read_pickled_tensors(path)
    if state is None:
        raise _pickled(path)
    return {name: torch.from_numpy(array) for name, array in state.items()}


def _protocol_4_opcode(text: str) -> bool:
    """Whether torch's weights-only reader stopped at an opcode of pickle protocol 4 or 5
    (``SHORT_BINUNICODE`` 140 ... ``READONLY_BUFFER`` 152; ``FRAME``, 149, comes first), not at garbage."""
    found = re.search(r"unsupported operand (\d+)", text)
    return found is not None and 140 <= int(found.group(1)) <= 152


_PROTOCOL_WARNING = r"Detected pickle protocol \d+ in the checkpoint"


@contextlib.contextmanager
def _quiet_pickle_protocol() -> Iterator[None]:
    """Silence torch.load's "Detected pickle protocol N" UserWarning (and only it): files saved
    with protocol 3-5 are common and read fine; users saw the warning on every run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PROTOCOL_WARNING, category=UserWarning)
        yield


# How torch.load(weights_only=True) says that a file names classes it will not import
# (torch 2.0-2.3: "Unsupported class ...", since 2.4: "Unsupported global: GLOBAL ...").
_PICKLED_MARKERS = ("unsupported global", "unsupported class", "allowed global", "can only build")


def _unreadable(path: Path, exc: BaseException) -> UserError:
    text = " ".join(str(exc).split())
    if "WeightsUnpickler error:" in text:  # torch's long preamble, then the actual reason
        text = text.split("WeightsUnpickler error:", 1)[1].split(" Check the", 1)[0].strip()
    reason = text[:200] or type(exc).__name__
    return UserError(
        f"{path} is not a readable PyTorch file ({reason}); it is truncated, corrupt or "
        "not a torch.save() file. Re-download it."
    )


def _pickled(path: Path) -> PickledCheckpointError:
    return PickledCheckpointError(
        f"{path} holds pickled Python objects (e.g. a whole model saved with "
        "torch.save(model)), not just tensors; restorebench never unpickles objects "
        f"when loading weights. Convert it safely with `{CONVERT_HINT}`."
    )
