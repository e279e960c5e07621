"""The super-resolution degradation: MATLAB bicubic downscaling, LR rounded to 8 bits.

This is the protocol under the published Set5/Set14/B100/Urban100 numbers (SRCNN,
VDSR, EDSR, BasicSR): HR = the clean image cropped to a multiple of the scale
(``modcrop``), LR = MATLAB ``imresize(HR, 1/scale, 'bicubic')`` (antialiased) stored
as uint8, scores on the Y channel with a border of ``scale`` pixels left out. With it,
bicubic upscaling gives 33.65 / 30.39 / 28.42 dB on Set5 at x2 / x3 / x4 with Y rounded as
MATLAB's ``rgb2ycbcr`` on uint8 (``psnr_y_matlab``; the tables print 33.66 / 30.39 / 28.42),
and 33.68 / 30.40 / 28.43 with the unrounded Y of ``psnr_y`` (BasicSR's convention).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from restorebench import AsIs, Degradation, Degraded, ImageRef, Params, Source, register
from restorebench.imaging import float_image, imresize, modcrop

__all__ = ["Bicubic", "SCALES"]

SCALES = (2, 3, 4)


class _BicubicParams(Params):
    scale: int = Field(description="downscaling factor: 2, 3 or 4")

    @field_validator("scale", mode="before")
    @classmethod
    def _one_of_the_scales(cls, value: Any) -> int:
        text = value.strip() if isinstance(value, str) else None
        for scale in SCALES:
            if text == str(scale) or (text is None and not isinstance(value, bool) and value == scale):
                return scale
        raise ValueError(f"scale must be one of {', '.join(map(str, SCALES))}")


@register
class Bicubic(Degradation):
    """MATLAB bicubic downscaling by ``scale`` (2, 3 or 4), LR on the 8-bit grid.

    ``apply`` crops the image to a multiple of the scale (top-left kept), shrinks it with
    :func:`restorebench.imaging.imresize` (MATLAB-compatible, antialiased) and rounds
    the result to 8-bit levels, ``round(clip(lr * 255, 0, 255)) / 255``, as the
    published protocol stores LR images as uint8. The cropped HR image is the
    reference the metrics compare with (``Degraded.reference``), and the metrics leave
    out a border of ``scale`` pixels (``crop_border``). Deterministic: ``rng`` is unused.

    Example
    -------
    >>> import numpy as np
    >>> deg = Bicubic(Bicubic.Params(scale=3))
    >>> out = deg.apply(np.full((101, 77, 3), 0.5, np.float32), np.random.default_rng(0))
    >>> out.image.shape, out.reference.shape, out.crop_border
    ((33, 25, 3), (99, 75, 3), 3)
    """

    name = "bicubic"
    task = "superres"
    level = "scale"
    version = "1"
    Params = _BicubicParams

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        scale = self.params.scale
        hr = modcrop(float_image(image), scale)
        if hr.shape[0] == 0 or hr.shape[1] == 0:
            raise ValueError(f"image of shape {image.shape} is smaller than the scale {scale}")
        lr = imresize(hr, 1 / scale)
        lr = (np.round(np.clip(lr * 255.0, 0.0, 255.0)) / 255.0).astype(np.float32)
        return Degraded(
            image=lr, degradation=self.name, params={"scale": scale}, crop_border=scale, reference=hr.astype(np.float32)
        )


def given_pair(degraded: Degraded, clean: np.ndarray) -> Degraded:
    """A pre-degraded pair (``given?scale=N``) under the same protocol as ``bicubic``: the HR
    cropped to a multiple of the scale (the reference), the LR checked to be HR / scale,
    ``scale`` pixels of border left out of the scores."""
    problem = given_check(clean.shape[:2], degraded.image.shape[:2], degraded.params)
    if problem:
        raise ValueError(problem)
    scale = int(degraded.params["scale"])
    return Degraded(
        image=degraded.image,
        degradation=degraded.degradation,
        params={**degraded.params, "scale": scale},
        crop_border=scale,
        reference=modcrop(clean, scale),
    )


def given_check(hr: tuple[int, int], lr: tuple[int, int], levels: Mapping[str, Any]) -> str | None:
    """Why an (HR, LR) pair of these sizes cannot be scored at its scale (None: it can): the
    scale must be known, and the LR must be the HR modcropped to the scale, divided by it."""
    scale = levels.get("scale")
    if scale is None:
        return "super-resolution pairs need the factor they stand for: given?scale=N (or a scale column)"
    scale = int(scale)
    want = (hr[0] // scale, hr[1] // scale)
    if tuple(lr) != want:
        crop = (want[0] * scale, want[1] * scale)
        return (
            f"the LR is {lr[1]}x{lr[0]}, but its HR ({hr[1]}x{hr[0]}, {crop[1]}x{crop[0]} after modcrop) "
            f"needs {want[1]}x{want[0]} at scale {scale}"
        )
    return None


def low_resolution_photo(photo: np.ndarray, params: _BicubicParams, image: ImageRef, source: Source) -> Degraded:
    """A low-resolution photo as it is (degradation ``as_is?scale=N``): the method returns it
    ``scale`` times larger on each side."""
    scale = params.scale
    photo = np.asarray(photo, np.float32)
    h, w = photo.shape[:2]
    return Degraded(
        image=photo, degradation="as_is", params={"scale": scale}, output_shape=(h * scale, w * scale, *photo.shape[2:])
    )


AS_IS = AsIs(
    "a low-resolution photo and the factor to upscale it by (as_is?scale=2, 3 or 4)",
    low_resolution_photo,
    params=_BicubicParams,
)


class Levels(Params):
    """What a pre-degraded super-resolution pair may state it stands for (``given?scale=4``)."""

    scale: int | None = Field(None, ge=2, le=8, description="the factor the LR stands for")
