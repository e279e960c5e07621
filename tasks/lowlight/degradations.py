"""Low-light degradations: synthetic SID-style raw pairs, real SID pairs, sRGB underexposure.

- ``lowlight?ratio=R&iso=I`` -- the clean sRGB image is unprocessed into a 14-bit RGGB
  raw (Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019), exposed
  ``R`` times shorter with Poisson-Gaussian noise and written as DNG
  (:mod:`restorebench.tasks.lowlight.synthetic`); the input is the packed short exposure, the reference
  the rendered long exposure, as in SID (Chen et al., "Learning to See in the Dark",
  CVPR 2018).
- ``sid`` -- the real short exposure of a ``sid:`` dataset's pair.
- ``underexpose?ratio=R&noise=S`` -- an 8-bit sRGB image made ``R`` times darker in linear
  light (for DeepUPE-style methods that work on sRGB).

Raw inputs (``lowlight``, ``sid``) share one layout: ``Degraded.image`` is the packed
short exposure ``(H/2, W/2, 4)`` float32 (R, G, B, G2, black-subtracted, divided by
``white - black``, *not* amplified); ``params = {"ratio": R}``; ``reference`` is the
rendered long exposure ``(H, W, 3)``; ``extras`` hold ``raw_file`` (the short exposure's
raw bytes), ``black_level``, ``white_level``, ``cfa`` (e.g. ``"RGGB"``) and ``wb``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from restorebench import Degradation, Degraded, ImageRef, Params, SkipUnit, Source, register
from restorebench.imaging import as_rgb, float_image
from restorebench.tasks.lowlight.raw import RawImage, pack_bayer, read_raw, render
from restorebench.tasks.lowlight.synthetic import linear_to_srgb, make_pair, srgb_to_linear

__all__ = [
    "LowLight",
    "Sid",
    "Underexpose",
    "RAW_DEGRADATIONS",
    "is_raw",
    "raw_extras",
    "require_raw",
    "require_srgb",
]

RAW_DEGRADATIONS = ("lowlight", "sid")  # degradations whose input is a packed raw


def _rgb_even(image: np.ndarray) -> np.ndarray:
    """Float HxWx3, top-left crop to even sides (gray is repeated over three channels)."""
    image = as_rgb(float_image(image))
    h, w = image.shape[0] - image.shape[0] % 2, image.shape[1] - image.shape[1] % 2
    if min(h, w) < 22:
        raise ValueError(f"image of shape {image.shape} is too small for a raw file (LibRaw needs 22x22)")
    return image[:h, :w, :3]


def raw_extras(raw: RawImage, raw_file: bytes) -> dict[str, Any]:
    """The ``extras`` of a raw input: the file and what a raw method needs to read it."""
    return {
        "raw_file": raw_file,
        "black_level": raw.black_level,
        "white_level": raw.white_level,
        "cfa": raw.cfa_name,
        "wb": raw.wb,
    }


class _LowLightParams(Params):
    ratio: float = Field(gt=1, allow_inf_nan=False, description="exposure ratio long/short (SID: 100, 250, 300)")
    iso: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="ISO fixing the shot-noise gain; None: sampled (ISO 100-12000)"
    )


@register
class LowLight(Degradation):
    """A synthetic SID pair: packed noisy short exposure in, rendered long exposure as reference.

    The clean image is cropped to even sides (top-left kept; gray is made RGB), both
    exposures go through DNG and rawpy (:func:`restorebench.tasks.lowlight.synthetic.make_pair`), the
    input is ``pack_bayer(short)`` and the reference ``render(long)``; LibRaw renders a
    DNG at the mosaic's size, so the reference is ``H x W x 3``. ``extras`` also holds
    ``noise`` (shot, read, iso). Deterministic for a given ``rng``.

    Example
    -------
    >>> deg = LowLight(LowLight.Params(ratio=100))
    >>> out = deg.apply(np.full((33, 48, 3), 0.5, np.float32), np.random.default_rng(0))
    >>> out.image.shape, out.reference.shape, out.params
    ((16, 24, 4), (32, 48, 3), {'ratio': 100.0})
    """

    name = "lowlight"
    task = "lowlight"
    level = "ratio"
    version = "1"
    Params = _LowLightParams

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        clean = _rgb_even(image)
        pair = make_pair(clean, rng, ratio=self.params.ratio, iso=self.params.iso)
        short = read_raw(pair.short_dng, name="synthetic short exposure")
        extras = raw_extras(short, pair.short_dng)
        extras["noise"] = {"shot": pair.noise.shot, "read": pair.noise.read, "iso": pair.noise.iso}  # type: ignore[union-attr]
        return Degraded(
            image=pack_bayer(short),
            degradation=self.name,
            params={"ratio": float(self.params.ratio)},
            reference=render(pair.long_dng, name="synthetic long exposure"),
            extras=extras,
        )


@register
class Sid(Degradation):
    """The real short exposure of a SID pair (needs a ``sid:`` dataset).

    ``degrade`` asks the :class:`restorebench.tasks.lowlight.sources.SidSource` for the pair's short raw
    file and ratio ``min(long / short, 300)``; the reference is the rendered long exposure
    (the source's image). Same ``Degraded`` layout as ``lowlight``; ``rng`` is unused.
    """

    name = "sid"
    task = "lowlight"
    version = "1"

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        raise ValueError(
            "the 'sid' degradation reads real short exposures and needs a sid: dataset "
            "(e.g. sid:Sony_test_list.txt?root=DIR); for other images use 'lowlight?ratio=...'"
        )

    def degrade(self, source: Source, image: ImageRef, clean: np.ndarray, rng: np.random.Generator) -> Degraded:
        if not callable(getattr(source, "load_short", None)):  # a sid: source, or a card read through one
            raise ValueError(
                f"the 'sid' degradation needs a sid: dataset, not {source.ref!r}; "
                "for other images use 'lowlight?ratio=...'"
            )
        pair = source.pair(image)
        data = source.short_bytes(image)
        short = source.load_short(image)
        extras = raw_extras(short, data)
        extras["iso"] = pair.iso
        return Degraded(
            image=pack_bayer(short),
            degradation=self.name,
            params={"ratio": float(pair.ratio)},  # type: ignore[arg-type]
            reference=clean,
            extras=extras,
        )


class _UnderexposeParams(Params):
    ratio: float = Field(gt=1, allow_inf_nan=False, description="how many times darker, in linear light")
    noise: float = Field(0.0, ge=0, allow_inf_nan=False, description="Gaussian noise std, 0-255 units, added in sRGB")


@register
class Underexpose(Degradation):
    """An underexposed 8-bit sRGB image: ``srgb(linear(clean) / ratio) + noise``, rounded.

    The clean image is linearised with the sRGB EOTF, divided by ``ratio``, re-encoded,
    given optional Gaussian noise of std ``noise / 255`` (drawn only when ``noise > 0``),
    clipped to [0, 1] and rounded to 8-bit levels. The reference is the clean image.
    """

    name = "underexpose"
    task = "lowlight"
    level = "ratio"
    version = "1"
    Params = _UnderexposeParams

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        image = float_image(image)
        dark = linear_to_srgb(srgb_to_linear(image) / self.params.ratio)
        if self.params.noise > 0:
            dark = dark + rng.standard_normal(dark.shape) * (self.params.noise / 255.0)
        out = np.round(np.clip(dark, 0.0, 1.0) * 255.0) / 255.0
        return Degraded(
            image=out.astype(np.float32),
            degradation=self.name,
            params={"ratio": float(self.params.ratio), "noise": float(self.params.noise)},
        )


def is_raw(item: Degraded) -> bool:
    """Whether ``item`` is a packed raw input: of a raw degradation, or a raw photo taken as it is."""
    return item.degradation in RAW_DEGRADATIONS or "cfa" in item.extras


def require_srgb(item: Degraded, method: str, raw_alternative: str) -> np.ndarray:
    """The sRGB image (H, W, 1|3) of ``item``, or a ValueError naming ``raw_alternative``
    for raw inputs, which sRGB-only methods cannot read (a raw photo taken ``as_is``: SkipUnit)."""
    image = np.asarray(item.image, np.float32)
    if is_raw(item) or image.ndim != 3 or image.shape[2] not in (1, 3):
        if item.degradation == "as_is":  # a raw photo among a user's: not this method's, not a failure
            raise SkipUnit(f"{method} works on sRGB photos and this one is raw: use {raw_alternative}")
        raise ValueError(
            f"{method} works on sRGB inputs (e.g. degradation 'underexpose'), got a "
            f"{item.degradation!r} input of shape {image.shape}; for raw inputs use {raw_alternative}"
        )
    return image


def require_raw(item: Degraded, method: str, srgb_alternative: str, *, raw_file: bool = True) -> np.ndarray:
    """The packed raw (h, w, 4) of a raw input with its ``params['ratio']`` (and, when
    ``raw_file``, its ``extras['raw_file']``), or a ValueError naming ``srgb_alternative``
    (an sRGB photo taken ``as_is``: SkipUnit)."""
    image = np.asarray(item.image)
    if not is_raw(item) or image.ndim != 3 or image.shape[2] != 4:
        if item.degradation == "as_is":  # an sRGB photo among a user's: not this method's, not a failure
            raise SkipUnit(f"{method} works on raw photos (raw:DIR) and this one is sRGB: use {srgb_alternative}")
        raise ValueError(
            f"{method} works on packed raw inputs (degradations {', '.join(RAW_DEGRADATIONS)}, or raw photos "
            "of a raw:DIR dataset), got a "
            f"{item.degradation!r} input of shape {image.shape}; for sRGB inputs use {srgb_alternative}"
        )
    missing = ([] if "ratio" in item.params else ["params['ratio']"]) + (
        [] if not raw_file or "raw_file" in item.extras else ["extras['raw_file']"]
    )
    if missing:
        raise ValueError(
            f"{method} needs {' and '.join(missing)} of its {item.degradation!r} input, which raw "
            "degradations provide; was the input built by hand?"
        )
    return image


class Levels(Params):
    """What a pre-degraded low-light pair may state it stands for (``given?ratio=100``)."""

    ratio: float | None = Field(None, gt=0, allow_inf_nan=False, description="exposure ratio the LQ stands for")
