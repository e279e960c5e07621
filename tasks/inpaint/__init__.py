"""The inpainting task: irregular holes (Liu et al., "Image Inpainting for Irregular Holes
Using Partial Convolutions", ECCV 2018), results per hole-ratio bin.

Importing this package registers the task, the ``mask`` degradation (seeded free-form
masks or a user's mask folder; :mod:`restorebench.tasks.inpaint.masks`), its metrics
(``l1``, ``hole_psnr``, ``hole_ssim``, ``hole_l1``; :mod:`restorebench.tasks.inpaint.metrics`),
the classical fills (``inpaint/mean``, ``telea``, ``navier_stokes``, ``biharmonic``) and the
networks (``inpaint/pconv``, ``inpaint/vae``).
"""

from __future__ import annotations

from pathlib import Path

from restorebench import Task, register
from restorebench.tasks.inpaint import baselines, degradations, metrics, neural  # noqa: F401  (registers components)

TASK = Task(
    name="inpaint",
    description="fill irregular holes (free-form masks binned by hole ratio); scored on the whole image and in the holes",
    metrics=("psnr", "ssim", "l1", "hole_psnr", "hole_ssim", "hole_l1"),
    suite=str(Path(__file__).with_name("suite.yaml")),
    as_is=degradations.AS_IS,
    given_check=degradations.given_check,
)
register(TASK)
