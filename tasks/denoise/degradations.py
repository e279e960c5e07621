"""Denoising degradations: additive Gaussian noise and salt-and-pepper impulses.

Both are pure functions of ``(image, rng)``: the same generator state gives a
bit-identical output, and every random draw comes from ``rng``. Inputs are float
images (``HxWxC`` or ``HxW``) in [0, 1]; outputs are float32 of the same shape.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from restorebench import AsIs, Degradation, Degraded, ImageRef, Params, Source, register
from restorebench.imaging import float_image

__all__ = ["GaussianNoise", "SaltPepperNoise"]


class _GaussianParams(Params):
    sigma: float = Field(ge=0, allow_inf_nan=False, description="noise std in 0-255 units")
    clip: bool = Field(False, description="clip the noisy image to [0, 1] (DnCNN protocol: no)")


@register
class GaussianNoise(Degradation):
    """Additive white Gaussian noise, ``sigma`` in 0-255 units (DnCNN protocol).

    The noise is added on the 0-255 scale, i.e. an image in [0, 1] gets zero-mean
    noise of std ``sigma / 255``, drawn as ``rng.standard_normal(shape, float64)``
    and added in float64 before the cast to float32. Every channel of every pixel
    gets its own draw. The result is not clipped unless ``clip=true``, so values
    may leave [0, 1], as in the DnCNN training and test protocol.

    Example
    -------
    >>> import numpy as np
    >>> deg = GaussianNoise(GaussianNoise.Params(sigma=25))
    >>> out = deg.apply(np.full((8, 8, 3), 0.5, np.float32), np.random.default_rng(0))
    >>> out.image.dtype, out.params
    (dtype('float32'), {'sigma': 25.0, 'clip': False})
    """

    name = "gaussian"
    task = "denoise"
    level = "sigma"
    version = "1"
    Params = _GaussianParams

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        image = float_image(image)
        sigma, clip = self.params.sigma, self.params.clip
        noise = rng.standard_normal(image.shape, dtype=np.float64) * sigma / 255.0
        noisy = image.astype(np.float64) + noise
        if clip:
            np.clip(noisy, 0.0, 1.0, out=noisy)
        return Degraded(
            image=noisy.astype(np.float32), degradation=self.name, params={"sigma": float(sigma), "clip": bool(clip)}
        )


class _SaltPepperParams(Params):
    density: float = Field(ge=0, le=1, description="fraction of pixels corrupted")
    salt_ratio: float = Field(0.5, ge=0, le=1, description="fraction of corrupted pixels set to 1")


@register
class SaltPepperNoise(Degradation):
    """Salt-and-pepper impulse noise: a fraction ``density`` of pixels set to 1 or 0.

    Whole pixels are corrupted (all channels together, so a colour pixel becomes
    white or black, not a single saturated channel). Each pixel is corrupted with
    probability ``density``; a corrupted pixel is salt (1) with probability
    ``salt_ratio`` and pepper (0) otherwise. Two uniform fields of shape ``H x W``
    are always drawn with ``rng.random`` (positions, then salt/pepper choice), so
    the generator is consumed the same way whatever the parameters.
    """

    name = "saltpepper"
    task = "denoise"
    level = "density"
    version = "1"
    Params = _SaltPepperParams

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        image = float_image(image)
        hw = image.shape[:2]
        corrupted = rng.random(hw) < self.params.density
        is_salt = rng.random(hw) < self.params.salt_ratio
        out = np.array(image, dtype=np.float32, copy=True)
        out[corrupted & is_salt] = 1.0
        out[corrupted & ~is_salt] = 0.0
        return Degraded(
            image=out,
            degradation=self.name,
            params={"density": float(self.params.density), "salt_ratio": float(self.params.salt_ratio)},
        )


class PhotoParams(Params):
    sigma: float | None = Field(
        None, gt=0, le=255, allow_inf_nan=False, description="noise std (0-255) non-blind methods are told"
    )


def noisy_photo(photo: np.ndarray, params: PhotoParams, image: ImageRef, source: Source) -> Degraded:
    """A real noisy photo as it is (degradation ``as_is``); ``sigma``, when a user knows it, goes
    to non-blind methods, which otherwise estimate it from the photo as for any input."""
    level = {"sigma": float(params.sigma)} if params.sigma is not None else {}
    return Degraded(image=np.asarray(photo, np.float32), degradation="as_is", params=level)


AS_IS = AsIs("a noisy photo (as_is?sigma=S: its noise level, if known)", noisy_photo, params=PhotoParams)


class Levels(Params):
    """What a pre-degraded denoising pair may state it stands for (``given?sigma=25``, a column)."""

    sigma: float | None = Field(None, ge=0, allow_inf_nan=False, description="Gaussian noise std (0-255)")
    density: float | None = Field(None, gt=0, lt=1, description="salt-and-pepper density")
