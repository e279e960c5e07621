"""The colorization baselines: ``colorize/gray`` (ab = 0) and ``colorize/mean_ab`` (the
training images' mean ab everywhere), both on the input's own lightness."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from restorebench import Degraded, Method, register
from restorebench.tasks.colorize.color import lab_to_rgb
from restorebench.tasks.colorize.degradations import lightness


def with_ab(item: Degraded, ab: np.ndarray) -> np.ndarray:
    """RGB from the input's L and ``ab`` (HxWx2, or 2 values for every pixel)."""
    light = lightness(item)
    ab = np.broadcast_to(np.asarray(ab, dtype=np.float64), (*light.shape, 2))
    return lab_to_rgb(np.concatenate([light[..., None], ab], axis=2))


class _Colorizer(Method):
    task = "colorize"
    ab: ClassVar[tuple[float, float]] = (0.0, 0.0)

    def restore_one(self, item: Degraded) -> np.ndarray:
        return with_ab(item, self.mean_ab())

    def mean_ab(self) -> tuple[float, float]:
        return self.ab


@register
class GrayOutput(_Colorizer):
    name = "gray"
    description = "no colour: ab = 0 (the input's gray, as RGB)"


@register
class MeanAB(_Colorizer):
    name = "mean_ab"
    description = "the training images' mean ab everywhere (BSDS400 + T91, in prior.json)"

    def mean_ab(self) -> tuple[float, float]:
        from restorebench.tasks.colorize.prior import stored

        a, b = stored()["mean_ab"]
        return float(a), float(b)
