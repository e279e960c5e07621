"""Plots for the HTML report: quality against runtime, quality against level, before/after grids.

matplotlib is imported lazily and used through its object API (``Figure`` rendered by
Agg), so building a report never touches pyplot's global state or the user's backend.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from restorebench.core.metric import Metric

log = logging.getLogger(__name__)

DPI = 100
ZOOM_PATCH = 48  # side of the centre patch (in clean pixels) shown magnified under each crop
ZOOM_FACTOR = 4
MARKERS = "osD^v<>pP*Xh"


@dataclass(frozen=True)
class Level:
    """The level of one degradation: ``family`` is the reference without the level key."""

    family: str
    key: str
    value: float
    bin: tuple[float, float] | None = None  # for binned levels (``mask?ratio=0.1-0.2``); value = midpoint


def level_key(name: str, params: Mapping[str, Any] | None = None) -> str | None:
    """The parameter that is the level of the degradation called ``name`` (its class's ``level``):
    of several candidates, the first the reference sets (``params``); ``"*"`` (``given``, whose
    parameters are all levels): the one parameter the reference sets."""
    from restorebench.core.registry import DEGRADATIONS

    level = DEGRADATIONS.get(name).level if name in DEGRADATIONS else None
    params = params or {}
    if level == "*":
        return next(iter(params)) if len(params) == 1 else None
    if isinstance(level, tuple):
        return next((k for k in level if k in params), None)
    return level


def degradation_level(ref: str) -> Level | None:
    """The level of a degradation reference, or None when its degradation declares no level
    or the reference does not set it. A binned level (``ratio=0.1-0.2``) is its bin's midpoint.

    >>> degradation_level("gaussian?sigma=25")
    Level(family='gaussian', key='sigma', value=25.0, bin=None)
    """
    from restorebench.core.errors import UserError
    from restorebench.core.refs import Ref, canonical

    try:
        parsed = Ref.parse(ref, what="degradation")
    except UserError:
        return None
    key = level_key(parsed.name, parsed.params)
    if key is None or key not in parsed.params:
        return None
    family = canonical(parsed.name, {k: v for k, v in parsed.params.items() if k != key})
    raw = str(parsed.params[key])
    try:
        return Level(family, key, float(raw))
    except ValueError:
        pass
    low, sep, high = raw.partition("-")
    try:
        lo, hi = float(low), float(high)
    except ValueError:
        return None
    return Level(family, key, (lo + hi) / 2, (lo, hi)) if sep else None


def new_figure(width: float, height: float) -> Figure:
    """A Figure (no pyplot) with constrained layout."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


JPEG_QUALITY = 85


def data_uri(data: bytes, fmt: str = "png") -> str:
    """``data:image/<fmt>;base64,...`` for image bytes (the page embeds every image)."""
    import base64

    return f"data:image/{fmt};base64," + base64.b64encode(data).decode("ascii")


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """The figure as PNG (plots: sharp lines, small files) or JPEG (photographs and noise,
    which PNG stores at several times the size) bytes, with no software metadata."""
    buf = io.BytesIO()
    if fmt == "png":
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    elif fmt == "jpeg":
        fig.savefig(buf, format="jpeg", dpi=DPI, facecolor="white", pil_kwargs={"quality": JPEG_QUALITY})
    else:
        raise ValueError(f"unknown figure format {fmt!r}; valid choices: png, jpeg")
    return buf.getvalue()


def method_colours(methods: Sequence[str]) -> dict[str, Any]:
    """One stable colour per method (tab10, then tab20)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def runtime_figure(board: pd.DataFrame, metric: Metric) -> Figure | None:
    """``metric`` (a column of the leaderboard table ``board``) against runtime per megapixel
    (log x): one point per method and degradation; the y axis says the metric's unit."""
    if metric.name not in board:
        return None
    data = board[np.isfinite(board[metric.name].astype(float)) & (board["runtime_ms_per_mp"] > 0)]
    if data.empty:
        return None
    datasets = sorted(data["dataset"].unique())
    methods = list(dict.fromkeys(data.sort_values("rank")["method"]))
    degradations = sorted(data["degradation"].unique())
    colours, marker = method_colours(methods), {d: MARKERS[i % len(MARKERS)] for i, d in enumerate(degradations)}
    fig = new_figure(4.2 * len(datasets) + 2.6, 3.6)
    for ax, dataset in zip(fig.subplots(1, len(datasets), squeeze=False)[0], datasets):
        for _, row in data[data["dataset"] == dataset].iterrows():
            ax.scatter(
                row["runtime_ms_per_mp"],
                row[metric.name],
                color=colours[row["method"]],
                marker=marker[row["degradation"]],
                s=42,
                edgecolor="black",
                linewidth=0.4,
            )
        ax.set_xscale("log")
        ax.set(title=short(dataset), xlabel="runtime (ms per megapixel, log scale)", ylabel=axis_label(metric))
        ax.grid(True, which="both", alpha=0.3)
    _legend(fig, colours, marker)
    return fig


def axis_label(metric: Metric) -> str:
    """``psnr (dB, higher is better)``: a plot axis names the metric's unit and direction."""
    unit = f"{metric.unit}, " if metric.unit else ""
    return f"{metric.name} ({unit}{metric.direction_text()})"


def level_figure(board: pd.DataFrame, metric: Metric) -> Figure | None:
    """``metric`` against the degradation level: one panel per (dataset, family), a line per method."""
    if metric.name not in board:
        return None
    levels = board["degradation"].map(degradation_level)
    data = board.assign(_level=levels)[levels.notna() & np.isfinite(board[metric.name].astype(float))]
    if data.empty:
        return None
    data = data.assign(_family=data["_level"].map(lambda lv: lv.family), _x=data["_level"].map(lambda lv: lv.value))
    panels = sorted(data.groupby(["dataset", "_family"]).groups)
    colours = method_colours(list(dict.fromkeys(data.sort_values("rank")["method"])))
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = new_figure(4.2 * cols + 2.6, 3.4 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (dataset, family) in zip(axes, panels):
        panel = data[(data["dataset"] == dataset) & (data["_family"] == family)]
        for method, line in panel.sort_values("_x").groupby("method", sort=False):
            ax.plot(line["_x"], line[metric.name], marker="o", color=colours[method], label=method)
        key = panel["_level"].iloc[0].key
        ticks = {lv.value: _level_label(lv) for lv in panel["_level"]}
        ax.set_xticks(sorted(ticks), [ticks[v] for v in sorted(ticks)])
        ax.set(title=f"{short(dataset)} · {family}", xlabel=key, ylabel=axis_label(metric))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    _legend(fig, colours, {})
    return fig


def short(label: str, width: int = 30) -> str:
    """``label`` cut in the middle to at most ``width`` characters (long folder paths in titles)."""
    if len(label) <= width:
        return label
    head = width // 3
    return f"{label[:head]}…{label[-(width - head - 1) :]}"


def _level_label(level: Level) -> str:
    return f"{level.bin[0]:g}-{level.bin[1]:g}" if level.bin else f"{level.value:g}"


def _legend(fig: Figure, colours: dict[str, Any], markers: dict[str, str]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, marker="o", linestyle="-", label=m) for m, c in colours.items()]
    handles += [Line2D([], [], color="gray", marker=mk, linestyle="", label=d) for d, mk in markers.items()]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, frameon=False)


def zoom_patch(
    img: np.ndarray, fraction: tuple[float, float], out_side: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The centre patch covering ``fraction`` of each side, magnified to ``out_side`` (nearest neighbour).

    Returns the magnified patch and its box ``(top, left, height, width)`` in ``img``.
    """
    h, w = img.shape[:2]
    ph, pw = max(1, min(h, round(fraction[0] * h))), max(1, min(w, round(fraction[1] * w)))
    top, left = (h - ph) // 2, (w - pw) // 2
    patch = img[top : top + ph, left : left + pw]
    rows = np.arange(out_side) * ph // out_side
    cols = np.arange(out_side) * pw // out_side
    return patch[rows][:, cols], (top, left, ph, pw)


def sample_figure(
    folder: Path, methods: Sequence[str], scores: dict[str, float], metric: Metric | None
) -> Figure | None:
    """clean | degraded | each method, a magnified centre patch under each; None when no crop exists.

    ``scores`` maps a method to its ``metric`` on the sampled image, labelled with the
    metric's unit; a missing crop or score is drawn as "no sample" / "-".
    """
    from restorebench.report.samples import read_png, slug

    panels = [("clean", folder / "clean.png", None), ("degraded", folder / "degraded.png", None)]
    panels += [(m, folder / f"method-{slug(m)}.png", scores.get(m, float("nan"))) for m in methods]
    images = {name: _read(path, read_png) for name, path, _ in panels}
    if all(img is None for img in images.values()):
        return None
    reference = images["clean"] if images["clean"] is not None else next(i for i in images.values() if i is not None)
    fraction = (min(1.0, ZOOM_PATCH / reference.shape[0]), min(1.0, ZOOM_PATCH / reference.shape[1]))
    aspect, side = reference.shape[0] / reference.shape[1], 1.6  # image height / width; inches per image
    fig = new_figure(side * len(panels) + 0.2, side * (aspect + 1) + 0.6)
    axes = fig.subplots(2, len(panels), squeeze=False, gridspec_kw={"height_ratios": [aspect, 1]})
    for col, (name, _, score) in enumerate(panels):
        title = name if score is None or metric is None else f"{name}\n{metric.name} {_score_text(metric, score)}"
        _sample_panel(axes[0, col], axes[1, col], images[name], fraction, title)
    return fig


def _score_text(metric: Metric, score: float) -> str:
    """A sample's score with the metric's unit: ``27.31 dB``, ``0.7345`` (4 decimals within [-1.5, 1.5])."""
    return metric.format(score, 4 if np.isfinite(score) and abs(score) <= 1.5 else 2)


def _read(path: Path, reader: Any) -> np.ndarray | None:
    if not path.exists():
        return None
    try:
        return reader(path)
    except OSError as exc:  # a truncated or unreadable crop is shown as missing
        log.warning("cannot read sample %s: %s", path, exc)
        return None


def _sample_panel(top: Axes, bottom: Axes, img: np.ndarray | None, fraction: tuple[float, float], title: str) -> None:
    from matplotlib.patches import Rectangle

    for ax in (top, bottom):
        ax.set_xticks([])
        ax.set_yticks([])
    top.set_title(title, fontsize=8)
    if img is None:
        for ax in (top, bottom):
            ax.text(0.5, 0.5, "no sample", ha="center", va="center", fontsize=9, color="gray", transform=ax.transAxes)
        return
    zoomed, (y, x, h, w) = zoom_patch(img, fraction, ZOOM_PATCH * ZOOM_FACTOR)
    top.imshow(img, interpolation="nearest")
    top.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor="red", linewidth=1))
    bottom.imshow(zoomed, interpolation="nearest")
    bottom.set_xlabel(f"centre {h}x{w}, nearest x{ZOOM_PATCH * ZOOM_FACTOR // max(h, 1)}", fontsize=7)
