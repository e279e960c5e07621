"""The ``gray`` degradation: the L channel of CIE Lab, as a 1-channel image in [0, 1] (L / 100).

The contract of the task: a method receives that channel (``Degraded.image``, HxWx1) and
returns an RGB image (HxWx3 in [0, 1]) of the same size; it may keep the input's
lightness exactly (the baselines and ECCV16 combine their ab with it) or not (DeOldify
keeps only its chroma). A gray source image (one channel, or three equal ones) has no
colour to score against: its units are skipped with a message naming it.
"""

from __future__ import annotations

import numpy as np

from restorebench import AsIs, Degradation, Degraded, ImageRef, SkipUnit, Source, register
from restorebench.imaging import as_rgb
from restorebench.tasks.colorize.color import is_gray, rgb_to_lab


@register
class Gray(Degradation):
    """Drop the colour: keep CIE L (D65) only."""

    name = "gray"
    task = "colorize"

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        if is_gray(image):
            raise SkipUnit("a gray image: there is no colour to score a colorization against")
        lightness = rgb_to_lab(image)[..., :1] / 100.0
        return Degraded(image=np.clip(lightness, 0.0, 1.0).astype(np.float32), degradation=self.name)


def lightness(item: Degraded) -> np.ndarray:
    """The input's CIE L in [0, 100], HxW float64."""
    return np.asarray(item.image[..., 0], dtype=np.float64) * 100.0


def photo_lightness(photo: np.ndarray, params: object, image: ImageRef, source: Source) -> Degraded:
    """A black-and-white (or colour) photo as it is (degradation ``as_is``): its CIE L, as
    ``gray`` gives it; the method returns colour (``H x W x 3``). A gray photo is what
    colorization exists for, so unlike ``gray`` it is never skipped."""
    lightness = lightness_input(photo)
    return Degraded(image=lightness, degradation="as_is", output_shape=(*lightness.shape[:2], 3))


def lightness_input(photo: np.ndarray) -> np.ndarray:
    """The task's input made of a gray or colour photo: its CIE L / 100, ``H x W x 1``."""
    rgb = as_rgb(np.asarray(photo, np.float32))
    return np.clip(rgb_to_lab(rgb)[..., :1] / 100.0, 0.0, 1.0).astype(np.float32)


def given_gray(degraded: Degraded, clean: np.ndarray) -> Degraded:
    """A pre-degraded pair (``given``): a black-and-white photo beside its colour original, e.g. a
    scan and a colour print of it; the input is the LQ's lightness, as ``gray`` makes it."""
    if degraded.image.shape[:2] != clean.shape[:2]:
        h, w = degraded.image.shape[:2]
        raise ValueError(f"the LQ is {w}x{h}, its GT {clean.shape[1]}x{clean.shape[0]}: they must be the same size")
    if is_gray(clean):
        raise SkipUnit("a gray GT: there is no colour to score a colorization against")
    return Degraded(image=lightness_input(degraded.image), degradation=degraded.degradation, params=degraded.params)


AS_IS = AsIs(
    "a black-and-white or colour photo (its lightness is the input)",
    photo_lightness,
    metrics=("colorfulness", "saturation", "niqe"),
)
