"""The metric contract: a named, versioned score, and what its number means.

A metric states its **direction** (``higher`` or ``lower`` is better, ``target``: closer to
a value is better, ``none``: a descriptive statistic, shown but never ranked or gated), its
**unit** (``dB``, ``ab units``; ``""`` for a plain fraction or score) and how it
**aggregates** over a group of images: the mean of per-image values, or a set-level
reduction of small per-image statistics (pooled AuC over every pixel of a test set,
FID-like scores). Leaderboard ranks, the distance to the best, plots, sample labels, the
oracle of sampled methods and ``compare``'s verdicts all read these declarations through
:meth:`Metric.goodness`; nothing assumes "higher, in dB".

A set-level metric's ``fn`` returns a 1-D float array of per-image statistics and its
``reduce(stats, weights)`` combines the rows of a group (``weights``: how many times each
image counts, e.g. in a bootstrap resample). Its per-image value is the reduction over a
set of one image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from restorebench.core.interfaces import Degraded

Direction = Literal["higher", "lower", "target", "none"]
DIRECTIONS: tuple[str, ...] = ("higher", "lower", "target", "none")

ScoreFn = Callable[[np.ndarray, np.ndarray, "Degraded"], Any]  # a float, or a set-level metric's statistics
SetReduce = Callable[[np.ndarray, np.ndarray], float]  # (stats: n x k, weights: n) -> the group's value
Configure = Callable[["Metric", Mapping[str, Any]], "Metric"]  # (metric, reference parameters) -> configured


@dataclass(frozen=True)
class Metric:
    """A named, versioned score of a restored image against its clean reference.

    The name and version fix the protocol (colour space, crop border, data range,
    rounding, a set-level metric's reduction): results of different versions are never
    compared or aggregated together. ``direction`` also takes the old ``higher_is_better``
    flag (``True``/``False``). ``configure``, when given, builds the metric for a
    reference's parameters (``auc_rebal?prior=FILE``); it returns a metric whose name is
    the reference and whose version records the parameters.

    >>> m = Metric("gap", lambda r, c, d: 0.0, "1", "target", "output minus original", target=0.0)
    >>> m.goodness(-13.0) > m.goodness(30.0)
    True
    """

    name: str
    fn: ScoreFn
    version: str
    direction: Direction | bool = "higher"
    description: str = ""
    unit: str = ""
    target: float | None = None
    reduce: SetReduce | None = None
    aggregation: str = ""  # how a set-level metric combines a group, in words
    configure: Configure | None = None
    parameters: str = ""  # what ``configure`` takes, for listings: ``prior=FILE``
    # A set-level metric whose statistics add up: its value for a set is its reduction of the
    # images' summed statistics (one row, weight 1), which a query sums out of core.
    additive: bool = False
    # Whether it compares the output with a clean reference (false: a no-reference score such
    # as NIQE, which looks at the output alone and ignores ``clean``).
    reference: bool = True

    def __post_init__(self) -> None:
        direction = self.direction
        if isinstance(direction, (bool, np.bool_)):
            direction = "higher" if direction else "lower"
        if direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction {direction!r} is not one of {', '.join(DIRECTIONS)}")
        if (direction == "target") != (self.target is not None):
            raise ValueError(f"metric {self.name!r}: a target value goes with direction 'target' (and only with it)")
        object.__setattr__(self, "direction", direction)

    # ------------------------------------------------------------ what the number means

    @property
    def set_level(self) -> bool:
        """Its group value is a reduction of per-image statistics, not a mean of values."""
        return self.reduce is not None

    @property
    def ranked(self) -> bool:
        """Whether leaderboards rank by it and ``compare`` gates on it (not for descriptive statistics)."""
        return self.direction != "none"

    @property
    def higher_is_better(self) -> bool:
        """The old flag: true only for direction ``higher``."""
        return self.direction == "higher"

    def goodness(self, value: Any) -> Any:
        """``value`` mapped so that larger is better, in the metric's own units: the value
        (higher), its negative (lower), minus its distance to the target (target); NaN for a
        descriptive statistic. Works on scalars and arrays."""
        v = np.asarray(value, dtype=np.float64)
        if self.direction == "higher":
            out = v
        elif self.direction == "lower":
            out = -v
        elif self.direction == "target":
            out = -np.abs(v - float(self.target))  # type: ignore[arg-type]
        else:
            out = np.full_like(v, np.nan)
        return float(out) if out.ndim == 0 else out

    def direction_text(self) -> str:
        """``higher is better``, ``lower is better``, ``closer to 0 is better`` or ``descriptive (not ranked)``."""
        if self.direction == "target":
            return f"closer to {self.target:g} is better"
        return {"higher": "higher is better", "lower": "lower is better"}.get(
            self.direction, "descriptive (not ranked)"
        )

    def arrow(self) -> str:
        """A short mark of the direction for table headers: ``↑``, ``↓``, ``→0``, or ``""``."""
        if self.direction == "target":
            return f"→{self.target:g}"
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "")

    def heading(self) -> str:
        """``psnr ↑ (dB)``: the name with its direction mark and unit, for table headers."""
        head = f"{self.name} {self.arrow()}".rstrip()
        return f"{head} ({self.unit})" if self.unit else head

    def aggregation_text(self) -> str:
        return self.aggregation or ("set-level reduction" if self.set_level else "mean over images")

    def label(self, with_unit: bool = True) -> str:
        """``psnr (dB)``: the name with its unit, for axes and captions."""
        return f"{self.name} ({self.unit})" if with_unit and self.unit else self.name

    def format(self, value: float, digits: int = 2) -> str:
        """A value with its unit: ``27.31 dB``, ``0.7345``."""
        if value is None or not math.isfinite(value):
            return "-"
        text = f"{value:.{digits}f}"
        return f"{text} {self.unit}" if self.unit else text

    # ------------------------------------------------------------ computing it

    def __call__(self, restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> Any:
        """The per-image value (a float), or a set-level metric's per-image statistics (an array)."""
        out = self.fn(restored, clean, degraded)
        return statistics(out, self.name) if self.set_level else float(out)

    def score(self, restored: np.ndarray, clean: np.ndarray, degraded: Degraded) -> tuple[float, np.ndarray | None]:
        """The per-image value and, for a set-level metric, its statistics (the value is
        then the reduction over this one image)."""
        out = self(restored, clean, degraded)
        if not self.set_level:
            return out, None
        return self.group_value(out[None, :]), out

    def group_value(self, stats: np.ndarray, weights: np.ndarray | None = None) -> float:
        """A set-level metric's value for a group of images (``stats``: one row per image)."""
        if self.reduce is None:
            raise TypeError(f"metric {self.name!r} is not a set-level metric")
        stats = np.asarray(stats, dtype=np.float64)
        w = np.ones(stats.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
        return float(self.reduce(stats, w))

    def with_params(self, label: str, params: Mapping[str, Any]) -> Metric:
        """This metric configured by a reference's parameters (see ``configure``)."""
        if not params:
            return self
        if self.configure is None:
            raise ValueError(f"metric {self.name!r} takes no parameters")
        configured = self.configure(self, params)
        return replace(configured, name=label)


def statistics(value: Any, name: str) -> np.ndarray:
    """A set-level metric's per-image statistics as a finite 1-D float64 array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1 or not arr.size:
        raise ValueError(f"set-level metric {name!r} must return a non-empty 1-D array of statistics, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"set-level metric {name!r} returned non-finite statistics")
    return arr
