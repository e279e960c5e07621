"""The inpainting networks: the partial-convolution U-Net and a conditional VAE built on it.

:class:`PConvUNet` -- Liu et al., ECCV 2018 (appendix): ``levels`` encoder partial
convolutions of stride 2 (``widths`` output channels, ``kernels`` sizes) (the paper's eight: 7x7/64, 5x5/128, 5x5/256, 3x3/512, then
3x3/512 four times; ReLU; batch norm on all but the first), then as many decoder steps:
nearest-neighbour upsampling by 2, concatenation with the encoder's output of that scale
(the last one with the input image), each part with its own mask, a 3x3 partial
convolution (LeakyReLU 0.2, batch norm on all but the last, which has neither and gives
the image). Input ``N x 4 x H x W`` (the image with holes, then the mask, 1 = valid);
any size: the input (image, mask and base fill) is padded to a multiple of ``2**levels``
by mirroring it, and the output cropped back (padding with holes, as before version 2 of
the methods, put a band of holes no training patch has along the right and bottom borders;
see tasks/inpaint/README.md). State-dict keys: ``enc{i}.conv.conv.weight/bias``,
``enc{i}.bn.*`` (``i = 1 .. levels``, no ``enc1.bn``), ``dec{i}.conv.conv.weight/bias``, ``dec{i}.bn.*``
(``i = levels .. 1``, no ``dec1.bn``).

``base="biharmonic+telea", blend=True`` (the committed light network; not in the paper):
the network also takes classical completions of the holes, scikit-image's biharmonic and
OpenCV's Telea, as more images under all-ones masks in the first encoder layer and the last
skip, and learns a correction to a strong classical fill instead of the whole fill (a
2 M-parameter network trained for hours on CPU did not learn smooth interpolation as well as
biharmonic on held-out photos). Without ``blend`` its output is added to the first fill;
with it the last layer also gives, per pixel, a softmax weight for each fill and the output
is added to that weighted mix: where biharmonic overshoots (large holes beside bright, sharp
edges) choosing Telea, bounded by its neighbours, is easier than undoing the overshoot.
``base`` names one fill or several joined by ``+``; :meth:`PConvUNet.adopt` starts a network
from one with fewer fills or without blend. :func:`freeze_encoder_batch_norm` sets up the
paper's fine-tuning phase: the encoder's batch-norm statistics stay as trained (holes bias
them while the network learns).

:class:`InpaintVAE` -- a conditional VAE on the same U-Net: a posterior encoder
q(z | image, mask) maps the whole image and the mask to a Gaussian latent map at the
bottleneck's resolution (``latent`` channels); the generator is the U-Net with ``z``
joined to its bottleneck. Trained on the ELBO: the reconstruction terms of the paper
plus ``beta * KL(q || N(0, I))``; at test time ``z ~ N(0, I)``, one completion per draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from restorebench.tasks.inpaint.baselines import biharmonic_inpaint, opencv_inpaint
from restorebench.tasks.inpaint.layers import PartialConv2d

PAPER_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 512)
PAPER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)
FIRST_FILL_LOGIT = 3.0  # an adopted blend starts with the first fill's weight at 0.95 of two
FILL_OPTIONS = ("base", "blend")  # the config keys that say which fills a network refines, and how


class _Block(nn.Module):
    """Partial convolution, optional batch norm, activation."""

    def __init__(self, conv: PartialConv2d, bn: bool, act: nn.Module | None) -> None:
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.conv.out_channels) if bn else None
        self.act = act

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self.conv(x, mask)
        if self.bn is not None:
            x = self.bn(x)
        return (self.act(x) if self.act is not None else x), mask


class PConvUNet(nn.Module):
    """The PConv U-Net; ``forward(x)`` with ``x = [image with holes, mask]`` (N x (C + 1) x H x W)."""

    def __init__(
        self,
        widths: Sequence[int] = PAPER_WIDTHS,
        kernels: Sequence[int] = PAPER_KERNELS,
        image_channels: int = 3,
        extra_bottleneck: int = 0,
        base: str | None = None,
        blend: bool = False,
    ) -> None:
        super().__init__()
        if len(widths) != len(kernels) or not widths:
            raise ValueError(f"need as many widths as kernels, got {list(widths)} and {list(kernels)}")
        self.bases = base_fills(base)
        if blend and len(self.bases) < 2:
            raise ValueError(f"blend weighs several base fills; {base!r} names {len(self.bases)}")
        self.blend = blend
        self.config: dict[str, Any] = {
            "widths": list(widths),
            "kernels": list(kernels),
            "image_channels": image_channels,
            **({"base": base} if base else {}),
            **({"blend": True} if blend else {}),
        }
        channels = widths
        self.levels = len(channels)
        self.image_channels = image_channels
        # with base fills, the input is the image, then each fill (under an all-ones mask)
        inputs = (image_channels,) * (1 + len(self.bases))
        previous = sum(inputs)
        for i, (c, k) in enumerate(zip(channels, kernels), start=1):
            conv = PartialConv2d(previous, c, k, stride=2, parts=inputs if i == 1 and self.bases else None)
            setattr(self, f"enc{i}", _Block(conv, bn=i > 1, act=nn.ReLU(inplace=True)))
            previous = c
        below = channels[-1] + extra_bottleneck  # the bottleneck (plus a VAE's latent map)
        for i in range(self.levels, 0, -1):
            skip = (channels[i - 2],) if i > 1 else inputs
            out = channels[i - 2] if i > 1 else image_channels + (len(self.bases) if blend else 0)
            conv = PartialConv2d(below + sum(skip), out, 3, parts=(below, *skip))
            last = i == 1
            setattr(self, f"dec{i}", _Block(conv, bn=not last, act=None if last else nn.LeakyReLU(0.2, inplace=True)))
            below = out

    @property
    def stride(self) -> int:
        return 2**self.levels

    frozen_encoder_bn: bool = False  # set by freeze_encoder_batch_norm

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        if self.frozen_encoder_bn:
            for name, module in self.named_modules():
                if name.startswith("enc") and isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        image, mask = x[:, : self.image_channels], x[:, self.image_channels :]
        h, w = image.shape[-2:]
        fills = [BASE_FILLS[name](image, mask) for name in self.bases]
        if fills:
            image, mask = torch.cat([image, *fills], 1), torch.cat([mask, *(torch.ones_like(mask) for _ in fills)], 1)
        image, mask = _pad_to(image, mask, self.stride)
        skips = [(image, mask)]
        feat, m = image, mask
        for i in range(1, self.levels + 1):
            feat, m = getattr(self, f"enc{i}")(feat, m)
            skips.append((feat, m))
        if extra is not None:  # a latent map joins the bottleneck (under the bottleneck's one-channel mask)
            feat = torch.cat([feat, extra], 1)
        for i in range(self.levels, 0, -1):
            skip, skip_mask = skips[i - 1]
            up = F.interpolate(feat, scale_factor=2, mode="nearest")
            up_mask = F.interpolate(m, scale_factor=2, mode="nearest")
            feat, m = getattr(self, f"dec{i}")(torch.cat([up, skip], 1), torch.cat([up_mask, skip_mask], 1))
        out = feat[..., :h, :w]
        if not fills:
            return out
        if not self.blend:
            return out + fills[0]
        weights = torch.softmax(out[:, self.image_channels :], 1)
        base = sum(weights[:, i : i + 1] * fill for i, fill in enumerate(fills))
        return out[:, : self.image_channels] + base

    def adopt(self, state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
        """A state for this network from one of the same U-Net with fewer base fills, or the same
        fills without ``blend`` (``config``; its fills must be the first of this one's): the first
        and last layers get zero weights for the new fills' channels. From a network without a
        base fill the last layer is zero too, so the adopted network starts as its base fill;
        from one with fills it starts near the source (the partial convolutions' window counts
        include the new all-ones channels). New blend weights start at
        :data:`FIRST_FILL_LOGIT` for the first fill, 0 for the others (0.95 of the first of two)."""
        plain = {k: v for k, v in self.config.items() if k not in FILL_OPTIONS}
        source = base_fills(config.get("base"))
        n = len(source)
        same_net = {"image_channels": 3, **{k: v for k, v in config.items() if k not in FILL_OPTIONS}} == plain
        grows = n < len(self.bases) or (self.blend and not config.get("blend"))
        if not same_net or not grows or config.get("blend") or self.bases[:n] != source:
            raise ValueError(
                f"only a {plain} network with fewer base fills than {'+'.join(self.bases) or 'none'} "
                f"(the first of them), or with them but not blended, can be adopted, not {config}"
            )
        extra = (len(self.bases) - n) * self.image_channels
        adopted = dict(state)
        for key in ("enc1.conv.conv.weight", "dec1.conv.conv.weight"):
            weight = state[key]
            adopted[key] = torch.cat([weight, weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])], 1)
        if not source:  # the plain network's last layer gave the whole fill; now it adds to the base
            adopted["dec1.conv.conv.weight"] = torch.zeros_like(adopted["dec1.conv.conv.weight"])
            adopted["dec1.conv.conv.bias"] = torch.zeros_like(state["dec1.conv.conv.bias"])
        if self.blend:  # one more output per fill: the logits of its weight in the base
            weight, bias = adopted["dec1.conv.conv.weight"], adopted["dec1.conv.conv.bias"]
            logits = [FIRST_FILL_LOGIT] + [0.0] * (len(self.bases) - 1)
            adopted["dec1.conv.conv.weight"] = torch.cat([weight, weight.new_zeros(len(logits), *weight.shape[1:])])
            adopted["dec1.conv.conv.bias"] = torch.cat([bias, bias.new_tensor(logits)])
        return adopted


def freeze_encoder_batch_norm(network: nn.Module) -> None:
    """Keep the encoder's batch-norm layers in evaluation mode while ``network`` trains (their
    running statistics stay; their scales and shifts still learn): the paper's fine-tuning
    phase (batch statistics over images with holes are biased by the holes, so once trained
    the encoder's statistics are fixed and the rest of the network adapts to them)."""
    for module in network.modules():
        if isinstance(module, PConvUNet):
            module.frozen_encoder_bn = True
    network.train(network.training)


def _fill_each(image: torch.Tensor, mask: torch.Tensor, fill: Any) -> torch.Tensor:
    """``fill(image HWC, holes HW)`` on each image of the batch (no gradient; an image without
    holes, or without a known pixel, is returned as it is)."""
    out = image.detach().clone()
    pixels = image.detach().float().cpu().numpy()
    holes = mask[:, 0].detach().cpu().numpy() < 0.5
    for i in range(len(pixels)):
        if holes[i].any() and not holes[i].all():
            filled = fill(pixels[i].transpose(1, 2, 0), holes[i])
            out[i] = torch.from_numpy(np.ascontiguousarray(filled.transpose(2, 0, 1))).to(out)
    return out


def biharmonic_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each image's holes completed by scikit-image's biharmonic inpainting, in float32 (``mask`` 1 = valid)."""
    return _fill_each(image, mask, biharmonic_inpaint)


def telea_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each image's holes completed by OpenCV's Telea fast marching (on the 8-bit image, as ``inpaint/telea``)."""
    return _fill_each(image, mask, lambda pixels, holes: opencv_inpaint(pixels, holes, "INPAINT_TELEA"))


BASE_FILLS: dict[str, Any] = {"biharmonic": biharmonic_fill, "telea": telea_fill}


def base_fills(base: str | None) -> tuple[str, ...]:
    """``"biharmonic+telea"`` -> ("biharmonic", "telea"); None -> (); ValueError for an unknown fill."""
    names = tuple(base.split("+")) if base else ()
    unknown = [name for name in names if name not in BASE_FILLS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"unknown or repeated base fill in {base!r}; known: {', '.join(BASE_FILLS)}")
    return names


def _pad_to(image: torch.Tensor, mask: torch.Tensor, multiple: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad right and bottom to a multiple of ``multiple`` by mirroring the image and its mask
    (as often as a small image needs), so the network sees image-like context at the border."""
    h, w = image.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    while ph or pw:
        step_h, step_w = min(ph, image.shape[-2] - 1), min(pw, image.shape[-1] - 1)
        image = F.pad(image, (0, step_w, 0, step_h), mode="reflect")
        mask = F.pad(mask, (0, step_w, 0, step_h), mode="reflect")
        ph, pw = ph - step_h, pw - step_w
    return image, mask


class _Posterior(nn.Module):
    """q(z | image, mask): strided convolutions down to the bottleneck's scale, then mean and log-variance."""

    def __init__(self, levels: int, width: int, latent: int, image_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = image_channels + 1
        for i in range(levels):
            out = min(width * 2**i, 4 * width)
            layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c = out
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, 2 * latent, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)


class InpaintVAE(nn.Module):
    """A conditional VAE: generator ``PConvUNet`` with a latent map at its bottleneck.

    ``forward(x)`` completes with ``z = 0`` (the prior's mean; what validation scores);
    :meth:`sample` draws ``z ~ N(0, I)``; :meth:`elbo_terms` is the training objective's core.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 96, 128, 128, 128),
        kernels: Sequence[int] = (7, 5, 5, 3, 3, 3),
        latent: int = 8,
        posterior_width: int = 16,
        image_channels: int = 3,
    ) -> None:
        super().__init__()
        self.generator = PConvUNet(widths, kernels, image_channels, extra_bottleneck=latent)
        self.posterior = _Posterior(len(widths), posterior_width, latent, image_channels)
        self.latent = latent
        self.config: dict[str, Any] = {
            "widths": list(widths),
            "kernels": list(kernels),
            "latent": latent,
            "posterior_width": posterior_width,
            "image_channels": image_channels,
        }

    def _latent_shape(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        h, w = x.shape[-2:]
        s = self.generator.stride
        return (x.shape[0], self.latent, -(-h // s), -(-w // s))

    def decode(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.generator(x, extra=z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(x, x.new_zeros(self._latent_shape(x)))

    def sample(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(self._latent_shape(x), generator=generator, dtype=x.dtype).to(x.device)
        return self.decode(x, z)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output decoded from a posterior draw, KL(q || N(0, I)) per latent element, averaged
        over the batch and the positions of each latent channel: shape ``(latent,)``)."""
        image_channels = self.generator.image_channels
        mask = x[:, image_channels:]
        image, mask_padded = _pad_to(y, mask, self.generator.stride)
        mu, logvar = self.posterior(torch.cat([image, mask_padded], 1))
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(dim=(0, 2, 3))
        return self.decode(x, z), kl


# ---------------------------------------------------------------- losses


def hole_valid_l1(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's L_valid and L_hole: L1 on the known and on the missing pixels, each over all elements."""
    return (mask * (output - target)).abs().mean(), ((1 - mask) * (output - target)).abs().mean()


def total_variation(composite: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's L_tv: L1 of horizontal and vertical differences of the composite image,
    on the 1-pixel dilation of the holes."""
    region = F.max_pool2d(1 - mask, 3, stride=1, padding=1)
    dx = (composite[..., :, 1:] - composite[..., :, :-1]).abs() * region[..., :, 1:] * region[..., :, :-1]
    dy = (composite[..., 1:, :] - composite[..., :-1, :]).abs() * region[..., 1:, :] * region[..., :-1, :]
    return dx.mean() + dy.mean()


LOSS_WEIGHTS = {"valid": 1.0, "hole": 6.0, "tv": 0.1, "perceptual": 0.05, "style": 120.0}


def inpainting_loss(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, features: Any = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """L_valid + 6 L_hole + 0.1 L_tv, plus 0.05 L_perceptual + 120 L_style (on the output and the
    composite) when ``features`` (a VGG-16 feature extractor) is given; and the terms for the log."""
    valid, hole = hole_valid_l1(output, target, mask)
    composite = mask * target + (1 - mask) * output
    tv = total_variation(composite, mask)
    terms = {"valid": valid, "hole": hole, "tv": tv}
    if features is not None:
        from restorebench.neural.vgg import perceptual_and_style

        terms["perceptual"], terms["style"] = perceptual_and_style(features, output, composite, target)
    loss = sum(LOSS_WEIGHTS[k] * v for k, v in terms.items())
    return loss, {k: float(v.detach()) for k, v in terms.items()}
