"""Network building blocks in plain PyTorch that learned methods share: fastai v1's layers
(spectrally and weight-normalised convolutions, self-attention, PixelShuffle_ICNR upsampling
with its blur, the residual block) and torchvision's ResNet body (basic and bottleneck blocks).

Attribute names follow the originals, so released weights (e.g. DeOldify's generators, built
with fastai's ``DynamicUnet`` on a torchvision ResNet) load under their own state-dict keys.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- normalised convolutions


class SpectralConv(nn.Module):
    """A convolution whose weight is divided by its largest singular value (Miyato et al. 2018),
    estimated by one power iteration per training step; keys ``weight_orig``, ``weight_u``,
    ``weight_v`` (and ``bias``) as ``torch.nn.utils.spectral_norm`` names them."""

    def __init__(self, c_in: int, c_out: int, kernel: int, *, bias: bool, dims: int = 2, padding: int = 0) -> None:
        super().__init__()
        shape = (c_out, c_in) + (kernel,) * dims
        self.weight_orig = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight_orig, nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.register_buffer("weight_u", F.normalize(torch.randn(c_out), dim=0, eps=1e-12))
        self.register_buffer("weight_v", F.normalize(torch.randn(c_in * kernel**dims), dim=0, eps=1e-12))
        self.dims, self.padding = dims, padding

    def weight(self) -> torch.Tensor:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        if self.training:
            with torch.no_grad():
                v = F.normalize(matrix.t() @ self.weight_u, dim=0, eps=1e-12)
                u = F.normalize(matrix @ v, dim=0, eps=1e-12)
                self.weight_u.copy_(u)
                self.weight_v.copy_(v)
        sigma = torch.dot(self.weight_u, matrix @ self.weight_v)
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self.dims == 2 else F.conv1d
        return conv(x, self.weight(), self.bias, padding=self.padding)


class WeightNormConv(nn.Module):
    """A 1x1 convolution with ``weight = g * v / |v|`` per output channel (Salimans and Kingma
    2016); keys ``weight_g``, ``weight_v``, ``bias`` as ``torch.nn.utils.weight_norm`` names them."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(c_out, c_in, 1, 1))
        nn.init.kaiming_normal_(self.weight_v)
        self.weight_g = nn.Parameter(self.weight_v.detach().flatten(1).norm(dim=1).view(c_out, 1, 1, 1).clone())
        self.bias = nn.Parameter(torch.zeros(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.weight_v
        weight = self.weight_g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        return F.conv2d(x, weight, self.bias)


def conv_block(
    c_in: int, c_out: int, kernel: int = 3, *, activ: bool = True, bn: bool = True, attention: bool = False
) -> nn.Sequential:
    """DeOldify's ``custom_conv_layer``: spectral conv (bias only without bn), ReLU, batch norm, self-attention."""
    layers: list[nn.Module] = [SpectralConv(c_in, c_out, kernel, bias=not bn, padding=(kernel - 1) // 2)]
    if activ:
        layers.append(nn.ReLU(inplace=True))
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    if attention:
        layers.append(SelfAttention(c_out))
    return nn.Sequential(*layers)


class SelfAttention(nn.Module):
    """fastai's ``SelfAttention`` (Zhang et al., SAGAN): spectral 1x1 query/key (C/8) and value (C), gamma."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = SpectralConv(channels, channels // 8, 1, bias=False, dims=1)
        self.key = SpectralConv(channels, channels // 8, 1, bias=False, dims=1)
        self.value = SpectralConv(channels, channels, 1, bias=False, dims=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape
        flat = x.reshape(size[0], size[1], -1)
        f, g, h = self.query(flat), self.key(flat), self.value(flat)
        beta = torch.softmax(torch.bmm(f.permute(0, 2, 1), g), dim=1)
        return (self.gamma * torch.bmm(h, beta) + flat).reshape(size)


class _Blur(nn.Module):
    """Replicate one row and column at the top left, then a 2x2 mean: smooths the shuffle's checkerboard."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class ShuffleUp(nn.Module):
    """DeOldify's ``CustomPixelShuffle_ICNR``: spectral 1x1 conv to 4 nf (+ batch norm), ReLU,
    pixel shuffle x2, blur (``conv.0``, ``conv.1``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = conv_block(c_in, c_out * 4, 1, activ=False, bn=True)
        self.blur = _Blur()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(F.pixel_shuffle(F.relu(self.conv(x)), 2))


class FinalShuffle(nn.Module):
    """fastai's plain ``PixelShuffle_ICNR`` (weight norm, with bias): back to full size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(WeightNormConv(channels, channels * 4))
        self.blur = _Blur()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blur(F.pixel_shuffle(F.relu(self.conv(x)), 2))


class ResBlock(nn.Module):
    """fastai's ``res_block`` with spectral norm: ``x + relu(conv(relu(conv(x))))`` (``layers.0``, ``layers.1``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                nn.Sequential(SpectralConv(channels, channels, 3, bias=True, padding=1), nn.ReLU(inplace=True))
                for _ in range(2)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layers[1](self.layers[0](x))


# ---------------------------------------------------------------- the ResNet body (torchvision's layout)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, planes * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def resnet_body(block: str, depths: Sequence[int], widths: Sequence[int]) -> nn.Sequential:
    """torchvision's ResNet without pool and classifier: conv1, bn1, relu, maxpool, layer1-4."""
    kind = BLOCKS[block]
    stem = widths[0]
    layers: list[nn.Module] = [
        nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(stem),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    c_in = stem
    for i, (depth, planes) in enumerate(zip(depths, widths)):
        stage = []
        for b in range(depth):
            stage.append(kind(c_in, planes, stride=2 if (b == 0 and i > 0) else 1))
            c_in = planes * kind.expansion
        layers.append(nn.Sequential(*stage))
    return nn.Sequential(*layers)
