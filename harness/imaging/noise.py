"""The noise level of an image: Donoho and Johnstone's wavelet MAD, as scikit-image estimates it."""

from __future__ import annotations

import numpy as np


def noise_sigma(image: np.ndarray) -> float:
    """The Gaussian noise std of an ``HxW`` or ``HxWxC`` image, in the image's own units
    (``[0, 1]`` for the harness's images), averaged over channels. Computed in the image's
    own precision: callers that want float64 convert first."""
    from skimage.restoration import estimate_sigma

    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    return float(estimate_sigma(image, average_sigmas=True, channel_axis=-1))
