"""Decoding image files into the harness convention: float32 HWC in [0, 1], 1 or 3 channels.

Every source hands its pixels through :func:`to_float_image`; a file that cannot be read
or decoded raises :class:`~restorebench.core.errors.ImageLoadError` naming it, and the
worker fails that unit only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from restorebench.core.errors import ImageLoadError

IMAGE_EXTENSIONS = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_image_name(name: str) -> bool:
    """Whether a file name is one a folder source reads: an image extension, not hidden."""
    path = Path(name)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def to_float_image(arr: np.ndarray) -> np.ndarray:
    """Convert an image array to the harness convention: float32 HWC in [0, 1], 1 or 3 channels.

    uint8 is divided by 255, uint16 by 65535, bool maps to {0, 1}; float input must already
    lie in [0, 1]. A 2-D array becomes HxWx1, HxWx2 (gray + alpha) becomes gray, and RGBA
    becomes RGB by discarding alpha (no compositing onto a background). Anything else
    raises ``ValueError``.

    >>> to_float_image(np.array([[0, 255]], np.uint8)).shape
    (1, 2, 1)
    """
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4) or arr.size == 0:
        raise ValueError(f"expected an HxW or HxWxC image with C in 1-4, got shape {arr.shape}")
    if arr.shape[2] in (2, 4):
        arr = arr[:, :, : arr.shape[2] - 1]  # drop alpha
    scale = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535, np.dtype(np.bool_): 1}.get(arr.dtype)
    if scale is not None:
        return arr.astype(np.float32) / np.float32(scale)
    if np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
            raise ValueError(f"float image values must lie in [0, 1], got [{out.min()}, {out.max()}]")
        return out
    raise ValueError(f"unsupported image dtype {arr.dtype}; expected uint8, uint16, bool or float in [0, 1]")


def decode_array(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG/TIFF/BMP bytes to their stored pixels: uint8 or uint16, HxW (gray) or
    HxWxC in RGB(A) order, palettes expanded. ``name`` labels the :class:`ImageLoadError`."""
    import cv2

    if not data:
        raise ImageLoadError(f"cannot decode {name}: not a PNG/JPEG/TIFF/BMP image (0 bytes)")
    try:
        arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None:
        raise ImageLoadError(f"cannot decode {name}: not a PNG/JPEG/TIFF/BMP image or corrupt ({len(data)} bytes)")
    if arr.ndim == 3 and data[:8] == _PNG_SIGNATURE and len(data) > 25 and data[25] in (0, 4):
        arr = arr[:, :, 0]  # a gray(+alpha) PNG that the decoder expanded to BGR(A)
    elif arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]  # BGR -> RGB
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]  # BGRA -> RGBA
    return arr


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Decode PNG/JPEG/TIFF/BMP bytes (16 bits kept, palettes expanded) with :func:`to_float_image`.

    ``name`` (a path or row) only labels the :class:`ImageLoadError` raised on failure.
    """
    try:
        return to_float_image(decode_array(data, name))
    except ValueError as exc:
        raise ImageLoadError(f"cannot decode {name}: {exc}") from None


def pixel_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of decoded pixels as C-ordered bytes (HxW for gray, HxWxC otherwise): the same
    for a BMP and its lossless PNG, different for a JPEG re-encode or a gray/colour change."""
    arr = pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read and decode an image file; any failure is an :class:`ImageLoadError` naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageLoadError(f"cannot read {path}: {exc.strerror or exc}") from None
    return decode_image(data, str(path))


def image_size(source: str | os.PathLike[str] | bytes) -> tuple[int, int] | None:
    """``(height, width)`` of an image file (or its bytes) from its header, without decoding the
    pixels; None when the header cannot be read (decoding it later says why)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            return im.height, im.width
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def file_hash(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return hashlib.sha256(f"unreadable:{path}".encode()).hexdigest()


def encode_png(img: np.ndarray, bits: int = 8) -> bytes:
    """A float image in [0, 1] (HxWx1 or HxWx3) as PNG bytes, rounded to 8 or 16 bits."""
    import cv2

    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    top = 255 if bits == 8 else 65535
    arr = np.round(np.clip(img, 0, 1) * top).astype(np.uint8 if bits == 8 else np.uint16)
    arr = arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr[:, :, ::-1]  # RGB -> BGR for OpenCV
    ok, data = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:  # pragma: no cover - OpenCV refuses only shapes validated away before
        raise ValueError(f"cannot encode an image of shape {img.shape} as PNG")
    return data.tobytes()
