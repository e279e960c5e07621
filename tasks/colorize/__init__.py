"""The colorization task: Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016.

Importing this package registers the task, the ``gray`` degradation (CIE L only), its
colorization statistics (``auc``, ``auc_rebal``, ``colorfulness``, ``colorfulness_gap``,
``saturation``, ``ab_hist_iou``; :mod:`restorebench.tasks.colorize.metrics`), the
baselines ``colorize/gray`` and ``colorize/mean_ab`` and the network ``colorize/eccv16``.
Lab, the 313 bins, soft encoding, rebalancing and decoding: :mod:`restorebench.tasks.colorize.color`.
"""

from __future__ import annotations

from pathlib import Path

from restorebench import Task, register
from restorebench.tasks.colorize import baselines, degradations, metrics, neural  # noqa: F401  (registers)

TASK = Task(
    name="colorize",
    description="colour a gray image (CIE L); ranked by the class-rebalanced AuC of the ab error, with colour statistics",
    metrics=("auc_rebal", "auc", "psnr", "colorfulness", "colorfulness_gap", "saturation", "ab_hist_iou"),
    suite=str(Path(__file__).with_name("suite.yaml")),
    as_is=degradations.AS_IS,
    given=degradations.given_gray,
)
register(TASK)
