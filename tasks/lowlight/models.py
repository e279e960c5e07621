"""The low-light networks: the SID U-Net and a light DeepUPE-style illumination network.

:class:`SIDUNet` -- Chen et al., "Learning to See in the Dark", CVPR 2018
    (``cchen156/Learning-to-See-in-the-Dark``, ``train_Sony.py``). Input: the packed
    Bayer raw (4 planes R, G, B, G2, black-subtracted, divided by ``white - black``,
    times the exposure ratio, clipped at 1), ``N x 4 x h x w``. Output: sRGB,
    ``N x 3 x 2h x 2w``. A U-Net with ``depth`` levels of ``base * 2**l`` channels
    (SID: 32-64-128-256-512): two 3x3 convolutions + LeakyReLU(0.2) per level, 2x2
    max-pooling down, a 2x2 stride-2 transposed convolution up, concatenated *before*
    the skip (``[up, skip]``), a 1x1 convolution to 12 channels and depth-to-space by 2
    (``pixel_shuffle``). The input is padded inside ``forward`` (reflection, right and
    bottom) to a multiple of ``2**(depth - 1)`` and the output cropped back to
    ``2h x 2w``, so any size works (odd ones too) and tiles may be any size.

    State-dict keys (those of the common PyTorch port, e.g. lavi135246's ``SeeInDark``,
    whose state dicts load as they are): ``conv{L}_1``, ``conv{L}_2`` for level
    ``L = 1 .. 2*depth - 1`` (the ``depth`` down levels, then the up levels),
    ``upv{L}`` (``L = depth + 1 .. 2*depth - 1``, the transposed convolution in front of
    level L) and ``conv{2*depth}_1`` (the 1x1 output convolution): ``conv1_1 ... conv5_2,
    upv6, conv6_1, ..., upv9, conv9_2, conv10_1`` for SID. ``up_bias``: the official
    TensorFlow code's transposed convolutions have no bias; PyTorch ports usually add one.

:class:`DeepUPELight` -- after Wang et al., "Underexposed Photo Enhancement using Deep
    Illumination Estimation", CVPR 2019: the network predicts an image-to-illumination
    map ``S`` (per pixel and channel) from the underexposed sRGB image ``I`` and the
    result is ``F = I / S`` (Retinex: ``I = S * F``). Lighter than the paper: no VGG
    encoder and no bilateral grid. A strided encoder (4 stride-2 3x3 convolutions, 1/16
    resolution) gives local features (two 3x3 convolutions) and global features
    (average pool + two fully connected layers), added as in HDRNet/DeepUPE's fusion
    and reduced to ``features / 2`` channels by a 1x1 convolution; these are upsampled
    bilinearly to full resolution (the smooth, low-resolution part the bilateral grid
    provides in the paper), concatenated with ``I`` and a full-resolution 3x3 feature of
    ``I``, and three 1x1 convolutions give ``S`` per pixel (the role of the grid's
    per-pixel slicing with the guide image). ``S = eps + (1 - eps) * sigmoid(z)``,
    floor ``eps = 1e-3``, then ``S <- max(S, I)`` (the paper's constraint ``I <= S <= 1``),
    so ``F = I / S`` lies in [0, 1]; the max is applied with a straight-through gradient
    (forward ``max(S, I)``, backward as ``S``) so clipped pixels still teach the network.
    The paper's loss is :func:`deepupe_loss_terms`, trained through :func:`deepupe_objective`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorebench import UserError

__all__ = [
    "DEEPUPE_WEIGHTS",
    "DeepUPELight",
    "SIDUNet",
    "colour_angle_loss",
    "deepupe_loss_terms",
    "deepupe_objective",
    "sid_from_official",
    "sid_unet_parameter_count",
    "smoothness_loss",
    "tf_depth_to_space_permutation",
]

LRELU_SLOPE = 0.2  # SID's lrelu: max(0.2 x, x)


# ================================================================ SID U-Net


class SIDUNet(nn.Module):
    """The SID U-Net; ``forward``: ``N x in x h x w`` -> ``N x out x 2h x 2w``.

    Example
    -------
    >>> net = SIDUNet(base=8, depth=3)
    >>> net(torch.zeros(1, 4, 7, 5)).shape
    torch.Size([1, 3, 14, 10])
    """

    def __init__(
        self,
        base: int = 32,
        depth: int = 5,
        in_channels: int = 4,
        out_channels: int = 3,
        block: int = 2,
        up_bias: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1 or base < 1 or block < 1:
            raise ValueError(f"SIDUNet needs depth >= 1, base >= 1, block >= 1, got {depth}, {base}, {block}")
        self.config: dict[str, Any] = {
            "base": base,
            "depth": depth,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "block": block,
            "up_bias": up_bias,
        }
        self.depth, self.block = depth, block
        widths = [base * 2**i for i in range(depth)]
        previous = in_channels
        for level, width in enumerate(widths, start=1):  # down levels 1 .. depth
            self.add_module(f"conv{level}_1", nn.Conv2d(previous, width, 3, padding=1))
            self.add_module(f"conv{level}_2", nn.Conv2d(width, width, 3, padding=1))
            previous = width
        for level in range(depth + 1, 2 * depth):  # up levels depth+1 .. 2 depth - 1
            width = widths[2 * depth - level - 1]
            self.add_module(f"upv{level}", nn.ConvTranspose2d(previous, width, 2, stride=2, bias=up_bias))
            self.add_module(f"conv{level}_1", nn.Conv2d(2 * width, width, 3, padding=1))
            self.add_module(f"conv{level}_2", nn.Conv2d(width, width, 3, padding=1))
            previous = width
        self.add_module(f"conv{2 * depth}_1", nn.Conv2d(previous, out_channels * block * block, 1))
        self._initialise()

    def _initialise(self) -> None:
        """He initialisation for LeakyReLU(0.2), zero biases (SID's TF code: Xavier, and
        N(0, 0.02) for the transposed convolutions; either trains)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, a=LRELU_SLOPE, nonlinearity="leaky_relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this (``2**(depth - 1)``)."""
        return 2 ** (self.depth - 1)

    def _level(self, x: torch.Tensor, level: int) -> torch.Tensor:
        x = F.leaky_relu(getattr(self, f"conv{level}_1")(x), LRELU_SLOPE)
        return F.leaky_relu(getattr(self, f"conv{level}_2")(x), LRELU_SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:  # reflection needs pad < side; tiny inputs repeat their edge instead
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        skips = []
        for level in range(1, self.depth + 1):
            x = self._level(x, level)
            if level < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for level in range(self.depth + 1, 2 * self.depth):
            x = getattr(self, f"upv{level}")(x)
            x = self._level(torch.cat([x, skips.pop()], dim=1), level)
        x = getattr(self, f"conv{2 * self.depth}_1")(x)
        x = F.pixel_shuffle(x, self.block)
        return x[..., : h * self.block, : w * self.block]


def sid_unet_parameter_count(
    base: int = 32, depth: int = 5, in_channels: int = 4, out_channels: int = 3, block: int = 2, up_bias: bool = True
) -> int:
    """Learned parameters of :class:`SIDUNet` (the official SID network: ``up_bias=False``)."""
    widths = [base * 2**i for i in range(depth)]
    total, previous = 0, in_channels
    for width in widths:
        total += 9 * previous * width + width + 9 * width * width + width
        previous = width
    for width in reversed(widths[:-1]):
        total += 4 * previous * width + (width if up_bias else 0)
        total += 9 * 2 * width * width + width + 9 * width * width + width
        previous = width
    outputs = out_channels * block * block
    return total + previous * outputs + outputs


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
DEEPUPE_WEIGHTS = {"reconstruction": 1.0, "smoothness": 5e-4, "colour": 5e-3}
SMOOTH_THETA, SMOOTH_EPS = 1.2, 1e-4  # the weight (|d log L|^theta + eps)^-1, as in the authors' code
LOG_OFFSET = 1e-4  # log(L + 1e-4), L the input's luminance (the authors' code)
LUMA = (0.2989, 0.587, 0.114)  # tf.image.rgb_to_grayscale, which the authors' code uses


def smoothness_loss(
    s: torch.Tensor, image: torch.Tensor, theta: float = SMOOTH_THETA, eps: float = SMOOTH_EPS
) -> torch.Tensor:
    """The illumination smoothness prior: ``mean_p,c w_x (d_x S)^2 + w_y (d_y S)^2``, halved.

    ``w = (|d L|^theta + eps)^-1`` with ``L = log(luminance(I) + 1e-4)``, one weight per
    pixel for all channels (as the authors' code): ``S`` may change where the input has
    edges, and must be flat where the input is flat. Forward differences.
    """
    luma = sum(w * image[:, c : c + 1] for c, w in enumerate(LUMA)) if image.shape[1] == 3 else image
    log_i = torch.log(luma + LOG_OFFSET)
    wx = 1.0 / ((log_i[..., :, 1:] - log_i[..., :, :-1]).abs() ** theta + eps)
    wy = 1.0 / ((log_i[..., 1:, :] - log_i[..., :-1, :]).abs() ** theta + eps)
    dx = s[..., :, 1:] - s[..., :, :-1]
    dy = s[..., 1:, :] - s[..., :-1, :]
    return 0.5 * ((wx * dx * dx).mean() + (wy * dy * dy).mean())


def colour_angle_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The paper's colour loss: mean angle (radians) between RGB vectors, ``N x 3 x H x W``.

    ``atan2(|a x b|, a . b)``: exact for small angles (where ``acos`` loses precision)
    and with a bounded gradient; a black vector gives angle 0.
    """
    dot = (output * target).sum(dim=1)
    cross = torch.linalg.cross(output, target, dim=1)
    return torch.atan2(torch.sqrt((cross * cross).sum(dim=1) + 1e-12), dot).mean()


def deepupe_loss_terms(
    image: torch.Tensor, s: torch.Tensor, output: torch.Tensor, target: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The three terms of the paper's loss, as means over the batch.

    ``reconstruction``: ``mean (I / S - target)^2`` (the authors: "divide the input by the
    illumination map, then an L2 loss against the ground truth"); ``smoothness``:
    :func:`smoothness_loss`; ``colour``: :func:`colour_angle_loss` (the paper's angle;
    the authors' code uses ``1 - cos``, which has the same minimum).
    """
    return {
        "reconstruction": ((output - target) ** 2).mean(),
        "smoothness": smoothness_loss(s, image),
        "colour": colour_angle_loss(output, target),
    }


def deepupe_objective(network: DeepUPELight, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The training objective (a :class:`restorebench.neural.training.Recipe` ``objective``): the
    terms of :func:`deepupe_loss_terms` weighted by :data:`DEEPUPE_WEIGHTS`, and the terms."""
    s = network.illumination(x)
    terms = deepupe_loss_terms(x, s, network.apply_illumination(x, s), y)
    total = sum(DEEPUPE_WEIGHTS[k] * v for k, v in terms.items())
    return total, {k: float(v.detach()) for k, v in terms.items()}


class DeepUPELight(nn.Module):
    """A light DeepUPE: ``F = I / S`` with ``S`` predicted from ``I`` (module docstring).

    ``forward(x)``: ``x`` is ``N x 3 x H x W`` (the sRGB input in [0, 1]) and the result
    ``I / S``, same size (any size; the encoder pads by its strides). ``illumination(I)``
    gives ``S`` (``eps <= S <= 1``, before the ``S >= I`` clamp). Trained with
    :func:`deepupe_objective`, which needs ``S`` as well as the output.
    """

    def __init__(self, features: int = 32, eps: float = 1e-3) -> None:
        super().__init__()
        if features < 2 or features % 2:
            raise ValueError(f"features must be an even number >= 2, got {features}")
        if not 0 < eps < 1:
            raise ValueError(f"eps must be in (0, 1), got {eps}")
        self.config: dict[str, Any] = {"features": features, "eps": eps}
        f, h = features, features // 2
        self.eps = eps
        self.down = nn.ModuleList(
            [
                nn.Conv2d(3, h, 3, stride=2, padding=1),
                nn.Conv2d(h, f, 3, stride=2, padding=1),
                nn.Conv2d(f, 2 * f, 3, stride=2, padding=1),
                nn.Conv2d(2 * f, 2 * f, 3, stride=2, padding=1),
            ]
        )
        self.local = nn.Sequential(
            nn.Conv2d(2 * f, 2 * f, 3, padding=1), nn.LeakyReLU(LRELU_SLOPE), nn.Conv2d(2 * f, 2 * f, 3, padding=1)
        )
        self.glob = nn.Sequential(nn.Linear(2 * f, 2 * f), nn.LeakyReLU(LRELU_SLOPE), nn.Linear(2 * f, 2 * f))
        self.reduce = nn.Conv2d(2 * f, h, 1)  # low-resolution "grid" features, upsampled
        self.guide = nn.Conv2d(3, h, 3, padding=1)
        self.head = nn.Sequential(
            nn.Conv2d(2 * h + 3, h, 1),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Conv2d(h, h, 1),
            nn.LeakyReLU(LRELU_SLOPE),
            nn.Conv2d(h, 3, 1),
        )

    def illumination(self, image: torch.Tensor) -> torch.Tensor:
        """``S`` in ``[eps, 1]`` for the input ``I`` (``N x 3 x H x W``), before the ``S >= I`` clamp."""
        x = image
        for conv in self.down:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
        local = self.local(x)
        glob = self.glob(x.mean(dim=(2, 3)))
        fused = self.reduce(F.leaky_relu(local + glob[:, :, None, None], LRELU_SLOPE))
        fused = F.interpolate(fused, size=image.shape[-2:], mode="bilinear", align_corners=False)
        guide = F.leaky_relu(self.guide(image), LRELU_SLOPE)
        z = self.head(torch.cat([fused, image, guide], dim=1))
        return self.eps + (1.0 - self.eps) * torch.sigmoid(z)

    @staticmethod
    def apply_illumination(image: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """``I / max(S, I)`` in [0, 1]; the max passes its gradient to ``S`` (straight through)."""
        s_used = s + (torch.maximum(s, image) - s).detach()
        return (image / s_used).clamp(0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.apply_illumination(x, self.illumination(x))
