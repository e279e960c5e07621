"""The colorization networks: ECCV16 (Zhang, Isola, Efros 2016) with its training loss, DeOldify's
generators (J. Antic), and the feature network of DeOldify light's recipe.

:class:`ECCV16` has the layout of the authors' PyTorch release (``colorizers/eccv16.py``):
blocks ``model1`` ... ``model8`` of 3x3 convolutions with ReLU and a batch norm closing
blocks 1-7 (strides 2 at the ends of blocks 1, 2 and 3; dilation 2 in blocks 5 and 6;
block 8 opens with a 4x4 stride-2 transposed convolution and ends with a 1x1
convolution to the 313 bin logits at a quarter of the input's resolution), and
``model_out``, the fixed 1x1 convolution that turns a distribution over the bins into ab
(its weights are the bin centres / 110). Keys: ``model1.0.weight`` ... ``model8.6.bias``,
``model_out.weight``. ``widths`` scales the channels: the release's are
(64, 128, 256, 512, 512, 512, 512, 256).

``forward(x)`` takes ``N x 1 x H x W`` lightness in [0, 1] (L / 100) and returns RGB in
[0, 1] at full size: the ab decoded (``decode``: mode, mean or annealed mean at
``temperature``), upsampled x4 bilinearly, joined with the input L. Any size, even one
smaller than the stride: the input is padded (edge pixels repeated) to a multiple of 8
and the ab cropped back.

:class:`DeOldifyGenerator` is DeOldify's generator as fastai v1's ``DynamicUnet`` builds it
(https://github.com/jantic/DeOldify): a ResNet body (torchvision's, without pool and
classifier), batch norm, ReLU, a middle pair of convolutions, four U-Net blocks fed by the
body's outputs at 1/16, 1/8, 1/4 and 1/2 (layer3, layer2, layer1 and the stem's ReLU), a
weight-normalised PixelShuffle_ICNR back to full size, the input concatenated (the final cross
connection), a residual block, a 1x1 convolution to 3 channels and ``sigmoid * 6 - 3`` (in
ImageNet-normalised units). Every decoder convolution is spectrally normalised; those with
``extra_bn`` are followed by batch norm. The U-Net block at 1/8 ends in self-attention.
``artistic``: ``DynamicUnetDeep`` on ResNet-34, ``nf_factor = 1.5``; ``stable``:
``DynamicUnetWide`` on ResNet-101. State-dict keys follow fastai's numbering (``layers.0.*``
the body, ``layers.1`` ... ``layers.11``) with PyTorch's spectral- and weight-norm names, so the
released generators load as saved. The blocks are shared: :mod:`restorebench.neural.blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from restorebench.neural.blocks import BLOCKS, FinalShuffle, ResBlock, ShuffleUp, conv_block, resnet_body
from restorebench.tasks.colorize.color import AB_NORM, ANNEALED_T, L_CENTRE, L_NORM, Q

RELEASE_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 256)
STRIDE = 8


def _block(convs: Sequence[tuple[int, int, int, int]], bn: bool) -> nn.Sequential:
    """(in, out, stride, dilation) 3x3 convolutions with ReLU, then a batch norm."""
    layers: list[nn.Module] = []
    for c_in, c_out, stride, dilation in convs:
        layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation), nn.ReLU(True)]
    if bn:
        layers.append(nn.BatchNorm2d(convs[-1][1]))
    return nn.Sequential(*layers)


class ECCV16(nn.Module):
    """The ECCV16 network; see the module docstring."""

    def __init__(self, widths: Sequence[int] = RELEASE_WIDTHS, bins: int = Q) -> None:
        super().__init__()
        w1, w2, w3, w4, w5, w6, w7, w8 = widths
        self.config: dict[str, Any] = {"widths": list(widths), "bins": bins}
        self.model1 = _block([(1, w1, 1, 1), (w1, w1, 2, 1)], bn=True)
        self.model2 = _block([(w1, w2, 1, 1), (w2, w2, 2, 1)], bn=True)
        self.model3 = _block([(w2, w3, 1, 1), (w3, w3, 1, 1), (w3, w3, 2, 1)], bn=True)
        self.model4 = _block([(w3, w4, 1, 1), (w4, w4, 1, 1), (w4, w4, 1, 1)], bn=True)
        self.model5 = _block([(w4, w5, 1, 2), (w5, w5, 1, 2), (w5, w5, 1, 2)], bn=True)
        self.model6 = _block([(w5, w6, 1, 2), (w6, w6, 1, 2), (w6, w6, 1, 2)], bn=True)
        self.model7 = _block([(w6, w7, 1, 1), (w7, w7, 1, 1), (w7, w7, 1, 1)], bn=True)
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(w7, w8, 4, stride=2, padding=1),
            nn.ReLU(True),
            nn.Conv2d(w8, w8, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(w8, w8, 3, padding=1),
            nn.ReLU(True),
            nn.Conv2d(w8, bins, 1),
        )
        self.model_out = nn.Conv2d(bins, 2, 1, bias=False)
        self.model_out.weight.requires_grad_(False)
        self.decode = "annealed"
        self.temperature = ANNEALED_T
        if bins == Q:
            from restorebench.tasks.colorize.color import ab_bins

            centres = torch.from_numpy(ab_bins()).float().T / AB_NORM  # 2 x 313
            with torch.no_grad():
                self.model_out.weight.copy_(centres[:, :, None, None])

    def logits(self, lightness: torch.Tensor) -> torch.Tensor:
        """``N x 1 x H x W`` (L / 100, H and W multiples of 8) -> ``N x Q x H/4 x W/4`` bin logits."""
        x = (lightness * 100.0 - L_CENTRE) / L_NORM
        for block in (
            self.model1,
            self.model2,
            self.model3,
            self.model4,
            self.model5,
            self.model6,
            self.model7,
            self.model8,
        ):
            x = block(x)
        return x

    def ab(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits -> ab (``N x 2 x h x w``, ab units) by ``self.decode`` at ``self.temperature``."""
        if self.decode == "mode":
            hot = F.one_hot(logits.argmax(1), logits.shape[1]).permute(0, 3, 1, 2).to(logits.dtype)
            return self.model_out(hot) * AB_NORM
        t = self.temperature if self.decode == "annealed" else 1.0
        return self.model_out(torch.softmax(logits / t, dim=1)) * AB_NORM

    def forward(self, lightness: torch.Tensor) -> torch.Tensor:
        h, w = lightness.shape[-2:]
        ph, pw = (-h) % STRIDE, (-w) % STRIDE
        padded = F.pad(lightness, (0, pw, 0, ph), mode="replicate") if ph or pw else lightness
        ab = F.interpolate(self.ab(self.logits(padded)), scale_factor=4, mode="bilinear", align_corners=False)
        lab = torch.cat([lightness * 100.0, ab[..., :h, :w]], dim=1)
        return lab_to_rgb(lab)


# ---------------------------------------------------------------- colour conversion in torch (for training)

# Explicitly on the CPU: this module may first be imported while a network is built on
# torch's meta device (the checkpoint check), and a module constant must not land there.
_M_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]], device="cpu"
)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], device="cpu")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """``N x 3 x H x W`` sRGB in [0, 1] -> Lab (skimage's D65 formulas)."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,njhw->nihw", _M_RGB_TO_XYZ.to(rgb), linear) / _WHITE.to(rgb).view(1, 3, 1, 1)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], dim=1)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """``N x 3 x H x W`` Lab -> sRGB clipped to [0, 1] (skimage's D65 formulas)."""
    fy = (lab[:, 0] + 16) / 116
    fx, fz = fy + lab[:, 1] / 500, fy - lab[:, 2] / 200
    f = torch.stack([fx, fy, fz], dim=1)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / 7.787).clamp(min=0) * _WHITE.to(lab).view(1, 3, 1, 1)
    linear = torch.einsum("ij,njhw->nihw", torch.linalg.inv(_M_RGB_TO_XYZ).to(lab), xyz)
    srgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp(min=0) ** (1 / 2.4) - 0.055, 12.92 * linear)
    return srgb.clamp(0.0, 1.0)


def rebalanced_cross_entropy(
    logits: torch.Tensor, target_rgb: torch.Tensor, centres: torch.Tensor, weights: torch.Tensor, *, sigma: float = 5.0
) -> torch.Tensor:
    """The paper's loss: cross-entropy with the soft-encoded target (5 nearest bins, Gaussian
    sigma 5) of the true ab at the logits' resolution, each pixel weighted by the
    rebalancing weight of its nearest bin; averaged over pixels."""
    ab = F.avg_pool2d(rgb_to_lab(target_rgb)[:, 1:], kernel_size=4)
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centres) ** 2
    near_d2, near = d2.topk(5, dim=1, largest=False)
    soft = torch.softmax(-near_d2 / (2 * sigma**2), dim=1)
    log_p = torch.log_softmax(logits.permute(0, 2, 3, 1).reshape(-1, centres.shape[0]), dim=1)
    ce = -(soft * log_p.gather(1, near)).sum(1)
    return (weights[near[:, 0]] * ce).mean()


# ---------------------------------------------------------------- DeOldify's generators


class UnetBlock(nn.Module):
    """One decoder step: upsample the path below, join the body's output of that scale (batch
    normed), then ``convs`` (DeOldify's UnetBlockDeep has two, UnetBlockWide one)."""

    def __init__(
        self, up_in: int, skip_in: int, up_out: int, convs: Sequence[tuple[int, int]], attention: bool
    ) -> None:
        super().__init__()
        self.shuf = ShuffleUp(up_in, up_out)
        self.bn = nn.BatchNorm2d(skip_in)
        names = ["conv"] if len(convs) == 1 else ["conv1", "conv2"]
        for i, (name, (c_in, c_out)) in enumerate(zip(names, convs)):
            setattr(self, name, conv_block(c_in, c_out, attention=attention and i == len(convs) - 1))
        self.names = names

    def forward(self, below: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = self.shuf(below)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        x = F.relu(torch.cat([up, self.bn(skip)], 1))
        for name in self.names:
            x = getattr(self, name)(x)
        return x


class DeOldifyGenerator(nn.Module):
    """``DynamicUnetDeep`` (``unet="deep"``) or ``DynamicUnetWide`` (``"wide"``) on a ResNet body.

    ``forward(x)``: ``N x 3 x H x W`` ImageNet-normalised, H and W multiples of 16 ->
    ``N x 3 x H x W`` in ImageNet-normalised units, within (-3, 3).
    """

    def __init__(self, unet: str, block: str, depths: Sequence[int], widths: Sequence[int], nf_factor: float) -> None:
        super().__init__()
        self.config: dict[str, Any] = {
            "unet": unet,
            "block": block,
            "depths": list(depths),
            "widths": list(widths),
            "nf_factor": nf_factor,
        }
        expansion = BLOCKS[block].expansion
        stem = widths[0]
        c1, c2, c3, c4 = (w * expansion for w in widths)
        body = resnet_body(block, depths, widths)
        decoder: list[nn.Module] = [
            body,
            nn.BatchNorm2d(c4),
            nn.ReLU(),
            nn.Sequential(conv_block(c4, 2 * c4), conv_block(2 * c4, c4)),
        ]
        up = c4
        skips = [c3, c2, c1, stem]
        for i, skip in enumerate(skips):
            last = i == len(skips) - 1
            attention = i == len(skips) - 3  # the block at 1/8
            if unet == "deep":
                joined = up // 2 + skip
                out = int((joined // 2 if last else joined) * nf_factor)
                unit = UnetBlock(up, skip, up // 2, [(joined, out), (out, out)], attention)
            else:
                n_out = int(512 * nf_factor) // (2 if last else 1)
                out = n_out // 2
                unit = UnetBlock(up, skip, out, [(out + skip, out)], attention)
            decoder.append(unit)
            up = out
        decoder += [FinalShuffle(up), nn.Identity(), ResBlock(up + 3), conv_block(up + 3, 3, 1, activ=False, bn=False)]
        self.layers = nn.ModuleList(decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body = self.layers[0]
        feats = []
        y = x
        for i, part in enumerate(body):
            y = part(y)
            if i in (2, 4, 5, 6):  # stem ReLU (1/2), layer1 (1/4), layer2 (1/8), layer3 (1/16)
                feats.append(y)
        y = self.layers[3](self.layers[2](self.layers[1](y)))
        for unit, skip in zip(self.layers[4:8], reversed(feats)):
            y = unit(y, skip)
        y = self.layers[8](y)
        y = torch.cat([y, x], 1)  # layers.9, fastai's MergeLayer(dense=True): the final cross connection
        y = self.layers[11](self.layers[10](y))
        return torch.sigmoid(y) * 6.0 - 3.0  # layers.12, SigmoidRange(-3, 3)


class FeatureEncoder(nn.Module):
    """The frozen feature network of DeOldify light's recipe (a stand-in for VGG-16, which needs
    ImageNet weights): three levels of a strided convolution (stride 2, ``same`` padding), batch
    norm from the second level on, and ReLU; ``forward(rgb)`` returns each level's activations.

    Its weights (``checkpoints/feature_encoder.safetensors``, keys ``convs.*`` and ``norms.*``)
    were copied once from the first three encoder levels of inpainting's first light PConv
    checkpoint (with a mask of ones a partial convolution is this plain one away from the
    border); the file's metadata names that source. Nothing reads the inpainting task's code or
    parameter names: retraining inpainting does not change what colorization optimises.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128), kernels: Sequence[int] = (7, 5, 5)) -> None:
        super().__init__()
        channels = [3, *widths]
        self.convs = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i + 1], k, stride=2, padding=k // 2) for i, k in enumerate(kernels)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) if i else nn.Identity() for i, w in enumerate(widths))
        self.requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        out, x = [], rgb
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
            out.append(x)
        return out
