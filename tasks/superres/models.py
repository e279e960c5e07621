"""SRCNN: the three-layer super-resolution network of Dong et al. (2014, 2016).

The network refines an image that was already upscaled with bicubic interpolation:
patch extraction (``f1 x f1`` conv, ``n1`` maps, ReLU), non-linear mapping
(``f2 x f2`` conv, ``n2`` maps, ReLU) and reconstruction (``f3 x f3`` conv, no
activation). ``9-1-5`` (``f2 = 1``) is the paper's base model, ``9-5-5`` its larger one.

The output has the size of the input: every convolution pads ``f // 2`` pixels. The
paper trained without padding (a 33x33 input gave a 21x21 output) and its released test
code ``SRCNN.m`` filters with MATLAB ``imfilter(..., 'same', 'replicate')``, so the
default here is *replicate* padding, as that code: border pixels are repeated instead of
zeros, which would darken the border of the prediction. ``padding="zeros"`` gives the
zero padding that most PyTorch re-implementations use.

torch is imported at module level: import this module only where torch is needed.

References
----------
C. Dong, C. C. Loy, K. He, X. Tang, "Learning a Deep Convolutional Network for Image
Super-Resolution", ECCV 2014. C. Dong, C. C. Loy, K. He, X. Tang, "Image
Super-Resolution Using Deep Convolutional Networks", IEEE TPAMI 38(2), 2016.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from restorebench import UserError

__all__ = ["SRCNN", "srcnn_from_official", "srcnn_parameter_count"]

DEFAULT_CONFIG: dict[str, Any] = {"f1": 9, "f2": 1, "f3": 5, "n1": 64, "n2": 32, "channels": 1, "padding": "replicate"}


class SRCNN(nn.Module):
    """SRCNN ``f1-f2-f3`` with ``n1`` and ``n2`` feature maps; output size = input size.

    Parameters
    ----------
    f1, f2, f3 : int
        Odd filter sizes of the three layers (9-1-5 by default; 9-5-5 is ``f2=5``).
    n1, n2 : int
        Feature maps of the first two layers (64 and 32 in the paper).
    channels : int
        Image channels in and out (1: the luminance Y, as the paper).
    padding : {"replicate", "zeros"}
        How each convolution pads its ``f // 2`` border pixels.

    Weights: conv1 and conv2 use He (Kaiming) normal initialisation, conv3 a Gaussian
    with std 1e-3 as the paper, biases zero. The paper's std 1e-3 everywhere suits its
    SGD with learning rate 1e-4 over days; with Adam the He init trains faster.

    Example
    -------
    >>> net = SRCNN()
    >>> net(torch.zeros(1, 1, 40, 30)).shape
    torch.Size([1, 1, 40, 30])
    >>> sum(p.numel() for p in net.parameters())
    8129
    """

    def __init__(
        self,
        f1: int = 9,
        f2: int = 1,
        f3: int = 5,
        n1: int = 64,
        n2: int = 32,
        channels: int = 1,
        padding: Literal["replicate", "zeros"] = "replicate",
    ) -> None:
        super().__init__()
        if any(f < 1 or f % 2 == 0 for f in (f1, f2, f3)):
            raise ValueError(f"filter sizes must be odd, got {f1}-{f2}-{f3}")
        if padding not in ("replicate", "zeros"):
            raise ValueError(f"padding must be 'replicate' or 'zeros', got {padding!r}")
        self.conv1 = nn.Conv2d(channels, n1, f1, padding=f1 // 2, padding_mode=padding)
        # a 1x1 conv pads nothing; "zeros" skips torch's no-op replication pad (and its backward)
        self.conv2 = nn.Conv2d(n1, n2, f2, padding=f2 // 2, padding_mode=padding if f2 > 1 else "zeros")
        self.conv3 = nn.Conv2d(n2, channels, f3, padding=f3 // 2, padding_mode=padding)
        self.relu = nn.ReLU(inplace=True)
        self._init_weights()

    def _init_weights(self) -> None:
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.conv3.weight, std=1e-3)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)


def srcnn_parameter_count(f1: int = 9, f2: int = 1, f3: int = 5, n1: int = 64, n2: int = 32, channels: int = 1) -> int:
    """The analytic number of weights and biases of :class:`SRCNN` (8129 for 9-1-5).

    >>> srcnn_parameter_count(f2=5)
    57281
    """
    return (f1 * f1 * channels * n1 + n1) + (f2 * f2 * n1 * n2 + n2) + (f3 * f3 * n2 * channels + channels)


# ---------------------------------------------------------------- released weights

_Layer = tuple[np.ndarray, np.ndarray]  # (weight Cout x Cin x f x f, bias Cout), torch layout
_SKIPPED_LAYERS = ("relu", "loss", "euclideanloss", "pdist", "dropout")


def srcnn_from_official(weights: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict and config of :class:`SRCNN` from :class:`restorebench.neural.official.OfficialWeights`.

    The three layers come from MATLAB variables (``weights_conv1`` ...), MatConvNet
    ``net.layers`` or a PyTorch state dict (see
    :meth:`restorebench.tasks.superres.neural.SRCNNMethod.convert_official` for the table); ``f1``,
    ``f2``, ``f3``, ``n1`` and ``n2`` are read from the shapes.
    """
    if weights.variables is not None:
        layers = _from_mat_variables(weights.variables)
    elif weights.layers is not None:
        layers = _from_matconvnet(weights.layers)
    else:
        layers = _from_state_dict(weights.state_dict or {})
    config = _config_of(layers)
    state = {}
    for i, (weight, bias) in enumerate(layers, start=1):
        state[f"conv{i}.weight"] = torch.from_numpy(np.ascontiguousarray(weight, dtype=np.float32))
        state[f"conv{i}.bias"] = torch.from_numpy(np.ascontiguousarray(bias, dtype=np.float32))
    return state, config


def _config_of(layers: Sequence[_Layer]) -> dict[str, Any]:
    (w1, _), (w2, _), (w3, _) = layers
    sizes = [w.shape[2] for w in (w1, w2, w3)]
    if any(w.shape[2] != w.shape[3] or w.shape[2] % 2 == 0 for w in (w1, w2, w3)):
        raise UserError(f"SRCNN filters must be square and odd-sized; got {[w.shape for w in (w1, w2, w3)]}")
    if w2.shape[1] != w1.shape[0] or w3.shape[1] != w2.shape[0] or w3.shape[0] != w1.shape[1]:
        raise UserError(
            "the three conv layers do not chain (Cout of each = Cin of the next, image channels "
            f"in = out): shapes {[w.shape for w in (w1, w2, w3)]}"
        )
    if w1.shape[1] != 1:
        raise UserError(
            f"these weights take {w1.shape[1]} image channels; superres/srcnn runs on the "
            "luminance (Y) only and needs a 1-channel SRCNN"
        )
    return {
        "f1": sizes[0],
        "f2": sizes[1],
        "f3": sizes[2],
        "n1": int(w1.shape[0]),
        "n2": int(w2.shape[0]),
        "channels": 1,
        "padding": "replicate",
    }


def _matlab_filters(columns: np.ndarray, f: int) -> np.ndarray:
    """MATLAB ``reshape(w, f, f)`` of the length-f^2 first axis: column-major, (f, f, ...)."""
    return columns.reshape((f, f) + columns.shape[1:], order="F")


def _side(length: int, name: str) -> int:
    f = round(length**0.5)
    if f * f != length:
        raise UserError(f"{name} has {length} taps per filter, not a square number")
    return f


def _from_mat_variables(variables: Mapping[str, np.ndarray]) -> list[_Layer]:
    """The layers of the authors' MATLAB release, following their ``SRCNN.m``.

    ``conv1: imfilter(im, reshape(weights_conv1(:, i), f1, f1), 'same', 'replicate')``;
    ``conv2: weights_conv2(j, i)`` (f2 = 1) or ``reshape(weights_conv2(j, :, i), f2, f2)``
    from map j to map i; ``conv3: reshape(weights_conv3(i, :), f3, f3)`` from map i.
    ``imfilter`` correlates, as torch's conv2d, so the kernels are not flipped.
    """
    names = [f"{kind}_conv{i}" for i in (1, 2, 3) for kind in ("weights", "biases")]
    missing = [n for n in names if n not in variables]
    if missing:
        raise UserError(
            f"not SRCNN's MATLAB weights: {', '.join(missing)} missing (found {', '.join(sorted(variables))})"
        )
    w1, w2, w3 = (np.asarray(variables[f"weights_conv{i}"], dtype=np.float64) for i in (1, 2, 3))
    if w1.ndim == 3 and w1.shape[0] == 1:  # 1 x f1^2 x n1
        w1 = w1[0]
    if w1.ndim != 2:
        raise UserError(f"weights_conv1 has shape {w1.shape}; expected f1^2 x n1 (one input channel)")
    conv1 = _matlab_filters(w1, _side(w1.shape[0], "weights_conv1")).transpose(2, 0, 1)[:, None]
    if w2.ndim == 2:  # n1 x n2, 1x1 filters
        conv2 = w2.T[:, :, None, None]
    elif w2.ndim == 3:  # n1 x f2^2 x n2
        f2 = _side(w2.shape[1], "weights_conv2")
        conv2 = w2.reshape(w2.shape[0], f2, f2, w2.shape[2], order="F").transpose(3, 0, 1, 2)
    else:
        raise UserError(f"weights_conv2 has shape {w2.shape}; expected n1 x n2 or n1 x f2^2 x n2")
    if w3.ndim == 3 and w3.shape[2] == 1:
        w3 = w3[:, :, 0]
    if w3.ndim != 2:
        raise UserError(f"weights_conv3 has shape {w3.shape}; expected n2 x f3^2 (one output channel)")
    conv3 = _matlab_filters(w3.T, _side(w3.shape[1], "weights_conv3")).transpose(2, 0, 1)[None]
    biases = [np.asarray(variables[f"biases_conv{i}"], dtype=np.float64).ravel(order="F") for i in (1, 2, 3)]
    return list(zip((conv1, conv2, conv3), biases))


def _from_matconvnet(layers: Sequence[Any]) -> list[_Layer]:
    """The three ``conv`` layers of a SimpleNN net; filters H x W x Cin x Cout -> torch."""
    convs = []
    for layer in layers:
        if layer.type == "conv":
            stride = layer.attrs.get("stride")
            stride = np.atleast_1d(1 if stride is None else stride)
            if np.any(stride != 1):
                raise UserError(f"MatConvNet layer {layer.name} has stride {stride.tolist()}; SRCNN's are 1")
            filters = layer.weights[0]
            bias = layer.weights[1].ravel(order="F") if len(layer.weights) > 1 else np.zeros(filters.shape[3])
            convs.append((filters.transpose(3, 2, 0, 1), bias))
        elif layer.type not in _SKIPPED_LAYERS:
            raise UserError(
                f"MatConvNet layer {layer.name} of type {layer.type!r} is not part of SRCNN "
                f"(conv, relu and a loss only)"
            )
    if len(convs) != 3:
        raise UserError(f"SRCNN has 3 conv layers; this MatConvNet net has {len(convs)}")
    return convs


def _from_state_dict(state: Mapping[str, np.ndarray]) -> list[_Layer]:
    """The 4-D ``*.weight`` tensors in file order (= module order) with their biases."""
    weights = [k for k, v in state.items() if k.endswith("weight") and np.ndim(v) == 4]
    if len(weights) != 3:
        raise UserError(
            f"SRCNN has 3 conv layers; this state dict has {len(weights)} 4-D weights "
            f"({', '.join(weights) or 'none'}; keys: {', '.join(list(state)[:12])})"
        )
    layers = []
    for key in weights:
        weight = np.asarray(state[key])
        bias_key = key[: -len("weight")] + "bias"
        bias = np.asarray(state[bias_key]) if bias_key in state else np.zeros(weight.shape[0])
        layers.append((weight, bias.ravel()))
    return layers
