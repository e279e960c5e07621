"""The ``sid:`` dataset source: the official See-in-the-Dark list files, read with rawpy.

``sid:LIST_FILE?root=DIR&split=test&exclude=FILE`` (Chen et al., "Learning to See in the
Dark", CVPR 2018). A list line reads::

    ./Sony/short/10003_00_0.04s.ARW ./Sony/long/10003_00_10s.ARW ISO200 F9

Paths are relative to ``root`` (default: the list file's folder). Exposure times come
from the file names (the last ``_``-separated part, ``0.04s``), and the amplification
ratio is ``min(long / short, 300)`` as in the SID code. The first digit of the scene id
(``10003``) is the split: 0 train, 1 test, 2 validation. ``exclude`` names a file of scene
ids (one per line, ``#`` comments) left out.

Each image is one (short, long) pair keyed by the short file's stem; its content hash is
SHA-256 over the SHA-256s of both files' bytes. :meth:`SidSource.load` returns the
rendered long exposure (the reference); :meth:`SidSource.load_short` the raw short
exposure, for the ``sid`` degradation. A bad line (unparsable exposure, missing file,
short and long of different sizes, a raw LibRaw cannot decode) does not stop the listing:
loading that pair raises :class:`restorebench.ImageLoadError` naming the file and the
list line, so that unit fails and the run goes on.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
from pydantic import Field, field_validator

from restorebench import ImageLoadError, ImageRef, Params, Source, UserError, register
from restorebench.tasks.lowlight.raw import RawImage, read_raw, render

__all__ = ["SidPair", "SidSource", "parse_list", "MAX_RATIO"]

T = TypeVar("T")
MAX_RATIO = 300.0
_SPLITS = {"0": "train", "1": "test", "2": "val"}
_NAME = re.compile(r"^(?P<scene>\d+)_(?P<shot>\d+)_(?P<exposure>[^_]+)$")


@dataclass(frozen=True)
class SidPair:
    """One list line: its files, ratio and split, or the error that makes it unusable."""

    line: int
    text: str
    short: Path
    long: Path
    ratio: float | None = None
    scene: str | None = None
    iso: str | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return self.short.stem if self.short.name else f"line{self.line}"

    @property
    def split(self) -> str | None:
        return _SPLITS.get(self.scene[0]) if self.scene else None


def _exposure(path: Path) -> float:
    match = _NAME.match(path.stem)
    text = match["exposure"] if match else ""
    try:
        seconds = float(text[:-1]) if text.endswith("s") else float("nan")
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"cannot parse an exposure time (like '0.04s') from the file name {path.name!r}")
    return seconds


def _parse_line(number: int, text: str, root: Path) -> SidPair:
    parts = text.split()
    if len(parts) < 2:
        return SidPair(
            number, text, Path(parts[0]) if parts else Path(), Path(), error="expected 'SHORT_FILE LONG_FILE [ISO] [F]'"
        )
    short, long = root / parts[0], root / parts[1]
    match = _NAME.match(short.stem)
    scene = match["scene"] if match else None
    iso = parts[2] if len(parts) > 2 else None
    try:
        ratio = min(_exposure(long) / _exposure(short), MAX_RATIO)
    except ValueError as exc:
        return SidPair(number, text, short, long, scene=scene, iso=iso, error=str(exc))
    return SidPair(number, text, short, long, ratio=ratio, scene=scene, iso=iso)


@lru_cache(maxsize=16)
def parse_list(list_file: str, root: str, mtime_ns: int = 0) -> tuple[SidPair, ...]:
    """Every non-blank, non-comment line of a SID list file (bad lines carry their error)."""
    lines = Path(list_file).read_text().splitlines()
    return tuple(
        _parse_line(number, text.strip(), Path(root))
        for number, text in enumerate(lines, start=1)
        if text.strip() and not text.lstrip().startswith("#")
    )


def _read_ids(path: str) -> set[str]:
    text = Path(path).read_text()
    return {line.split("#")[0].strip() for line in text.splitlines()} - {""}


# ---------------------------------------------------------------- per-process file caches


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=4096)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_hash(path: Path) -> str:
    """SHA-256 of the file; of ``missing:PATH`` when it cannot be read (loading fails later)."""
    try:
        return _sha256(*_stamp(path))
    except OSError:
        return hashlib.sha256(f"missing:{path}".encode()).hexdigest()


@lru_cache(maxsize=64)
def _raw_size(path: str, mtime_ns: int, size: int) -> tuple[int, int]:
    import rawpy

    raw = rawpy.RawPy()
    try:
        raw.open_file(path)
        return int(raw.sizes.height), int(raw.sizes.width)
    except rawpy.LibRawError as exc:
        msg = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ImageLoadError(f"cannot decode raw file {path}: {type(exc).__name__}: {msg}") from None
    finally:
        raw.close()


@lru_cache(maxsize=2)
def _rendered(path: str, mtime_ns: int, size: int) -> np.ndarray:
    out = render(path)
    out.setflags(write=False)  # shared between the pairs of one long exposure
    return out


@lru_cache(maxsize=2)
def _bytes(path: str, mtime_ns: int, size: int) -> bytes:
    return Path(path).read_bytes()


# ---------------------------------------------------------------- the source


class SidParams(Params):
    target: str = Field(min_length=1, description="the SID list file")
    root: str | None = Field(None, description="folder the list's paths are relative to; default: the list's folder")
    split: Literal["train", "test", "val", "all"] = "test"
    exclude: str | None = Field(None, description="file of scene ids to leave out, one per line")

    @field_validator("target", "root", "exclude")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        """Kept absolute: workers may run in another directory."""
        return None if path is None else os.path.abspath(os.path.expanduser(path))


_SPLIT_HINT = "pick the split the list holds (split=train, test, val or all): the scene id's first digit is the split"


@register
class SidSource(Source):
    """SID (short, long) raw pairs from an official list file; see the module docstring."""

    name = "sid"
    Params = SidParams

    def _pairs(self) -> tuple[SidPair, ...]:
        p = self.params
        list_file = Path(p.target)
        if not list_file.is_file():
            raise UserError(f"SID list file {list_file} does not exist", hint="give e.g. sid:DIR/Sony_test_list.txt")
        root = Path(p.root) if p.root else list_file.parent
        if not root.is_dir():
            raise UserError(f"SID root folder {root} does not exist", hint="set ?root=DIR to the folder holding Sony/")
        return parse_list(str(list_file), str(root), list_file.stat().st_mtime_ns)

    def _excluded(self) -> set[str]:
        if self.params.exclude is None:
            return set()
        if not os.path.isfile(self.params.exclude):
            raise UserError(f"SID exclude file {self.params.exclude} does not exist")
        return _read_ids(self.params.exclude)

    def list_images(self) -> list[ImageRef]:
        """Pairs of the split in list order; a pair whose split is unknown is kept (it fails to load)."""
        split, excluded = self.params.split, self._excluded()
        refs = []
        for pair in self._pairs():
            if pair.scene in excluded or (split != "all" and pair.split not in (split, None)):
                continue
            digest = hashlib.sha256(f"{_file_hash(pair.short)}:{_file_hash(pair.long)}".encode()).hexdigest()
            refs.append(ImageRef(self.ref, pair.key, digest, str(pair.line)))
        if not refs:
            raise UserError(f"SID list {self.params.target}: {self._nothing_of(split, excluded)}", hint=_SPLIT_HINT)
        return refs

    def _nothing_of(self, split: str, excluded: set[str]) -> str:
        """Why no pair of the list is left: the splits it holds, and what the exclusions took."""
        pairs = self._pairs()
        if not pairs:
            return "the list holds no line"
        counts: dict[str, int] = {}
        for pair in pairs:
            counts[pair.split or "unknown"] = counts.get(pair.split or "unknown", 0) + 1
        held = ", ".join(f"{n} {name}" for name, n in sorted(counts.items()))
        gone = sum(pair.scene in excluded for pair in pairs)
        left = f"; {gone} excluded by {self.params.exclude}" if gone else ""
        return f"no pair of split {split!r}: the list holds {held} pair(s){left}"

    def pair(self, image: ImageRef) -> SidPair:
        """The list line of ``image``, checked: its error, if any, is an :class:`ImageLoadError`."""
        by_line = {pair.line: pair for pair in self._pairs()}
        pair = by_line.get(int(image.locator))
        if pair is None:
            raise ImageLoadError(f"{self.params.target}: no line {image.locator} (the list file changed?)")
        where = f"{self.params.target} line {pair.line} ({pair.text!r})"
        if pair.error:
            raise ImageLoadError(f"{where}: {pair.error}")
        for path in (pair.short, pair.long):
            if not path.is_file():
                raise ImageLoadError(f"{where}: missing file {path}")
        try:
            short, long = _raw_size(*_stamp(pair.short)), _raw_size(*_stamp(pair.long))
        except ImageLoadError as exc:
            raise ImageLoadError(f"{where}: {exc}") from None
        if short != long:
            raise ImageLoadError(
                f"{where}: short exposure {pair.short} is {short[0]}x{short[1]} "
                f"but long exposure {pair.long} is {long[0]}x{long[1]}"
            )
        return pair

    def load(self, image: ImageRef) -> np.ndarray:
        """The rendered long exposure, sRGB float32 (the reference of the pair)."""
        pair = self.pair(image)
        return self._wrap(pair, lambda: _rendered(*_stamp(pair.long)))

    def short_bytes(self, image: ImageRef) -> bytes:
        """The raw file of the short exposure."""
        pair = self.pair(image)
        return self._wrap(pair, lambda: _bytes(*_stamp(pair.short)))

    def load_short(self, image: ImageRef) -> RawImage:
        """The short exposure as a :class:`RawImage` (for the ``sid`` degradation)."""
        pair = self.pair(image)
        return self._wrap(pair, lambda: read_raw(_bytes(*_stamp(pair.short)), name=str(pair.short)))

    def _wrap(self, pair: SidPair, fn: Callable[[], T]) -> T:
        """``fn()``, its load errors prefixed with the list file and line."""
        try:
            return fn()
        except (ImageLoadError, OSError) as exc:
            raise ImageLoadError(f"{self.params.target} line {pair.line} ({pair.text!r}): {exc}") from None
