"""``restorebench convert``: released weights (any supported format) -> our checkpoint format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError

_WRONG_WEIGHTS = "check that the weights are the ones released for this method (and its variant)"


def convert_weights(source: str | Path, method_ref: str, out: str | Path) -> dict[str, Any]:
    """Read ``source`` safely, map it onto the method's architecture, save it, and prove it.

    Legacy layouts are normalised first (PyTorch 0.4's 1-element ``num_batches_tracked``,
    renamed parametrisations; :func:`restorebench.neural.fit.normalise_state`). The file is
    written under a temporary name beside ``out``, loaded into the method exactly as a run
    loads it, and run forward once on a small input (finite outputs required); only then
    is it renamed to ``out``. When the proof fails nothing is left behind and a UserError
    says why.

    Returns the metadata written with the checkpoint. ``converted_from.sha256`` is that of
    the file read; for a TensorFlow checkpoint (``source`` its prefix, ``.index`` or a data
    file) that of its ``.index``, which holds every tensor's CRC32C.
    """
    from restorebench.core.build import build_method
    from restorebench.neural.inference import NeuralMethod

    method = build_method(method_ref)
    if not isinstance(method, NeuralMethod) or not method.maps_released_weights():
        raise no_mapping_error(method)
    out = Path(out)
    if out.suffix != ".safetensors":
        raise UserError(f"checkpoint path {out} must end in .safetensors; rename it.")

    import numpy as np
    import torch

    from restorebench.neural.checkpoints import file_sha256, save_checkpoint
    from restorebench.neural.official import read_official

    weights = read_official(source)
    state, config = method.convert_official(weights)
    state = {k: v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v)) for k, v in state.items()}
    _, state = method.fit_checkpoint(source, config, state, hint=_WRONG_WEIGHTS)
    metadata = {
        "architecture": getattr(method, "architecture", method.name),
        "config": config,
        "method": method.build_ref,
        "converted_from": {
            "path": str(source),
            "sha256": file_sha256(weights.path or source),
            "format": weights.source_format,
        },
    }
    trial = out.with_name(f".{out.stem}.{os.getpid()}.unproven.safetensors")
    try:
        save_checkpoint(trial, state, metadata)
        _prove(method, trial, source, out)
        os.replace(trial, out)
    finally:
        trial.unlink(missing_ok=True)
    return metadata


def _prove(method: Any, trial: Path, source: str | Path, out: Path) -> None:
    """Load the written file into a fresh instance of the method (``?checkpoint=`` it, as a run
    does) and run it forward once; a UserError naming ``out`` when that fails."""
    params = method.params.model_copy(update={"checkpoint": str(trial)})
    prover = type(method)(params)
    try:
        prover.check_checkpoint(trial)
    except UserError as exc:
        reason = str(exc).replace(str(trial), str(out)).splitlines()[0]
        raise UserError(
            f"{source} converted for {method.qualified_name}, but the result does not run: {reason}; "
            f"nothing was written to {out}",
            hint=_WRONG_WEIGHTS,
        ) from None


def no_mapping_error(method: Any) -> UserError:
    """Why ``restorebench convert`` cannot take released weights for ``method``, which methods
    can, and what to do instead (train it, or pass a restorebench checkpoint)."""
    from restorebench.core.registry import METHODS
    from restorebench.neural.inference import NeuralMethod

    mapped = sorted(
        name
        for name, cls in METHODS.items()
        if isinstance(cls, type) and issubclass(cls, NeuralMethod) and cls.maps_released_weights()
    )
    name = method.qualified_name
    trains = isinstance(method, NeuralMethod) and type(method).recipe is not NeuralMethod.recipe
    options = [f"train it with `restorebench train {name}`"] if trains else []
    options.append(f"pass a restorebench checkpoint with --method '{name}?checkpoint=FILE.safetensors'")
    if not isinstance(method, NeuralMethod):
        options = ["use one of those methods"]
    what = "has no mapping for released weights" if isinstance(method, NeuralMethod) else "is not a neural method"
    return UserError(
        f"{name} {what}; `restorebench convert` maps released weights onto {', '.join(mapped) or '(none)'} only",
        hint=" or ".join(options),
    )
