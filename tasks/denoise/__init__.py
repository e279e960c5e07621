"""The denoising task: Gaussian and salt-and-pepper noise, classical baselines.

Importing this package registers the task, its degradations (``gaussian``,
``saltpepper``) and its methods (``denoise/identity``, ``denoise/median``, ..., ``denoise/dncnn``).
Its report adds a "filters" section (hybrid images, pyramids, the baselines' kernels:
:mod:`restorebench.tasks.denoise.filters_page`).
"""

from __future__ import annotations

from pathlib import Path

from restorebench import Task, register
from restorebench.tasks.denoise import baselines, degradations, neural  # noqa: F401  (registers components)
from restorebench.tasks.denoise.filters_page import filters_section

TASK = Task(
    name="denoise",
    description="remove additive Gaussian noise (sigma in 0-255 units, DnCNN protocol) "
    "and salt-and-pepper impulse noise",
    metrics=("psnr", "ssim", "psnr_y", "ssim_y"),
    suite=str(Path(__file__).with_name("suite.yaml")),
    report_section=filters_section,
    report_title="filters",
    levels=degradations.Levels,
    as_is=degradations.AS_IS,
)
register(TASK)
