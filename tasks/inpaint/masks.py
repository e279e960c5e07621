"""Irregular hole masks: seeded free-form strokes and blobs, hole-ratio bins, mask folders.

Convention: a mask is a float32 ``H x W`` array, **1 = valid (known) pixel, 0 = hole**.
The hole ratio is the fraction of hole pixels. Bins follow Liu et al. (ECCV 2018):
``(0.01, 0.1], (0.1, 0.2], ..., (0.5, 0.6]``, written ``0.1-0.2`` in references; a
generated mask's measured ratio always lies inside its bin (low exclusive, high inclusive).

The generator draws strokes (random walks of thick line segments with round joints, the
free-form masks of Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019)
and blobs (ellipses), sized relative to the image so a mask looks the same at 64 px and at
1024 px, until the ratio reaches a target drawn uniformly inside the bin; a shape that
would overshoot the bin is replaced by smaller ones. With ``border=False`` no hole pixel
lies within ``margin`` pixels of the image border (the paper reports both settings).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PAPER_BINS = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
MAX_SHAPES = 10_000  # a safety stop; a mask of any bin needs far fewer


@dataclass(frozen=True)
class RatioBin:
    """A hole-ratio interval ``(low, high]``."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str) -> RatioBin:
        """``"0.1-0.2"`` -> RatioBin(0.1, 0.2); ValueError with the reason otherwise."""
        low, sep, high = str(text).partition("-")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise ValueError(f"a hole-ratio bin is LOW-HIGH, e.g. 0.1-0.2; got {text!r}") from None
        if not sep or not 0 <= lo < hi < 1:
            raise ValueError(f"a hole-ratio bin needs 0 <= LOW < HIGH < 1, e.g. 0.1-0.2; got {text!r}")
        return cls(lo, hi)

    def __contains__(self, ratio: float) -> bool:
        return self.low < ratio <= self.high

    def __str__(self) -> str:
        return f"{self.low:g}-{self.high:g}"


def hole_ratio(mask: np.ndarray) -> float:
    """Fraction of hole pixels (mask == 0)."""
    return float(np.mean(np.asarray(mask) < 0.5))


def border_margin(height: int, width: int) -> int:
    """Pixels kept free of holes along each border when ``border=False``."""
    return max(1, round(min(height, width) / 32))


def free_form_mask(
    height: int, width: int, ratio: RatioBin, rng: np.random.Generator, *, border: bool = True, scale: float = 1.0
) -> np.ndarray:
    """A seeded irregular mask of ``height x width`` whose hole ratio lies in ``ratio``.

    Every draw comes from ``rng``, so the same generator state gives the same mask on
    every machine. ``scale`` multiplies the shapes' size (relative to ``sqrt(H * W)``):
    training draws masks of several scales so a network meets holes of every width.
    Returns float32, 1 = valid, 0 = hole.
    """
    if height < 8 or width < 8:
        raise ValueError(f"masks need images of at least 8x8 pixels, got {height}x{width}")
    holes = np.zeros((height, width), np.uint8)
    allowed = np.ones((height, width), np.uint8)
    if not border:
        m = border_margin(height, width)
        allowed[:m] = allowed[-m:] = 0
        allowed[:, :m] = allowed[:, -m:] = 0
    target = rng.uniform(ratio.low, ratio.high)
    total = height * width
    scale = scale * math.sqrt(total)  # shapes are sized relative to the image
    count = 0
    for _ in range(MAX_SHAPES):
        if count / total > ratio.low and count / total >= target:
            break
        remaining = (min(target, ratio.high) - count / total) * total
        shape = _shape(height, width, scale, remaining, rng)
        shape &= allowed
        new = int(np.count_nonzero(shape & (holes == 0)))
        if (count + new) / total > ratio.high:
            continue  # would overshoot the bin: the next draw is smaller (``remaining`` bounds it)
        holes |= shape
        count += new
    if count / total not in ratio:
        raise RuntimeError(
            f"no {height}x{width} mask in bin {ratio} after {MAX_SHAPES} shapes (ratio {count / total:.3f})"
        )
    return (1 - holes).astype(np.float32)


def _shape(height: int, width: int, scale: float, remaining: float, rng: np.random.Generator) -> np.ndarray:
    """One stroke (most draws) or blob, never larger than about ``remaining`` hole pixels."""
    import cv2

    layer = np.zeros((height, width), np.uint8)
    budget = max(remaining, 4.0)
    if rng.random() < 0.8:
        thickness = rng.uniform(0.02, 0.07) * scale
        segments = int(rng.integers(1, 6))
        length = rng.uniform(0.05, 0.25) * scale
        # keep a stroke's area (about segments * length * thickness) within the budget
        area = segments * length * thickness
        if area > budget:
            shrink = math.sqrt(budget / area)
            thickness, length = thickness * shrink, length * shrink
        thickness = max(1, int(round(thickness)))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(segments):
            angle += rng.normal(0, 0.9)  # curvature: each segment turns a little
            nx = float(np.clip(x + length * math.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, height - 1))
            cv2.line(layer, (int(x), int(y)), (int(nx), int(ny)), 1, thickness, cv2.LINE_8)
            cv2.circle(layer, (int(nx), int(ny)), max(1, thickness // 2), 1, -1)  # round joint
            x, y = nx, ny
    else:
        radius = rng.uniform(0.03, 0.12) * scale
        area = math.pi * radius * radius
        if area > budget:
            radius *= math.sqrt(budget / area)
        axes = (max(1, int(radius * rng.uniform(0.5, 1.5))), max(1, int(radius * rng.uniform(0.5, 1.5))))
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return layer


# ---------------------------------------------------------------- mask folders


MASK_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class FolderMask:
    path: Path
    ratio: float


def read_mask_file(path: Path, *, invert: bool = False) -> np.ndarray:
    """A mask file as float32 1 = valid, 0 = hole: gray or colour read as luminance,
    thresholded at 0.5 (of the file's range); ``invert`` for sets that store holes as white."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE | cv2.IMREAD_ANYDEPTH)
    if data is None:
        raise ValueError(f"cannot read mask file {path}")
    top = 65535.0 if data.dtype == np.uint16 else 255.0
    valid = data.astype(np.float32) / top >= 0.5
    return (~valid if invert else valid).astype(np.float32)


def scan_mask_folder(folder: Path, *, invert: bool = False) -> tuple[list[FolderMask], list[str]]:
    """Every readable mask file of ``folder`` with its hole ratio (files sorted by name), and
    the files left out (unreadable, all hole or all valid), each with why."""
    found, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in MASK_EXTENSIONS and p.is_file()):
        try:
            ratio = hole_ratio(read_mask_file(path, invert=invert))
        except ValueError as exc:
            skipped.append(f"{path.name}: {exc}")
            continue
        if ratio in (0.0, 1.0):
            skipped.append(f"{path.name}: {'all hole' if ratio == 1.0 else 'no hole'}")
            continue
        found.append(FolderMask(path, ratio))
    return found, skipped


def fit_mask(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """``mask`` resized (nearest neighbour) to ``height x width``."""
    import cv2

    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
