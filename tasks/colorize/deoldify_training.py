"""Training the light DeOldify stand-in: L1 plus a feature loss, without ImageNet weights.

DeOldify's released generators were pretrained with a VGG-16 feature loss on ImageNet and
NoGAN-fine-tuned; neither ImageNet weights nor the days of GPU time exist here. The light
variant (a narrow ResNet body, trained from scratch) learns, on BSDS400 + T91 patches, to
map DeOldify's input (gray RGB, ImageNet-normalised) to the colour patch with L1 on the
normalised values (fastai's do_y normalisation) plus an L1 between features of the
project's own trained network: the encoder of the committed ``inpaint/pconv`` light
checkpoint (fed the whole image as valid), a stand-in for VGG-16, documented as such.
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
FEATURE_WEIGHT = 0.5
FEATURE_LEVELS = 3  # enc1 .. enc3 of the PConv encoder


def deoldify_recipe(architecture: str, config: dict[str, Any]) -> Any:
    """128x128 patches, batches of 8, Adam lr 5e-4 (x0.1 at 70 % and 90 %), 3000 steps."""
    from restorebench.neural.training import Recipe

    return Recipe(
        architecture=architecture,
        config=config,
        make_pair=gray_colour_pair,
        patch_size=128,
        batch_size=8,
        steps=3000,
        lr=5e-4,
        objective=feature_objective,
        predict=predict_rgb,
        lr_milestones=(0.7, 0.9),
        grad_clip=1.0,
        val_every=500,
        val_patches=32,
        notes="DeOldify light: L1 (normalised) + 0.5 x L1 of inpaint/pconv light encoder features; no VGG-16, "
        "no ImageNet encoder, no NoGAN: a stand-in for the released generators",
    )


def gray_colour_pair(clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(DeOldify's input: 8-bit gray RGB, normalised, 3 x P x P; the colour patch in [0, 1], 3 x P x P)."""
    from PIL import Image

    patch = np.round(np.clip(clean, 0, 1) * 255).astype(np.uint8)
    gray = np.asarray(Image.fromarray(patch).convert("LA").convert("RGB"), dtype=np.float32) / 255.0
    x = (gray - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(2, 0, 1)), np.ascontiguousarray(clean.transpose(2, 0, 1))


def _denormalise(out: Any) -> Any:
    import torch

    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return out * std + mean


def predict_rgb(network: Any, x: Any) -> Any:
    """The network's output as RGB in [0, 1] (what validation scores)."""
    return _denormalise(network(x)).clamp(0, 1)


_FEATURES: dict[str, Any] = {}


def _feature_net() -> Any:
    """The committed inpaint/pconv light encoder, frozen (loaded once)."""
    if "net" not in _FEATURES:
        from restorebench.neural.checkpoints import load_checkpoint
        from restorebench.tasks.inpaint.models import PConvUNet
        from restorebench.tasks.inpaint.neural import CHECKPOINT_DIR

        state, meta = load_checkpoint(CHECKPOINT_DIR / "pconv_light.safetensors")
        net = PConvUNet(**meta["config"])
        net.load_state_dict(state)
        _FEATURES["net"] = net.eval().requires_grad_(False)
    return _FEATURES["net"]


def _features(net: Any, rgb: Any) -> list[Any]:
    mask = rgb.new_ones(rgb.shape[0], 1, *rgb.shape[-2:])
    feats, x, m = [], rgb, mask
    for i in range(1, FEATURE_LEVELS + 1):
        x, m = getattr(net, f"enc{i}")(x, m)
        feats.append(x)
    return feats


def feature_objective(network: Any, x: Any, y: Any) -> tuple[Any, dict[str, float]]:
    """L1 on ImageNet-normalised values + FEATURE_WEIGHT x L1 of the feature network's activations."""
    import torch

    out = network(x)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    l1 = (out - (y - mean) / std).abs().mean()
    rgb = (out * std + mean).clamp(0, 1)
    net = _feature_net()
    with torch.no_grad():
        real = _features(net, y)
    feature = sum((f - g).abs().mean() for f, g in zip(_features(net, rgb), real))
    return l1 + FEATURE_WEIGHT * feature, {"l1": float(l1.detach()), "feature": float(feature.detach())}
