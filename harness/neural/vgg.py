"""VGG-16 features for perceptual and style losses, from a weights file the user has.

Shared by every task's training recipes (inpainting's PConv recipe uses them, as Liu et al.
do); a feature loss of a task's own belongs in its recipe, not here.

No ImageNet weights can be downloaded here, so these terms are used only when a local
VGG-16 state dict is given (e.g. torchvision's ``vgg16-397923af.pth``: keys
``features.0.weight`` ...); the committed checkpoints were trained without them.
The network is VGG-16's convolutional part up to ``pool3``, built in plain PyTorch with
torchvision's key names, frozen, fed ImageNet-normalised images; the features are the
outputs of pool1, pool2 and pool3 (Liu et al., ECCV 2018, section 3.3).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from restorebench.core.errors import UserError
from restorebench.neural.imagenet import IMAGENET_MEAN, IMAGENET_STD

# torchvision's vgg16().features, up to and including the third max-pool (index 16)
_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
POOL_INDICES = (4, 9, 16)  # the max-pool layers whose outputs are the features


class VGG16Features(nn.Module):
    """Frozen VGG-16 layers to pool3; ``forward(x)`` (RGB in [0, 1]) -> [pool1, pool2, pool3]."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in _CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU(inplace=True)]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in POOL_INDICES:
                out.append(x)
        return out


def load_vgg16(path: str | Path) -> VGG16Features:
    """VGG-16 features from a local state dict (torchvision layout; extra keys such as the
    classifier's are ignored); a file without the needed keys is a clear error."""
    from restorebench.neural.checkpoints import load_checkpoint

    state, _ = load_checkpoint(path)
    net = VGG16Features()
    wanted = net.features.state_dict().keys()
    picked = {k.removeprefix("features."): v for k, v in state.items() if k.removeprefix("features.") in wanted}
    missing = sorted(set(wanted) - set(picked))
    if missing:
        raise UserError(
            f"{path} is not a VGG-16 state dict: it lacks features.{missing[0]} (and {len(missing) - 1} more)"
        )
    try:
        net.features.load_state_dict(picked, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path} does not fit VGG-16: {str(exc).splitlines()[0]}") from None
    return net.eval()


def _gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def perceptual_and_style(
    features: VGG16Features, output: torch.Tensor, composite: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's L_perceptual and L_style (each summed over pool1-3, for the raw output and
    the composite), L1 distances of the features and of their Gram matrices."""
    if output.shape[1] == 1:  # gray images go through VGG as RGB
        output, composite, target = (t.expand(-1, 3, -1, -1) for t in (output, composite, target))
    with torch.no_grad():
        real = features(target)
    perceptual = output.new_zeros(())
    style = output.new_zeros(())
    for image in (output, composite):
        for f, g in zip(features(image), real):
            perceptual = perceptual + (f - g).abs().mean()
            style = style + (_gram(f) - _gram(g)).abs().mean()
    return perceptual, style
