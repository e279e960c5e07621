"""``colorize/deoldify``: DeOldify's generator with DeOldify's inference filter.

As ``deoldify/filters.py`` does it: the gray image (8-bit) stretched to a square of
``render_factor * 16`` pixels (PIL bilinear), made gray RGB (PIL ``LA`` -> ``RGB``),
ImageNet-normalised; the generator; its output un-normalised, clipped, truncated to 8 bits
and stretched back (PIL bilinear); then the post-process that keeps the input's luminance
and takes only the chroma: OpenCV's YUV, Y from the input, U and V from the network.

``variant=artistic`` (ResNet-34, ``DynamicUnetDeep``) and ``variant=stable`` (ResNet-101,
``DynamicUnetWide``) are the released generators: convert ``ColorizeArtistic_gen.pth`` /
``ColorizeStable_gen.pth`` (fastai ``Learner.save`` files) with ``restorebench convert`` and
pass ``?checkpoint=``; no released weights ship with restorebench. ``variant=light`` (a
narrow ResNet body trained here from scratch) is the committed checkpoint, a stand-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from restorebench import Degraded, NeuralMethod, NeuralParams, UserError, register
from restorebench.neural.imagenet import IMAGENET_MEAN, IMAGENET_STD

# the released generators' configurations (and the light one trained here); torch-free, so
# loading the plugin does not import torch
VARIANTS: dict[str, dict[str, Any]] = {
    "artistic": {
        "unet": "deep",
        "block": "basic",
        "depths": [3, 4, 6, 3],
        "widths": [64, 128, 256, 512],
        "nf_factor": 1.5,
    },
    "stable": {
        "unet": "wide",
        "block": "bottleneck",
        "depths": [3, 4, 23, 3],
        "widths": [64, 128, 256, 512],
        "nf_factor": 2.0,
    },
    "light": {"unet": "deep", "block": "basic", "depths": [1, 1, 1, 1], "widths": [16, 32, 64, 128], "nf_factor": 1.0},
}

CHECKPOINT_DIR = Path(__file__).with_name("checkpoints")
RENDER_FACTORS = {"artistic": 35, "stable": 35, "light": 10}  # DeOldify's photo defaults; light: its training scale
MAX_UPSCALE = 8  # a render more than 8 times the image's longer side is refused


class DeOldifyParams(NeuralParams):
    variant: Literal["light", "artistic", "stable"] = "light"
    render_factor: int | None = Field(None, ge=7, le=100, description="render size / 16; None: the variant's default")
    post_process: bool = True  # keep the input's luminance, take the network's chroma


@register
class DeOldifyMethod(NeuralMethod):
    """DeOldify (J. Antic): a NoGAN-trained U-Net colorizer, its released generator layouts."""

    task = "colorize"
    name = "deoldify"
    version = "1"
    architecture: ClassVar[str] = "deoldify"
    description: ClassVar[str] = "DeOldify generator (Antic), artistic/stable layouts; light stand-in trained here"
    Params = DeOldifyParams
    checkpoint_dir: ClassVar[Path | None] = CHECKPOINT_DIR

    @property
    def render_size(self) -> int:
        factor = self.params.render_factor or RENDER_FACTORS[self.params.variant]
        return factor * 16

    def build_network(self, config: dict[str, Any]) -> Any:
        from restorebench.tasks.colorize.deoldify import DeOldifyGenerator

        return DeOldifyGenerator(**{**VARIANTS[self.params.variant], **config})

    def default_checkpoints(self) -> list[Path]:
        return [(self.checkpoint_dir or CHECKPOINT_DIR) / f"deoldify_{self.params.variant}.safetensors"]

    def config_from_tensors(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """The ResNet body's blocks per stage (``layers.0.4`` ... ``layers.0.7``), their widths
        (each stage's first ``conv1``) and the block kind (``conv3``: bottleneck)."""
        stages = [
            sorted({int(k.split(".")[3]) for k in shapes if k.startswith(f"layers.0.{4 + i}.")}) for i in range(4)
        ]
        firsts = [shapes.get(f"layers.0.{4 + i}.0.conv1.weight") for i in range(4)]
        if not all(stages) or any(f is None or len(f) != 4 for f in firsts):
            return {}
        return {
            "depths": [len(blocks) for blocks in stages],
            "widths": [f[0] for f in firsts],  # type: ignore[index]
            "block": "bottleneck" if "layers.0.4.0.conv3.weight" in shapes else "basic",
        }

    def checkpoints(self) -> list[Path]:
        if self.params.variant != "light" and not self.params.checkpoint:
            v = self.params.variant
            raise UserError(
                f"{self.qualified_name}?variant={v}: the released weights are not shipped with restorebench",
                hint=f"convert yours: restorebench convert Colorize{v.title()}_gen.pth --method "
                f"'colorize/deoldify?variant={v}' --out deoldify_{v}.safetensors, then add &checkpoint=deoldify_{v}.safetensors",
            )
        return super().checkpoints()

    def prepare(self, item: Degraded) -> tuple[np.ndarray, Any]:
        from PIL import Image

        from restorebench.tasks.colorize.degradations import lightness

        h, w = item.image.shape[:2]
        size = self.render_size
        if size > MAX_UPSCALE * max(h, w):
            raise ValueError(
                f"render_factor {size // 16} renders {size} px, more than {MAX_UPSCALE}x this {w}x{h} image; "
                f"use render_factor <= {max(7, MAX_UPSCALE * max(h, w) // 16)}"
            )
        gray = _gray_rgb(lightness(item))
        square = Image.fromarray(gray).resize((size, size), resample=Image.BILINEAR).convert("LA").convert("RGB")
        x = (np.asarray(square, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(x.transpose(2, 0, 1)), gray

    def finish(self, output: np.ndarray, context: Any, item: Degraded) -> np.ndarray:
        from PIL import Image

        gray = context
        h, w = gray.shape[:2]
        rgb = np.clip(output.transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN, 0.0, 1.0)
        colour = np.asarray(Image.fromarray((rgb * 255).astype(np.uint8)).resize((w, h), resample=Image.BILINEAR))
        if self.params.post_process:
            colour = keep_luminance(gray, colour)
        return colour.astype(np.float32) / 255.0

    def convert_official(self, weights: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """A released generator (the ``model`` entry of a fastai ``Learner.save`` file) or a plain
        state dict with the same keys: kept as is; the variant is told by its body's keys."""
        if weights.state_dict is None:
            raise UserError(f"{self.qualified_name}: DeOldify weights are a state dict, not {weights.source_format}")
        found = variant_of(weights.state_dict)
        if found is not None and found != self.params.variant:
            raise UserError(
                f"these are the {found} generator's weights, not the {self.params.variant} one's",
                hint=f"convert them with --method 'colorize/deoldify?variant={found}'",
            )
        return dict(weights.state_dict), dict(VARIANTS[self.params.variant])

    def recipe(self) -> Any:
        from restorebench.tasks.colorize.deoldify_training import deoldify_recipe

        if self.params.variant != "light":
            raise UserError(
                f"{self.qualified_name}: only variant=light is trained here (the released ones took days of GPUs)"
            )
        return deoldify_recipe(self.architecture, dict(VARIANTS["light"]))


def keep_luminance(gray: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """DeOldify's post-process on 8-bit RGB: Y (OpenCV's YUV) of ``gray``, U and V of ``colour``."""
    import cv2

    yuv = cv2.cvtColor(gray, cv2.COLOR_RGB2YUV)
    yuv[..., 1:] = cv2.cvtColor(colour, cv2.COLOR_RGB2YUV)[..., 1:]
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB)


def variant_of(state: dict[str, Any]) -> str | None:
    """Which released generator a state dict is, by its body: ResNet-101 (bottleneck ``conv3``
    keys, 23 blocks in layer3) is stable, ResNet-34 (3/4/6/3 basic blocks) artistic."""
    if "layers.0.6.22.conv3.weight" in state:
        return "stable"
    if "layers.0.6.5.conv2.weight" in state and "layers.0.6.0.conv3.weight" not in state:
        return "artistic"
    return None


def _gray_rgb(lightness: np.ndarray) -> np.ndarray:
    """8-bit gray RGB of a lightness map (L in [0, 100]): the gray photo DeOldify is given."""
    from restorebench.tasks.colorize.color import lab_to_rgb

    lab = np.stack([lightness, np.zeros_like(lightness), np.zeros_like(lightness)], axis=2)
    return np.round(lab_to_rgb(lab) * 255).astype(np.uint8)
