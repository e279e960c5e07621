"""The ECCV16 colorization network (Zhang, Isola, Efros 2016) and its training loss.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

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
