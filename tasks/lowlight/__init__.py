"""The low-light task: SID-style raw short exposures and underexposed sRGB images.

Importing this package registers the task, the ``sid:`` and ``raw:`` dataset sources, the degradations
(``lowlight`` synthetic raw pairs, ``sid`` real SID pairs, ``underexpose`` sRGB) and the
classical methods (``lowlight/camera``, ``camera_histeq``, ``camera_gamma``,
``camera_nlmeans``, ``camera_bm3d``; ``lowlight/gamma`` and ``lowlight/histeq`` for sRGB).
Raw I/O (rawpy, DNG writing) is in :mod:`restorebench.tasks.lowlight.raw`, the synthetic pairs in
:mod:`restorebench.tasks.lowlight.synthetic`. References: Chen et al., "Learning to See in the Dark",
CVPR 2018; Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019.
"""

from __future__ import annotations

from pathlib import Path

from restorebench import Task, register
from restorebench.tasks.lowlight import baselines, degradations, neural, photos, sources  # noqa: F401  (registers)

TASK = Task(
    name="lowlight",
    description="restore raw short exposures (synthetic SID-style pairs or real SID list files) "
    "and underexposed sRGB images; scored against the rendered long exposure / the clean image",
    metrics=("psnr", "ssim"),
    suite=str(Path(__file__).with_name("suite.yaml")),
    levels=degradations.Levels,
    as_is=photos.AS_IS,
)
register(TASK)
