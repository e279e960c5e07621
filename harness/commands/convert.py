"""``restorebench convert``: released weights (any supported format) -> our checkpoint format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError


def convert_weights(source: str | Path, method_ref: str, out: str | Path) -> dict[str, Any]:
    """Read ``source`` safely, map it onto the method's architecture, check it loads, save it.

    Returns the metadata written with the checkpoint. ``converted_from.sha256`` is that of
    the file read; for a TensorFlow checkpoint (``source`` its prefix, ``.index`` or a data
    file) that of its ``.index``, which holds every tensor's CRC32C.
    """
    from restorebench.core.build import build_method
    from restorebench.neural.checkpoints import file_sha256, save_checkpoint
    from restorebench.neural.official import read_official

    method = build_method(method_ref)
    from restorebench.neural.inference import NeuralMethod

    if not isinstance(method, NeuralMethod):
        raise UserError(f"{method.qualified_name} has no official-weights mapping (only neural methods do)")
    import numpy as np
    import torch

    weights = read_official(source)
    state, config = method.convert_official(weights)
    state = {k: v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v)) for k, v in state.items()}
    network = method.build_network(config)
    try:
        network.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = "; ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise UserError(
            f"{source} does not fit {method.qualified_name}: {detail or str(exc).splitlines()[0]}"
        ) from None
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
    save_checkpoint(out, state, metadata)
    return metadata
