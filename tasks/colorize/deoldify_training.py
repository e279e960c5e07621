"""Training the light DeOldify stand-in: L1 plus a feature loss, without ImageNet weights.

DeOldify's released generators were pretrained with a VGG-16 feature loss on ImageNet and
NoGAN-fine-tuned; neither ImageNet weights nor the days of GPU time exist here. The light
variant (a narrow ResNet body, trained from scratch) learns, on BSDS400 + T91 patches, to
map DeOldify's input (gray RGB, ImageNet-normalised) to the colour patch with L1 on the
normalised values (fastai's do_y normalisation) plus an L1 between features of the
project's own trained network: the first three encoder levels of ``inpaint/pconv``'s first
light checkpoint (fed the whole image as valid), kept in ``checkpoints/feature_encoder.safetensors``
so that retraining inpainting does not change what this recipe optimises; a stand-in for
VGG-16, documented as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from restorebench.neural.imagenet import IMAGENET_MEAN, IMAGENET_STD

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
        needs_colour=True,
        notes="DeOldify light: L1 (normalised) + 0.5 x L1 of features of a plain inpaint/pconv light encoder "
        "(colorize/checkpoints/feature_encoder.safetensors); no VGG-16, "
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


FEATURE_CHECKPOINT = Path(__file__).with_name("checkpoints") / "feature_encoder.safetensors"
_FEATURES: dict[str, Any] = {}


def _feature_weights() -> dict[str, Any]:
    """The feature network's weights: enc1 .. enc3 of a plain inpaint/pconv light network (loaded once)."""
    if not _FEATURES:
        from restorebench.neural.checkpoints import load_checkpoint

        state, _ = load_checkpoint(FEATURE_CHECKPOINT)
        _FEATURES.update(
            {k: v for k, v in state.items() if k.startswith(tuple(f"enc{i}." for i in range(1, FEATURE_LEVELS + 1)))}
        )
    return _FEATURES


def _features(rgb: Any) -> list[Any]:
    """Activations of that encoder on a whole (all valid) image: with a mask of ones its partial
    convolutions are plain convolutions (stride 2, batch norm, ReLU) away from the image border,
    where the partial convolution's rescaling is left out."""
    import torch.nn.functional as F

    w, feats, x = _feature_weights(), [], rgb
    for i in range(1, FEATURE_LEVELS + 1):
        weight = w[f"enc{i}.conv.conv.weight"]
        x = F.conv2d(x, weight, w[f"enc{i}.conv.conv.bias"], stride=2, padding=weight.shape[-1] // 2)
        if f"enc{i}.bn.weight" in w:
            x = F.batch_norm(
                x,
                w[f"enc{i}.bn.running_mean"],
                w[f"enc{i}.bn.running_var"],
                w[f"enc{i}.bn.weight"],
                w[f"enc{i}.bn.bias"],
            )
        x = F.relu(x)
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
    with torch.no_grad():
        real = _features(y)
    feature = sum((f - g).abs().mean() for f, g in zip(_features(rgb), real))
    return l1 + FEATURE_WEIGHT * feature, {"l1": float(l1.detach()), "feature": float(feature.detach())}
