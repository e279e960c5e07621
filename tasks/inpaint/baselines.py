"""Classical inpainting: mean fill, OpenCV's Telea and Navier-Stokes, scikit-image's biharmonic.

Every inpainting method (classical or neural) subclasses :class:`InpaintMethod`: it
computes a fill for the holes and the base pastes the known pixels back,
``output = mask * input + (1 - mask) * fill``, so the scores measure only what was
inpainted. The mask comes from ``Degraded.extras["mask"]`` (1 = valid, 0 = hole).

- ``inpaint/mean``: each channel's mean over the valid pixels.
- ``inpaint/telea``: A. Telea, "An Image Inpainting Technique Based on the Fast Marching
  Method", J. Graphics Tools 9(1), 2004 (``cv2.inpaint`` with ``INPAINT_TELEA``).
- ``inpaint/navier_stokes``: Bertalmio, Bertozzi, Sapiro, "Navier-Stokes, Fluid Dynamics,
  and Image and Video Inpainting", CVPR 2001 (``cv2.INPAINT_NS``).
  OpenCV inpaints 8-bit images: the input is rounded to uint8 first, the output divided by 255.
- ``inpaint/biharmonic``: Damelin and Hoang, "On Surface Completion and Image Inpainting by
  Biharmonic Functions", 2018 (``skimage.restoration.inpaint_biharmonic``, on the float image).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from restorebench import Degraded, Method, Params, UserError, register


def mask_of(item: Degraded) -> np.ndarray:
    """The unit's mask as ``H x W x 1`` float32 (1 = valid), or a UserError when there is none."""
    mask = item.extras.get("mask")
    if mask is None:
        raise UserError("an inpainting method needs the mask degradation's mask (Degraded.extras['mask'])")
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != item.image.shape[:2]:
        raise ValueError(f"the mask is {mask.shape}, the image {item.image.shape[:2]}")
    return mask[..., None]


def paste(known: np.ndarray, mask: np.ndarray, fill: np.ndarray) -> np.ndarray:
    """``mask * known + (1 - mask) * fill``; ``fill`` may hold several samples (N x H x W x C)."""
    return (mask * known + (1.0 - mask) * fill).astype(np.float32)


class InpaintMethod(Method):
    """Base of every inpainting method: :meth:`fill` the holes; the known pixels are pasted back."""

    task = "inpaint"
    uses_mask: ClassVar[bool] = True  # reads Degraded.extras["mask"]

    def fill(self, image: np.ndarray, mask: np.ndarray, item: Degraded) -> np.ndarray:
        """Values for the holes: an ``H x W x C`` image (or ``N x H x W x C`` samples);
        ``image`` is the degraded input (holes set to a constant), ``mask`` ``H x W x 1``."""
        raise NotImplementedError

    def restore_one(self, item: Degraded) -> np.ndarray:
        mask = mask_of(item)
        return paste(item.image, mask, self.fill(item.image, mask, item))


@register
class MeanFill(InpaintMethod):
    name = "mean"
    description = "each channel's mean over the valid pixels"

    def fill(self, image: np.ndarray, mask: np.ndarray, item: Degraded) -> np.ndarray:
        valid = mask[..., 0] > 0.5
        if not valid.any():
            raise ValueError("the mask has no valid pixel: nothing to take a mean of")
        return np.broadcast_to(image[valid].mean(axis=0), image.shape)


OPENCV_RADIUS = 3  # OpenCV's inpaintRadius, as its samples use; the networks' Telea fill too


class _OpenCVParams(Params):
    radius: int = Field(
        OPENCV_RADIUS, ge=1, le=50, description="neighbourhood radius in pixels (OpenCV's inpaintRadius)"
    )


class _OpenCV(InpaintMethod):
    Params = _OpenCVParams
    flag_name: ClassVar[str] = ""

    def fill(self, image: np.ndarray, mask: np.ndarray, item: Degraded) -> np.ndarray:
        return opencv_inpaint(image, mask[..., 0] < 0.5, self.flag_name, self.params.radius)


@register
class Telea(_OpenCV):
    name = "telea"
    flag_name = "INPAINT_TELEA"
    description = "fast marching (Telea 2004), OpenCV, 8-bit"


@register
class NavierStokes(_OpenCV):
    name = "navier_stokes"
    flag_name = "INPAINT_NS"
    description = "Navier-Stokes (Bertalmio et al. 2001), OpenCV, 8-bit"


@register
class Biharmonic(InpaintMethod):
    name = "biharmonic"
    description = "biharmonic completion, scikit-image, float"

    def fill(self, image: np.ndarray, mask: np.ndarray, item: Degraded) -> np.ndarray:
        return biharmonic_inpaint(image, mask[..., 0] < 0.5)


def opencv_inpaint(image: np.ndarray, holes: np.ndarray, flag_name: str, radius: int = OPENCV_RADIUS) -> np.ndarray:
    """OpenCV's inpainting (``flag_name``: ``INPAINT_TELEA`` or ``INPAINT_NS``) of the ``holes``
    (``H x W`` bool) of an ``H x W x C`` float image, on its 8-bit rounding; float32 out."""
    import cv2

    data = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    out = cv2.inpaint(
        data[..., 0] if data.shape[2] == 1 else data, holes.astype(np.uint8) * 255, radius, getattr(cv2, flag_name)
    )
    return out.reshape(image.shape).astype(np.float32) / 255.0


def biharmonic_inpaint(image: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """scikit-image's biharmonic completion of the ``holes`` of an ``H x W x C`` float image."""
    from skimage.restoration import inpaint_biharmonic

    if image.shape[2] == 1:
        return inpaint_biharmonic(image[..., 0], holes)[..., None]
    return inpaint_biharmonic(image, holes, channel_axis=-1)
