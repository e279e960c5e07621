"""Two classical denoisers the tasks share: NL-means (scikit-image) and BM3D (an optional extra).

Both are called one way everywhere (the same NL-means settings a task tuned, the same BM3D
entry points), so a baseline of denoising and one of low light filter alike; the BM3D package
is imported only where it is used and its absence is one clear error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from restorebench.core.errors import UserError


def nl_means(image: np.ndarray, *, h: float, sigma: float, patch_size: int, patch_distance: int) -> np.ndarray:
    """Non-local means (Buades et al. 2005; scikit-image's fast mode, patches joint over the
    channels of an ``HxWxC`` image), told the noise ``sigma`` (same units as the image)."""
    from skimage.restoration import denoise_nl_means

    return denoise_nl_means(
        image,
        patch_size=patch_size,
        patch_distance=patch_distance,
        h=h,
        sigma=sigma,
        fast_mode=True,
        channel_axis=-1,
    )


def require_bm3d(method: str) -> Any:
    """The ``bm3d`` module, or a UserError naming ``method`` and how to install it."""
    try:
        import bm3d
    except ImportError:
        raise UserError(
            f"{method} needs the optional 'bm3d' package, which is not installed",
            hint="pip install restorebench[bm3d] (note: the bm3d package is free for non-commercial use only)",
        ) from None
    return bm3d


def bm3d_denoise(image: np.ndarray, sigma: float, method: str = "bm3d") -> np.ndarray:
    """BM3D (Dabov et al. 2007) of an ``HxWx3`` (``bm3d_rgb``) or ``HxWx1`` image in float64,
    told the noise ``sigma`` (same units as the image)."""
    bm3d = require_bm3d(method)
    if image.shape[2] == 3:
        return bm3d.bm3d_rgb(image.astype(np.float64), sigma)
    return bm3d.bm3d(image[..., 0].astype(np.float64), sigma)
