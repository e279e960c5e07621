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
* :func:`~restorebench.neural.tf_checkpoint.read_tf_checkpoint`: a TensorFlow V2 checkpoint
  (``tf.train.Saver``: ``PREFIX.index`` + ``PREFIX.data-*``), parsed without TensorFlow.
* :func:`read_official`: picks the reader by extension and content.

Arrays keep MATLAB's (and TF's) dimension order (conv filters ``H x W x Cin x Cout``);
converting to torch's ``(Cout, Cin, H, W)`` is the model's job:
``np.transpose(filters, (3, 2, 0, 1))``.
torch, scipy.io and h5py are imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from restorebench.neural.checkpoints import (
    TORCH_EXTENSIONS,
    PickledCheckpointError,
    existing_file,
    load_checkpoint,
)
from restorebench.neural.matlab import (
    MatLayer,
    layers_from,
    load_mat,
    mat_version,
    read_mat_variables,
    read_matconvnet,
    variables_from,
)
from restorebench.neural.tf_checkpoint import read_tf_checkpoint, tf_checkpoint_prefix
from restorebench.neural.torch_pickle import read_pickled_model

__all__ = [
    "MatLayer",
    "OfficialWeights",
    "read_mat_variables",
    "read_matconvnet",
    "read_official",
    "read_pickled_model",
    "read_tf_checkpoint",
]

OFFICIAL_EXTENSIONS = (".safetensors", *TORCH_EXTENSIONS, ".mat", ".index")


@dataclass
class OfficialWeights:
    """What :func:`read_official` found; exactly one of the three payloads is set.

    ``path`` is the file whose SHA-256 identifies the weights: the file read, or a TF
    checkpoint's ``.index``, which holds the CRC32C of every tensor in its data files
    (checked on reading).
    """

    # safetensors, state_dict, pickled_model, matconvnet_v5/_v73, mat_variables_v5/_v73, tf_checkpoint
    source_format: str
    state_dict: dict[str, np.ndarray] | None = None
    layers: list[MatLayer] | None = None
    variables: dict[str, np.ndarray] | None = None
    path: Path | None = None


def read_official(path: str | os.PathLike[str]) -> OfficialWeights:
    """Read released weights in any supported format.

    ``.safetensors`` and ``.pth``/``.pt``/``.ckpt``/``.bin`` state dicts go through the
    weights-only :func:`~restorebench.neural.checkpoints.load_checkpoint`; a PyTorch file that holds
    a whole pickled model falls back to :func:`read_pickled_model`. A ``.mat`` file with
    a ``net`` or ``layers`` variable is read as MatConvNet, any other as plain variables.
    A TensorFlow checkpoint is named by its prefix (``model.ckpt`` when no such file
    exists but ``model.ckpt.index`` does), its ``.index`` or a ``.data-*`` file.

    >>> w = read_official("DnCNN/model/specifics/sigma=25.mat")  # doctest: +SKIP
    >>> w.source_format, w.layers[0].type  # doctest: +SKIP
    ('matconvnet_v5', 'conv')
    """
    if (prefix := tf_checkpoint_prefix(path)) is not None:
        state = read_tf_checkpoint(prefix)
        return OfficialWeights("tf_checkpoint", state_dict=state, path=prefix.with_name(prefix.name + ".index"))
    path = existing_file(path, OFFICIAL_EXTENSIONS)
    suffix = path.suffix.lower()
    if suffix == ".mat":
        version = mat_version(path)
        tree = load_mat(path, version)
        if "net" in tree or "layers" in tree:
            return OfficialWeights(f"matconvnet_{version}", layers=layers_from(tree, path), path=path)
        return OfficialWeights(f"mat_variables_{version}", variables=variables_from(tree, path), path=path)
    if suffix == ".safetensors":
        return OfficialWeights("safetensors", state_dict=_numpy_state(load_checkpoint(path)[0]), path=path)
    try:
        state = load_checkpoint(path)[0]
    except PickledCheckpointError:
        return OfficialWeights("pickled_model", state_dict=read_pickled_model(path), path=path)
    return OfficialWeights("state_dict", state_dict=_numpy_state(state), path=path)


def _numpy_state(state: Mapping[str, Any]) -> dict[str, np.ndarray]:
    import torch

    def to_numpy(t: torch.Tensor) -> np.ndarray:
        t = t.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()

    return {name: to_numpy(t) for name, t in state.items()}
