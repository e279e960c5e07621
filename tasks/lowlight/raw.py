"""Raw Bayer I/O: read with rawpy (LibRaw), pack to 4 channels, render, write DNG.

Conventions follow the SID code (Chen et al., "Learning to See in the Dark", CVPR 2018):
a Bayer mosaic is packed into half-size R, G, B, G2 planes, black-subtracted and divided
by ``white - black``; the reference rendering is rawpy's
``postprocess(use_camera_wb=True, half_size=False, no_auto_bright=True, output_bps=16)``
divided by 65535. Black and white levels, the CFA layout and the white balance always
come from the file (LibRaw), never from constants.

CFA colour indices are LibRaw's: 0 = R, 1 = G (the green on the red rows), 2 = B,
3 = G2 (the green on the blue rows). rawpy, tifffile and OpenCV are imported inside the
functions.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from restorebench import ImageLoadError

__all__ = [
    "RawImage",
    "read_raw",
    "pack_bayer",
    "render",
    "encode_dng",
    "write_dng",
    "cfa_name",
    "XYZ_FROM_SRGB",
    "RENDER_OPTIONS",
]

RawSource = str | os.PathLike | bytes

# What SID renders its references with (and what every render here uses).
RENDER_OPTIONS: dict[str, Any] = {"use_camera_wb": True, "half_size": False, "no_auto_bright": True, "output_bps": 16}

# Linear sRGB (D65) -> CIE XYZ, the constant dcraw/LibRaw multiply a DNG ColorMatrix with.
XYZ_FROM_SRGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)

_LETTER_CODE = {"R": 0, "G": 1, "B": 2}  # TIFF/EP CFAPattern codes
_MIN_SIDE = 22  # LibRaw rejects raw images smaller than this


@dataclass(frozen=True, eq=False)
class RawImage:
    """A Bayer raw image as LibRaw reads it.

    ``mosaic`` is the visible area (uint16, H x W); ``cfa`` is the 2x2 pattern of CFA
    indices (0 R, 1 G, 2 B, 3 G2) at its top-left; ``black_level`` is per CFA index;
    ``wb`` is the camera white balance (R, G, B, G2), normalised to G = 1;
    ``color_matrix`` is LibRaw's camera RGB -> sRGB matrix (3x3), None when the file has
    none.
    """

    mosaic: np.ndarray
    black_level: tuple[float, float, float, float]
    white_level: int
    cfa: np.ndarray
    wb: tuple[float, float, float, float]
    color_matrix: np.ndarray | None = None

    @property
    def cfa_name(self) -> str:
        """The layout as four letters, e.g. ``"RGGB"``."""
        return cfa_name(self.cfa)


def cfa_name(cfa: np.ndarray) -> str:
    """``[[0, 1], [3, 2]]`` -> ``"RGGB"`` (G2 is written as G)."""
    return "".join("RGBG"[int(i)] for i in np.asarray(cfa).ravel())


def _name(src: RawSource, name: str | None = None) -> str:
    if name:
        return name
    return f"<{len(src)} bytes of raw data>" if isinstance(src, (bytes, bytearray)) else str(src)


@contextmanager
def _opened(src: RawSource, name: str | None = None) -> Iterator[Any]:
    """``rawpy.imread`` on a path or bytes; LibRaw and I/O failures become :class:`ImageLoadError`."""
    import rawpy

    try:
        raw = rawpy.imread(io.BytesIO(bytes(src)) if isinstance(src, (bytes, bytearray)) else os.fspath(src))
    except (rawpy.LibRawError, OSError) as exc:
        raise ImageLoadError(f"cannot decode raw file {_name(src, name)}: {_libraw_message(exc)}") from None
    with raw:
        yield raw


def _libraw_message(exc: BaseException) -> str:
    arg = exc.args[0] if exc.args else exc
    text = arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)
    return f"{type(exc).__name__}: {text}"


def _cfa_indices(raw: Any, name: str) -> np.ndarray:
    """The 2x2 pattern with both greens told apart (G2 = the green on B's row)."""
    pattern = np.asarray(raw.raw_pattern)
    if pattern.shape != (2, 2) or raw.num_colors not in (3, 4):
        raise ImageLoadError(f"{name} is not a 2x2 Bayer raw (CFA pattern of shape {pattern.shape})")
    pattern = pattern.copy()
    if sorted(pattern.ravel().tolist()) == [0, 1, 1, 2]:
        b_row = int(np.argwhere(pattern == 2)[0][0])
        pattern[b_row][pattern[b_row] == 1] = 3
    if sorted(pattern.ravel().tolist()) != [0, 1, 2, 3]:
        raise ImageLoadError(f"{name} has an unsupported CFA pattern {pattern.tolist()} (need R, G, B, G)")
    return pattern


def read_raw(src: RawSource, *, name: str | None = None) -> RawImage:
    """Read a raw file (path or bytes) with rawpy: mosaic, levels, CFA and white balance.

    Any failure (missing file, unsupported or corrupt data, non-Bayer sensor) raises
    :class:`restorebench.ImageLoadError` naming the file (``name`` labels bytes).
    """
    name = _name(src, name)
    with _opened(src, name) as raw:
        cfa = _cfa_indices(raw, name)
        mosaic = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
        black = tuple(float(b) for b in raw.black_level_per_channel)
        wb = [float(w) for w in raw.camera_whitebalance]
        matrix = np.array(raw.color_matrix, dtype=np.float64)[:, :3]
        white = int(raw.white_level)
    if wb[3] == 0:  # LibRaw leaves G2 at 0 when both greens share one multiplier
        wb[3] = wb[1]
    if wb[1] > 0:
        wb = [w / wb[1] for w in wb]
    return RawImage(
        mosaic=mosaic,
        black_level=black,
        white_level=white,
        cfa=cfa,  # type: ignore[arg-type]
        wb=tuple(wb),
        color_matrix=None if not matrix.any() else matrix,
    )  # type: ignore[arg-type]


def pack_bayer(raw: RawImage) -> np.ndarray:
    """Pack a Bayer mosaic into ``(H/2, W/2, 4)`` float32 planes R, G, B, G2.

    Each plane is black-subtracted (its own black level) and divided by
    ``white - black``; values are not clipped (noise may go below 0). The order follows
    the file's CFA pattern, so every Bayer layout packs the same way; for RGGB it is the
    SID order (0,0), (0,1), (1,1), (1,0). An odd row or column at the end is dropped.
    """
    h, w = (s - s % 2 for s in raw.mosaic.shape)
    out = np.empty((h // 2, w // 2, 4), np.float32)
    for dy in range(2):
        for dx in range(2):
            c = int(raw.cfa[dy, dx])
            black = raw.black_level[c]
            plane = raw.mosaic[dy:h:2, dx:w:2].astype(np.float32)
            out[..., c] = (plane - np.float32(black)) / np.float32(raw.white_level - black)
    return out


def render(raw_file: RawSource, *, ratio: float = 1.0, name: str | None = None) -> np.ndarray:
    """Render a raw file to sRGB float32 in [0, 1] the SID way, amplified by ``ratio``.

    The raw values become ``(raw - black) * ratio + black``, rounded and clipped to
    [0, white], in LibRaw's own buffer (``raw_image_visible``, which ``postprocess``
    reads), then ``postprocess(**RENDER_OPTIONS) / 65535``: camera white balance, AHD
    demosaicing, the camera -> sRGB matrix and LibRaw's default BT.709-style gamma
    (2.222, slope 4.5). ``ratio=1`` renders the file untouched (the SID reference).
    Failures raise :class:`restorebench.ImageLoadError` naming the file (``name``
    labels bytes).
    """
    if not ratio > 0:
        raise ValueError(f"ratio must be > 0, got {ratio}")
    with _opened(raw_file, name) as raw:
        if ratio != 1.0:
            _amplify(raw, float(ratio))
        try:
            rgb = raw.postprocess(**RENDER_OPTIONS)
        except Exception as exc:
            raise ImageLoadError(f"cannot render raw file {_name(raw_file, name)}: {_libraw_message(exc)}") from None
    return rgb.astype(np.float32) / np.float32(65535)


def _amplify(raw: Any, ratio: float) -> None:
    visible = raw.raw_image_visible  # a view of LibRaw's buffer: postprocess sees the change
    black = np.asarray(raw.black_level_per_channel, np.float64)[raw.raw_colors_visible]
    values = (visible.astype(np.float64) - black) * ratio + black
    visible[...] = np.clip(np.round(values), 0, raw.white_level).astype(np.uint16)


# ---------------------------------------------------------------- DNG writing


def _rationals(values: Sequence[float], denominator: int) -> tuple[int, ...]:
    """Numerator/denominator pairs on a fixed denominator (exact for 4-decimal values)."""
    out: list[int] = []
    for v in values:
        frac = Fraction(round(float(v) * denominator), denominator)
        out += [frac.numerator, frac.denominator]
    return tuple(out)


def _dng_tags(
    cfa: str,
    black_level: int | Sequence[int],
    white_level: int,
    as_shot_neutral: Sequence[float],
    color_matrix: np.ndarray,
    model: str,
) -> list[tuple]:
    if len(cfa) != 4 or sorted(cfa.upper()) != ["B", "G", "G", "R"]:
        raise ValueError(f"cfa must be a 2x2 Bayer layout such as 'RGGB' or 'BGGR', got {cfa!r}")
    blacks = [int(black_level)] if np.isscalar(black_level) else [int(b) for b in black_level]  # type: ignore[arg-type]
    if len(blacks) not in (1, 4):
        raise ValueError(f"black_level must be one value or four (per CFA position), got {len(blacks)}")
    matrix = np.asarray(color_matrix, np.float64)
    if matrix.shape != (3, 3) or len(as_shot_neutral) != 3:
        raise ValueError("color_matrix must be 3x3 (XYZ -> camera) and as_shot_neutral three values")
    tags = [
        (33421, "H", 2, (2, 2), True),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(_LETTER_CODE[c] for c in cfa.upper()), True),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), True),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), True),  # DNGBackwardVersion
        (50708, "s", 0, model, True),  # UniqueCameraModel
        (50710, "B", 3, (0, 1, 2), True),  # CFAPlaneColor
        (50711, "H", 1, 1, True),  # CFALayout: rectangular
        (50714, "I", len(blacks), blacks[0] if len(blacks) == 1 else tuple(blacks), True),  # BlackLevel
        (50717, "I", 1, int(white_level), True),  # WhiteLevel
        (50721, "2i", 9, _rationals(matrix.ravel(), 10_000), True),  # ColorMatrix1 (SRATIONAL)
        (50728, "2I", 3, _rationals(as_shot_neutral, 1_000_000), True),  # AsShotNeutral (RATIONAL)
        (50778, "H", 1, 21, True),  # CalibrationIlluminant1: D65
    ]
    if len(blacks) == 4:
        tags.append((50713, "H", 2, (2, 2), True))  # BlackLevelRepeatDim
    return sorted(tags)


def encode_dng(
    mosaic: np.ndarray,
    *,
    cfa: str = "RGGB",
    black_level: int | Sequence[int] = 512,
    white_level: int = 16383,
    as_shot_neutral: Sequence[float] = (1.0, 1.0, 1.0),
    color_matrix: np.ndarray | None = None,
    camera_model: str = "restorebench synthetic",
) -> bytes:
    """The bytes of an uncompressed Bayer DNG 1.4 (see :func:`write_dng`)."""
    import tifffile

    mosaic = np.asarray(mosaic)
    if mosaic.dtype != np.uint16 or mosaic.ndim != 2:
        raise ValueError(f"mosaic must be a 2-D uint16 array, got {mosaic.dtype} {mosaic.shape}")
    if min(mosaic.shape) < _MIN_SIDE or mosaic.shape[0] % 2 or mosaic.shape[1] % 2:
        raise ValueError(f"mosaic must have even sides of at least {_MIN_SIDE} (LibRaw's minimum), got {mosaic.shape}")
    if color_matrix is None:
        color_matrix = np.linalg.inv(XYZ_FROM_SRGB)  # camera space = linear sRGB
    tags = _dng_tags(cfa, black_level, white_level, as_shot_neutral, color_matrix, camera_model)
    buf = io.BytesIO()
    with tifffile.TiffWriter(buf) as tif:
        tif.write(
            np.ascontiguousarray(mosaic),
            photometric=32803,
            subfiletype=0,
            compression=None,
            metadata=None,
            software=False,
            extratags=tags,
        )
    return buf.getvalue()


def write_dng(
    path: str | os.PathLike[str],
    mosaic: np.ndarray,
    *,
    cfa: str = "RGGB",
    black_level: int | Sequence[int] = 512,
    white_level: int = 16383,
    as_shot_neutral: Sequence[float] = (1.0, 1.0, 1.0),
    color_matrix: np.ndarray | None = None,
    camera_model: str = "restorebench synthetic",
) -> None:
    """Write a Bayer mosaic as a DNG that LibRaw reads back bit-exactly.

    One uncompressed IFD (NewSubfileType 0, PhotometricInterpretation 32803 CFA,
    BitsPerSample 16 holding e.g. 14-bit values) with CFARepeatPatternDim, CFAPattern
    (``cfa`` such as ``"RGGB"``, ``"BGGR"``), DNGVersion 1.4, UniqueCameraModel,
    BlackLevel (one value, or four in CFA-position order with BlackLevelRepeatDim 2x2),
    WhiteLevel, AsShotNeutral (= 1 / white-balance gains), ColorMatrix1 (XYZ -> camera,
    SRATIONAL on a 1/10000 grid; default: camera = linear sRGB) and CalibrationIlluminant1
    D65. LibRaw turns ColorMatrix1 into its camera -> sRGB matrix as
    ``inv(normalise_rows(ColorMatrix1 @ XYZ_FROM_SRGB))``.

    >>> import tempfile, numpy as np
    >>> m = np.full((32, 32), 600, np.uint16)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_dng(Path(d) / "x.dng", m, cfa="BGGR")
    ...     read_raw(Path(d) / "x.dng").cfa_name
    'BGGR'
    """
    data = encode_dng(
        mosaic,
        cfa=cfa,
        black_level=black_level,
        white_level=white_level,
        as_shot_neutral=as_shot_neutral,
        color_matrix=color_matrix,
        camera_model=camera_model,
    )
    Path(path).write_bytes(data)
