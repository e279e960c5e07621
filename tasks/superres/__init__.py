"""The super-resolution task: MATLAB bicubic downscaling x2/x3/x4, classical upscalers.

Importing this package registers the task, its degradation (``bicubic``) and its
methods (``superres/nearest``, ``superres/bilinear``, ``superres/bicubic``,
``superres/lanczos``, and the neural ``superres/srcnn``). The MATLAB-compatible resizer is
:func:`restorebench.imaging.imresize`.
"""

from __future__ import annotations

from pathlib import Path

from restorebench import Task, register
from restorebench.tasks.superres import baselines, degradations, neural  # noqa: F401  (registers components)
from restorebench.tasks.superres.degradations import given_check, given_pair

TASK = Task(
    name="superres",
    description="upscale images shrunk x2/x3/x4 with MATLAB bicubic imresize (LR rounded to uint8); "
    "scored on Y with a border of scale pixels cropped",
    metrics=("psnr_y", "ssim_y", "psnr_y_matlab", "psnr", "ssim"),
    suite=str(Path(__file__).with_name("suite.yaml")),
    given=given_pair,
    given_check=given_check,
    levels=degradations.Levels,
    as_is=degradations.AS_IS,
)
register(TASK)
