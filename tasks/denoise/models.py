"""DnCNN (Zhang et al., TIP 2017): a residual denoising CNN.

The network predicts the noise ``v = R(y)`` of a noisy image ``y``; the module returns
the clean estimate ``y - R(y)`` (residual learning). Layout, for ``depth = D``:

==========================  =====================================================
index in ``dncnn``          layer
==========================  =====================================================
0, 1                        Conv2d(channels -> features, 3x3, bias) + ReLU
3k - 1, 3k, 3k + 1          Conv2d(features -> features, 3x3, no bias) +
(k = 1 .. D - 2)            BatchNorm2d(features, eps 1e-4) + ReLU
3D - 4                      Conv2d(features -> channels, 3x3, no bias)
==========================  =====================================================

These are the names of the official PyTorch port (``cszn/DnCNN``,
``TrainingCodes/dncnn_pytorch``): ``dncnn.0.weight``, ``dncnn.0.bias``,
``dncnn.2.weight``, ``dncnn.3.weight/bias/running_mean/running_var``, ...,
``dncnn.47.weight`` for the 17-layer model, so its state dicts load directly. Without
batch normalisation (``batch_norm=False``, BN folded into the convolutions as in KAIR's
released ``dncnn_*.pth``) every layer is ``Conv2d(bias) + ReLU``: indices ``0, 2, 4, ...,
2D - 2``. ``last_bias=True`` gives the last convolution a bias (MatConvNet releases
carry one; it is usually zero and then dropped by the converter).

DnCNN-S (17 layers, 64 features, one sigma), DnCNN-B / CDnCNN-B (20 layers, blind) and
the lighter variants trained here are all this class with a different config.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["BN_EPS", "ChannelAdaptingDnCNN", "DnCNN", "convert_matconvnet", "convert_state_dict"]

BN_EPS = 1e-4
"""Batch-norm epsilon of the official PyTorch port (and MatConvNet's ``vl_nnbnorm`` default)."""


class DnCNN(nn.Module):
    """DnCNN: ``forward(x) = x - dncnn(x)``; inputs are noisy images in [0, 1] (NCHW).

    Example
    -------
    >>> net = DnCNN(depth=5, features=16, channels=1)
    >>> net(torch.zeros(1, 1, 8, 8)).shape
    torch.Size([1, 1, 8, 8])
    """

    def __init__(
        self, depth: int = 17, features: int = 64, channels: int = 1, batch_norm: bool = True, last_bias: bool = False
    ) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN depth must be at least 2, got {depth}")
        self.config: dict[str, Any] = {
            "depth": depth,
            "features": features,
            "channels": channels,
            "batch_norm": batch_norm,
            "last_bias": last_bias,
        }
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3, padding=1, bias=True), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers.append(nn.Conv2d(features, features, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(features, eps=BN_EPS))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(features, channels, 3, padding=1, bias=last_bias or not batch_norm))
        self.dncnn = nn.Sequential(*layers)
        self._initialise()

    def _initialise(self) -> None:
        """Orthogonal convolutions and unit BN gains, as the official PyTorch port does, except
        that the last convolution starts at zero: the network starts as the identity (noise
        estimate 0), which shortens the first phase of a short training run."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.dncnn[-1].weight)

    train_bfloat16: bool = False
    """Run the convolutions in bfloat16 autocast in training mode (not in eval mode, not in
    the config or the weights): about 2x faster training on CPUs with native bf16."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.train_bfloat16:
            with torch.autocast(x.device.type, dtype=torch.bfloat16):
                noise = self.dncnn(x)
            return x - noise.float()  # the residual subtraction stays in float32
        return x - self.dncnn(x)


class ChannelAdaptingDnCNN(DnCNN):
    """:class:`DnCNN` that also takes inputs of the other channel count (same weights and keys).

    A 1-channel input through a 3-channel model goes in as three equal channels and the
    three outputs are averaged; a 3-channel input through a 1-channel model is denoised
    channel by channel (the channels are folded into the batch).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = self.config["channels"]
        if x.shape[1] == channels:
            return super().forward(x)
        if channels == 1:
            n, c, h, w = x.shape
            return super().forward(x.reshape(n * c, 1, h, w)).reshape(n, c, h, w)
        if x.shape[1] == 1:
            return super().forward(x.expand(-1, channels, -1, -1)).mean(dim=1, keepdim=True)
        raise ValueError(f"a {channels}-channel DnCNN cannot take a {x.shape[1]}-channel input")


# ---------------------------------------------------------------- released weights

_PREFIXES = ("dncnn.", "model.")  # the official PyTorch port; KAIR's network_dncnn.DnCNN
_MATCONVNET_SKIPPED = ("loss", "euclideanloss", "pdist", "dropout")  # training-only layers


@dataclass
class _Conv:
    weight: np.ndarray  # (Cout, Cin, 3, 3)
    bias: np.ndarray | None


@dataclass
class _BNorm:
    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    var: np.ndarray  # torch's running_var, for eps BN_EPS


def convert_state_dict(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A released PyTorch DnCNN state dict -> ``(state_dict, config)`` of :class:`DnCNN`.

    Accepts the official port's ``dncnn.N.*`` keys and KAIR's ``model.N.*`` (both its
    ``act_mode='BR'`` layout, conv with bias + BN + ReLU, and the BN-free ``'R'`` layout
    of its released ``dncnn_15/25/50.pth``, ``dncnn_gray_blind.pth``,
    ``dncnn_color_blind.pth``). Depth, features, channels and batch norm are read from the
    shapes; a bias before a batch norm is folded into its ``running_mean``.
    """
    from restorebench import UserError

    groups: dict[int, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        prefix = next((p for p in _PREFIXES if name.startswith(p)), "")
        index, _, param = name[len(prefix) :].partition(".")
        if not index.isdigit() or not param:
            raise UserError(f"{key!r} is not a DnCNN weight (expected dncnn.N.weight or model.N.weight)")
        groups.setdefault(int(index), {})[param] = np.asarray(value, dtype=np.float32)
    layers: list[_Conv | _BNorm] = []
    for index in sorted(groups):
        params = groups[index]
        if "running_mean" in params:
            if not {"weight", "bias", "running_var"} <= set(params):
                raise UserError(f"batch norm {index} lacks weight, bias or running_var")
            layers.append(_BNorm(params["weight"], params["bias"], params["running_mean"], params["running_var"]))
        elif params.get("weight", np.zeros(0)).ndim == 4:
            layers.append(_Conv(params["weight"], params.get("bias")))
        else:
            raise UserError(f"layer {index} of the state dict is neither a convolution nor a batch norm")
    return _assemble(layers)


def convert_matconvnet(layers: Sequence[Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The official MatConvNet DnCNN (SimpleNN ``net.layers``) -> ``(state_dict, config)``.

    ``conv`` filters are ``H x W x Cin x Cout`` (transposed to ``Cout x Cin x H x W``);
    ``bnorm`` moments are ``[mean, sigma]`` with ``sigma = sqrt(var + epsilon)``, the
    epsilon already inside (``vl_nnbnorm`` given moments adds none), so
    ``running_var = sigma^2 - 1e-4`` for torch's eps 1e-4 (a channel with sigma^2 < eps
    keeps ``running_var = 0`` and its gain scaled by ``sqrt(eps) / sigma``: same output).
    The official models take the noisy image in [0, 1] and output the residual (the
    demo computes ``output = input - res(end).x``), as :class:`DnCNN` does; the released
    ``model/*.mat`` files have batch norm merged into the convolutions (conv + ReLU only).
    Trailing training layers (``loss``) are dropped.
    """
    from restorebench import UserError

    found: list[_Conv | _BNorm] = []
    for layer in layers:
        kind = layer.type.lower()
        if kind == "conv":
            _check_conv_attrs(layer)
            filters, biases = layer.weights[0], (layer.weights[1] if len(layer.weights) > 1 else None)
            bias = None if biases is None or biases.size == 0 else biases.reshape(-1)
            found.append(_Conv(np.ascontiguousarray(np.transpose(filters, (3, 2, 0, 1))), bias))
        elif kind == "bnorm":
            gain, beta, moments = (w.reshape(w.shape[0], -1) if w.ndim > 1 else w for w in layer.weights[:3])
            moments = moments.T if moments.shape[0] == 2 and moments.shape[1] != 2 else moments
            found.append(_bnorm_from_moments(gain.reshape(-1), beta.reshape(-1), moments[:, 0], moments[:, 1]))
        elif kind == "relu":
            if layer.attrs.get("leak") not in (None, 0, 0.0):
                raise UserError(f"layer {layer.name}: a leaky ReLU does not fit DnCNN")
        elif kind not in _MATCONVNET_SKIPPED:
            raise UserError(f"layer {layer.name} of type {layer.type!r} does not fit DnCNN (conv, bnorm, relu)")
    return _assemble(found)


def _check_conv_attrs(layer: Any) -> None:
    from restorebench import UserError

    for attr, want in (("pad", 1), ("stride", 1), ("dilate", 1)):
        value = layer.attrs.get(attr)
        if value is not None and not np.all(np.asarray(value) == want):
            raise UserError(f"layer {layer.name}: {attr} {value} does not fit DnCNN ({attr} {want})")


def _bnorm_from_moments(gain: np.ndarray, beta: np.ndarray, mean: np.ndarray, sigma: np.ndarray) -> _BNorm:
    sigma = np.maximum(sigma.astype(np.float64), 1e-12)
    var = sigma**2 - BN_EPS
    small = var < 0
    scale = np.where(small, np.sqrt(BN_EPS) / sigma, 1.0)
    return _BNorm((gain * scale).astype(np.float32), beta, mean, np.maximum(var, 0).astype(np.float32))


def _structure(layers: Sequence[_Conv | _BNorm]) -> tuple[list[_Conv], dict[int, _BNorm]]:
    """The convolutions, and the batch norm after each middle one, checked against DnCNN's shape."""
    from restorebench import UserError

    convs = [layer for layer in layers if isinstance(layer, _Conv)]
    if len(convs) < 2:
        raise UserError(f"a DnCNN has at least 2 convolutions, found {len(convs)}")
    after: dict[int, _BNorm] = {}  # conv position -> the batch norm right after it
    position = -1
    for layer in layers:
        if isinstance(layer, _Conv):
            position += 1
        elif position < 0 or position in after:
            raise UserError("a batch norm must follow a convolution")
        else:
            after[position] = layer
    depth = len(convs)
    if set(after) - set(range(1, depth - 1)):
        raise UserError("only the middle convolutions of a DnCNN may have a batch norm")
    if after and len(after) != depth - 2:
        raise UserError(f"{len(after)} of the {depth - 2} middle convolutions have a batch norm; DnCNN has all or none")
    features, channels = convs[0].weight.shape[:2]
    for i, conv in enumerate(convs):
        cin = channels if i == 0 else features
        cout = channels if i == depth - 1 else features
        if conv.weight.shape != (cout, cin, 3, 3):
            raise UserError(
                f"convolution {i + 1} has shape {conv.weight.shape}, expected {(cout, cin, 3, 3)} "
                f"for a DnCNN of {features} features and {channels} channels"
            )
    return convs, after


def _assemble(layers: Sequence[_Conv | _BNorm]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Our state dict and config from the ordered convolutions and batch norms of a DnCNN."""
    convs, after = _structure(layers)
    depth, batch_norm = len(convs), bool(after)
    features, channels = convs[0].weight.shape[:2]
    state: dict[str, np.ndarray] = {}

    def bias_of(conv: _Conv, n: int) -> np.ndarray:
        return np.zeros(n, np.float32) if conv.bias is None else conv.bias.reshape(-1)

    state["dncnn.0.weight"], state["dncnn.0.bias"] = convs[0].weight, bias_of(convs[0], features)
    step = 3 if batch_norm else 2
    for i in range(1, depth - 1):
        conv, at = convs[i], step * i - (1 if batch_norm else 0)
        state[f"dncnn.{at}.weight"] = conv.weight
        if batch_norm:
            bn = after[i]
            mean = bn.mean - bias_of(conv, features)  # BN(Wx + b) with mean m == BN(Wx) with mean m - b
            state.update(
                {
                    f"dncnn.{at + 1}.weight": bn.weight,
                    f"dncnn.{at + 1}.bias": bn.bias,
                    f"dncnn.{at + 1}.running_mean": mean,
                    f"dncnn.{at + 1}.running_var": bn.var,
                    f"dncnn.{at + 1}.num_batches_tracked": np.zeros((), np.int64),
                }
            )
        else:
            state[f"dncnn.{at}.bias"] = bias_of(conv, features)
    last, at = convs[-1], step * (depth - 1) - (1 if batch_norm else 0)
    state[f"dncnn.{at}.weight"] = last.weight
    last_bias = not batch_norm or (last.bias is not None and bool(np.any(last.bias != 0)))
    if last_bias:
        state[f"dncnn.{at}.bias"] = bias_of(last, channels)
    config = {"depth": depth, "features": int(features), "channels": int(channels), "batch_norm": batch_norm}
    if batch_norm and last_bias:
        config["last_bias"] = True
    # np.array, not np.ascontiguousarray: that makes a 0-d array 1-d, and num_batches_tracked
    # would be stored as (1,) where the network holds a scalar
    return {k: torch.from_numpy(np.array(v, order="C")) for k, v in state.items()}, config
