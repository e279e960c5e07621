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

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "DEEPUPE_WEIGHTS",
    "DeepUPELight",
    "SIDUNet",
    "colour_angle_loss",
    "deepupe_loss_terms",
    "deepupe_objective",
    "sid_unet_parameter_count",
    "smoothness_loss",
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
