"""The SID authors' released weights mapped onto :class:`~restorebench.tasks.lowlight.models.SIDUNet`.

Two layouts are read: the official TensorFlow checkpoint (``g_conv1_1/weights`` ...,
``Variable`` ... for the transposed convolutions, HWIO kernels, and a depth-to-space
whose channel order differs from PyTorch's ``pixel_shuffle``) and the common PyTorch
ports' state dicts (``conv1_1.weight`` ..., possibly with a ``module.`` prefix).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from restorebench import UserError

__all__ = ["sid_from_official", "tf_depth_to_space_permutation"]


def tf_depth_to_space_permutation(channels: int = 3, block: int = 2) -> np.ndarray:
    """``perm`` with ``torch_channel[t] = tf_channel[perm[t]]`` for the last convolution.

    TF ``depth_to_space`` (NHWC) reads output ``(y*b + i, x*b + j, c)`` from channel
    ``(i*b + j) * C + c``; torch ``pixel_shuffle`` reads it from ``c*b*b + i*b + j``.
    """
    perm = np.empty(channels * block * block, dtype=np.int64)
    for c in range(channels):
        for i in range(block):
            for j in range(block):
                perm[c * block * block + i * block + j] = (i * block + j) * channels + c
    return perm


_TF_CONV = re.compile(r"^g_conv(\d+)_?(\d*)/(weights|biases)$")
_TF_DECONV = re.compile(r"^Variable(?:_(\d+))?$")
_TORCH_KEY = re.compile(r"^(conv\d+_\d+|upv\d+|up\d+|conv\d+)\.(weight|bias)$")


def _clean_key(key: str) -> str:
    key = key.removeprefix("module.")
    return key.removesuffix(":0")


def sid_from_official(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Released SID weights -> ``(state_dict, config)`` of :class:`SIDUNet`.

    ======================================  =============================================
    released as                             mapped how
    ======================================  =============================================
    our layout / PyTorch ports with         as they are: ``conv{L}_{k}.weight/bias``,
    ``upv6..upv9`` (e.g. lavi135246's       ``upv{L}.weight`` (``.bias`` -> ``up_bias``),
    ``SeeInDark``), ``torch.save(           ``conv10_1``; ``pixel_shuffle`` order
    model.state_dict())``
    PyTorch ports with ``up6..up9`` and     renamed to ``upv{L}`` / ``conv10_1``; their
    ``conv10`` (e.g. cydonia999's           depth-first pixel shuffle is TF's order, so
    ``LSID``)                               ``conv10``'s output channels are permuted
    the official TF checkpoint              ``g_conv{L}_{k}/weights`` (3x3xCinxCout) ->
    (``checkpoint/Sony/model.ckpt``) read   ``conv{L}_{k}.weight`` transposed (3, 2, 0, 1),
    directly (``restorebench.neural.tf_checkpoint``),  ``/biases`` -> ``.bias``; ``g_conv10/weights``
    or by ``tf.train.load_checkpoint``      -> ``conv10_1`` with the depth-to-space
    and saved as ``.pth``/``.safetensors``  permutation (:func:`tf_depth_to_space_permutation`);
                                            the un-named ``tf.Variable`` deconvolution
                                            filters ``Variable, Variable_1, _2, _3``
                                            (2x2xCoutxCin, created up6 -> up9) ->
                                            ``upv6 .. upv9`` transposed (3, 2, 0, 1), no bias
    ======================================  =============================================

    A ``module.`` prefix and TF's ``:0`` suffix are dropped. Base, depth and the channels
    are read from the shapes; ``Adam`` slots and other extra TF variables are ignored.
    """
    raw = {_clean_key(k): np.asarray(v, dtype=np.float32) for k, v in state.items()}
    if any(_TF_CONV.match(k) for k in raw):
        out = _from_tf(raw)
    else:
        out = _from_torch(raw)
    config = _sid_config(out)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in out.items()}, config


def _from_tf(raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    convs: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    deconvs: dict[int, np.ndarray] = {}
    for key, value in raw.items():
        if m := _TF_CONV.match(key):
            level, index = int(m.group(1)), int(m.group(2) or 1)
            convs.setdefault((level, index), {})[m.group(3)] = value
        elif m := _TF_DECONV.match(key):
            deconvs[int(m.group(1) or 0)] = value
    if not convs:
        raise UserError("no g_conv*/weights in the TF state dict")
    last = max(level for level, _ in convs)
    depth = last // 2
    if sorted(deconvs) != list(range(depth - 1)):
        raise UserError(
            f"expected {depth - 1} transposed-convolution filters Variable, Variable_1, ..., found {sorted(deconvs)}"
        )
    out: dict[str, np.ndarray] = {}
    for (level, index), params in sorted(convs.items()):
        if "weights" not in params or "biases" not in params:
            raise UserError(f"g_conv{level}_{index} lacks weights or biases")
        weight, bias = np.transpose(params["weights"], (3, 2, 0, 1)), params["biases"]
        if level == last:
            perm = tf_depth_to_space_permutation(weight.shape[0] // 4, 2)
            weight, bias = weight[perm], bias[perm]
        out[f"conv{level}_{index}.weight" if level != last else f"conv{level}_1.weight"] = weight
        out[f"conv{level}_{index}.bias" if level != last else f"conv{level}_1.bias"] = bias
    for i, value in deconvs.items():
        out[f"upv{depth + 1 + i}.weight"] = np.transpose(value, (3, 2, 0, 1))
    return out


def _from_torch(raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    bad = [k for k in raw if not _TORCH_KEY.match(k)]
    if bad:
        raise UserError(f"{bad[0]!r} is not a SID U-Net weight (expected conv{{L}}_{{k}}, upv{{L}} or g_conv*)")
    out: dict[str, np.ndarray] = {}
    levels = [int(m.group(1)) for k in raw if (m := re.match(r"^conv(\d+)", k))]
    last = max(levels)
    depth_first = f"conv{last}.weight" in raw  # cydonia999-style: TF channel order
    for key, value in raw.items():
        name, param = key.rsplit(".", 1)
        if re.fullmatch(r"up\d+", name):
            name = "upv" + name[2:]
        if name == f"conv{last}":
            name = f"conv{last}_1"
        if depth_first and name == f"conv{last}_1":
            value = value[tf_depth_to_space_permutation(value.shape[0] // 4, 2)]
        out[f"{name}.{param}"] = value
    return out


def _sid_config(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    try:
        first, out = state["conv1_1.weight"], None
        ups = sorted(int(k[3:].split(".")[0]) for k in state if k.startswith("upv") and k.endswith(".weight"))
        depth = len(ups) + 1
        out = state[f"conv{2 * depth}_1.weight"]
    except KeyError as exc:
        raise UserError(f"the SID U-Net weights lack {exc.args[0]}") from None
    if out.shape[0] % 4:
        raise UserError(f"the output convolution has {out.shape[0]} channels, not 4 per colour (depth-to-space by 2)")
    return {
        "base": int(first.shape[0]),
        "depth": depth,
        "in_channels": int(first.shape[1]),
        "out_channels": int(out.shape[0] // 4),
        "block": 2,
        "up_bias": any(k.startswith("upv") and k.endswith(".bias") for k in state),
    }


# ================================================================ DeepUPE-style


# Loss weights: reconstruction (MSE of I / S against the target), smoothness, colour. The
# paper's omegas could not be checked here (its text was not at hand; the authors' code
# and issue answers suggest omega_s = 2 with an extra 1.5 inside the smoothness weight;
# third-party ports use 0.05 smoothness and 0.2 colour as 1 - cos). These are ours,
# chosen so that no term dominates at the start of training on BSDS400 patches.
