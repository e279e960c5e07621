"""Classical denoisers: local filters, Wiener, NL-means, TV, wavelets and BM3D.

Every method takes a float32 ``HxWxC`` input (C = 1 or 3; noisy values may lie a
little outside [0, 1]) and returns a float32 array of the same shape; the harness
clips and quantises. All methods are deterministic.

Parameters default to ``None``, meaning "auto": chosen by the method's ``auto()``
rule from the noise level (:func:`restorebench.tasks.denoise.levels.noise_level`: the true sigma
of a ``gaussian`` input, the true density of a ``saltpepper`` one, otherwise a
sigma estimated from the image). The rules were tuned on the five scikit-image
photos (astronaut, camera, chelsea, coffee, rocket) at Gaussian sigma 5/15/25/50 and
salt-and-pepper density 0.05/0.1/0.2, maximising the mean PSNR of 8-bit outputs;
each docstring quotes the evidence and ``tasks/denoise/README.md`` has the table.
Heavy libraries (OpenCV, SciPy, scikit-image, bm3d) are imported inside the methods.
"""

from restorebench.tasks.denoise.baselines.local import Bilateral, Binomial, Box, Gaussian, Identity, Median, Wiener
from restorebench.tasks.denoise.baselines.priors import BM3D, TV, NLMeans, Wavelet

__all__ = [
    "Identity",
    "Box",
    "Gaussian",
    "Binomial",
    "Median",
    "Bilateral",
    "Wiener",
    "NLMeans",
    "TV",
    "Wavelet",
    "BM3D",
]
