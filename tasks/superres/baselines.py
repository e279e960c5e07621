"""Classical upscalers: nearest, bilinear, MATLAB bicubic and Lanczos-3.

Each maps an LR image (float32 ``HxWxC``, C = 1 or 3) to ``(H*scale, W*scale, C)``
float32 with ``scale = item.params["scale"]``, the true factor of the ``bicubic``
degradation (so ``uses_true_level = True``). Outputs are not clipped; the harness
clips and quantises. All are deterministic. Heavy libraries (OpenCV, PIL) are imported
inside the methods.
"""

from __future__ import annotations

import numpy as np

from restorebench import Degraded, Method, register
from restorebench.imaging import imresize

__all__ = ["Nearest", "Bilinear", "BicubicUpscale", "Lanczos"]


class _Upscaler(Method):
    task = "superres"
    kind = "classical"
    version = "1"
    uses_true_level = True

    def restore_one(self, item: Degraded) -> np.ndarray:
        img = np.ascontiguousarray(item.image, dtype=np.float32)
        if img.ndim != 3 or img.shape[2] not in (1, 3):
            raise ValueError(f"expected an HxWx1 or HxWx3 image, got shape {img.shape}")
        scale = _scale(item)
        out = self.upscale(img, scale)
        shape = (img.shape[0] * scale, img.shape[1] * scale, img.shape[2])
        return np.asarray(out, dtype=np.float32).reshape(shape)  # OpenCV drops a single channel axis

    def upscale(self, img: np.ndarray, scale: int) -> np.ndarray:
        raise NotImplementedError


def _scale(item: Degraded) -> int:
    scale = item.params.get("scale")
    if scale is None or int(scale) != scale or scale < 1:
        raise ValueError(
            f"{item.degradation!r} input has no integer 'scale' parameter (params: "
            f"{dict(item.params)}); super-resolution methods need the bicubic degradation or given?scale=N"
        )
    return int(scale)


@register
class Nearest(_Upscaler):
    """Nearest neighbour: every LR pixel repeated ``scale x scale`` times (``np.repeat``)."""

    name = "nearest"
    description = "nearest-neighbour pixel replication"

    def upscale(self, img: np.ndarray, scale: int) -> np.ndarray:
        return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


@register
class Bilinear(_Upscaler):
    """Bilinear interpolation: OpenCV ``cv2.resize(..., INTER_LINEAR)`` on float32.

    Pixel centres aligned (half-pixel convention), border pixels replicated; for integer
    upscaling this equals MATLAB's ``imresize(..., 'bilinear')``.
    """

    name = "bilinear"
    description = "bilinear interpolation (OpenCV INTER_LINEAR, float32)"

    def upscale(self, img: np.ndarray, scale: int) -> np.ndarray:
        import cv2

        size = (img.shape[1] * scale, img.shape[0] * scale)  # OpenCV wants (width, height)
        return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


@register
class BicubicUpscale(_Upscaler):
    """MATLAB bicubic upscaling: :func:`restorebench.imaging.imresize` ``(lr, scale)``.

    The reference baseline of the published tables: on Set5 at x2 / x3 / x4, 33.65 / 30.39 /
    28.42 dB with ``psnr_y_matlab`` (Y rounded as MATLAB does; the tables print 33.66 / 30.39 /
    28.42) and 33.68 / 30.40 / 28.43 with ``psnr_y`` (unrounded Y, BasicSR's convention).
    """

    name = "bicubic"
    description = "MATLAB-compatible bicubic (cubic a=-0.5) interpolation"

    def upscale(self, img: np.ndarray, scale: int) -> np.ndarray:
        return imresize(img, scale)


@register
class Lanczos(_Upscaler):
    """Lanczos-3 interpolation: PIL ``Image.resize(..., LANCZOS)`` per channel in float ("F") mode.

    PIL's Lanczos filter has support 3 (``sinc(x) sinc(x/3)``, ``|x| < 3``); its taps are
    cut at the image border and the remaining weights renormalised.
    """

    name = "lanczos"
    description = "Lanczos-3 interpolation (PIL, float mode, per channel)"

    def upscale(self, img: np.ndarray, scale: int) -> np.ndarray:
        from PIL import Image

        size = (img.shape[1] * scale, img.shape[0] * scale)
        planes = [
            np.asarray(Image.fromarray(img[:, :, c]).resize(size, Image.Resampling.LANCZOS))
            for c in range(img.shape[2])
        ]
        return np.stack(planes, axis=-1)
