"""Dataset cards and the ``card:`` source that reads a user's copy through one.

A card (``datasets/NAME.yaml``; installed as ``restorebench/datasets``) says what a classic
test set is, its licence and citation, where to get it, which files it holds (with their
sizes and, where known, the SHA-256 of their decoded pixels) and results published on it.

``card:set5?root=DIR`` finds each file of the card under ``DIR`` (in any subfolder, by its
name or one of the names other distributions give it) and checks it: present, of the
card's size and channels, with the card's pixels. A copy that differs is refused file by
file; ``allow_mismatch=true`` scores it anyway (the files that are there), and its
leaderboard rows say that the copy differs and carry no published numbers. A card given
as a path (``card:my_set.yaml?root=DIR``) works the same way.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from restorebench.core.errors import ImageLoadError, UserError, choices
from restorebench.core.interfaces import Degradation, ImageRef, Method, Params, Source
from restorebench.core.refs import Ref
from restorebench.core.registry import register
from restorebench.data.images import IMAGE_EXTENSIONS, decode_array, pixel_sha256, read_image
from restorebench.data.storage import LocalPath, absolute_path

log = logging.getLogger(__name__)
MAX_LISTED = 10  # mismatching files named in one message


class CardFile(BaseModel):
    """One file of a card: its name, and what is known of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    also: tuple[str, ...] = ()  # names other distributions give the same image
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    pixel_sha256: str | None = None


class Published(BaseModel):
    """A result from the literature: ``method`` matches our method of that name (and any
    parameters it spells out), ``degradation`` our degradation reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    task: str
    method: str
    degradation: str
    metric: str
    value: float
    source: str


class Card(BaseModel):
    """A dataset card (see ``datasets/README.md`` for the fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    description: str
    tasks: tuple[str, ...] = ()
    licence: str
    citation: str
    get: str
    reader: str | None = None  # a source reference (``{root}`` filled in) for files that are not images
    files: tuple[CardFile, ...]
    published: tuple[Published, ...] = ()
    notes: str = ""

    @field_validator("files")
    @classmethod
    def _unique(cls, files: tuple[CardFile, ...]) -> tuple[CardFile, ...]:
        names = [f.file for f in files]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"files listed twice: {', '.join(twice)}")
        return files

    @property
    def checks(self) -> str:
        """What a copy is checked for: ``pixels``, ``sizes`` or ``names``."""
        if self.files and all(f.pixel_sha256 for f in self.files):
            return "pixels"
        if self.files and all(f.height for f in self.files):
            return "sizes"
        return "names"


def cards_dir() -> Path:
    """The folder of the built-in cards (``datasets/`` of the checkout, installed as data)."""
    try:
        return Path(str(resources.files("restorebench.datasets")))
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - a broken install
        return Path(__file__).parents[2] / "datasets"


@functools.cache
def builtin_cards() -> dict[str, Path]:
    """The built-in cards by name."""
    return {p.stem: p for p in sorted(cards_dir().glob("*.yaml"))}


def read_card(path: Path) -> Card:
    """A card from its YAML file; a malformed card is a :class:`UserError` naming the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot read dataset card {path}: {exc}") from None
    try:
        return Card.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise UserError(f"dataset card {path} is not valid: {problems}") from None


def load_card(name: str) -> Card:
    """A built-in card by name, or a card file by path."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise UserError(f"dataset card {path} does not exist")
        return read_card(path)
    cards = builtin_cards()
    if name.lower() not in cards:
        raise UserError(
            f"no dataset card named {name!r}",
            hint=f"valid choices: {choices(cards)} (or give a card file: card:PATH.yaml?root=DIR)",
        )
    return read_card(cards[name.lower()])


# ---------------------------------------------------------------- the source


class CardParams(Params):
    target: str = Field(min_length=1, description="a card's name (restorebench list datasets) or a card file")
    root: LocalPath = Field(min_length=1, description="the folder that holds your copy of the dataset")
    allow_mismatch: bool = Field(False, description="score a copy that differs from the card (marked as such)")

    @field_validator("target")
    @classmethod
    def _card_path(cls, value: str) -> str:
        if value.endswith((".yaml", ".yml")) or "/" in value:
            return absolute_path(value)
        return value.lower()


@register
class CardSource(Source):
    """A classic test set read through its dataset card, checked file by file (``card:set5?root=DIR``)."""

    name = "card"
    Params = CardParams

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self.card = load_card(self.params.target)
        self._reader: Source | None = None

    # -- listing and checking

    def list_images(self) -> list[ImageRef]:
        root = Path(self.params.root)
        if not root.is_dir():
            raise UserError(
                f"the folder {root} for dataset card {self.card.name} does not exist",
                hint=f"get {self.card.title}: {self.card.get.strip()}",
            )
        unreadable = [f.file for f in self.card.files if Path(f.file).suffix.lower() not in IMAGE_EXTENSIONS]
        if self.card.reader is None and unreadable:
            raise UserError(
                f"restorebench cannot read {self.card.title} through its card yet ({', '.join(unreadable)} "
                "are not image files)",
                hint=self.card.notes.strip() or None,
            )
        found, problems = self._locate(root)
        refs: list[ImageRef] = []
        if self.card.reader is None:
            for entry, path in found.items():
                try:
                    pixels = decode_array(path.read_bytes(), str(path))
                except (OSError, ImageLoadError) as exc:
                    problems.append(f"{entry.file}: cannot read {path}: {exc}")
                    continue
                problem = _compare(entry, path, pixels)
                if problem:
                    problems.append(problem)
                refs.append(ImageRef(self.ref, Path(entry.file).stem, pixel_sha256(pixels), str(path)))
        elif not problems:  # the reader needs the card's files
            refs = [replace(r, dataset=self.ref) for r in self.reader.list_images()]
        self.check = _check_label(self.card, problems)
        if problems and (not self.params.allow_mismatch or self.card.reader is not None):
            raise UserError(
                f"your copy of {self.card.title} in {root} differs from its card ({len(problems)} of "
                f"{len(self.card.files)} files):\n  " + "\n  ".join(_shown(problems)),
                hint="get the files the card names (restorebench list datasets)"
                + (
                    ""
                    if self.card.reader
                    else ", or add allow_mismatch=true to score this copy anyway: its rows are marked as differing "
                    "and carry no published numbers"
                ),
            )
        if problems:
            log.warning("%s: %s; scored anyway (allow_mismatch=true)", self.card.name, self.check)
        return refs

    def _locate(self, root: Path) -> tuple[dict[CardFile, Path], list[str]]:
        """Each card file's path under ``root``, by its name or another name it goes by."""
        index: dict[str, list[Path]] = {}
        for path in _files_under(root):
            index.setdefault(path.name.lower(), []).append(path)
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                index.setdefault(path.stem.lower(), []).append(path)
        found, problems = {}, []
        for entry in self.card.files:
            names = [entry.file, *entry.also]
            candidates = [entry.file.lower(), *(n.lower() for n in entry.also)]
            if Path(entry.file).suffix.lower() in IMAGE_EXTENSIONS:  # the same pixels as another format
                candidates += [Path(n).stem.lower() for n in names]
            hits = sorted({p for c in candidates for p in index.get(c, [])})
            if not hits:
                problems.append(f"{entry.file}: missing (looked for {' or '.join(names)} under {root})")
            elif len(hits) > 1:
                problems.append(
                    f"{entry.file}: {len(hits)} candidates ({', '.join(str(h.relative_to(root)) for h in hits[:4])}); "
                    "point root at the folder of one copy"
                )
            else:
                found[entry] = hits[0]
        return found, problems

    @property
    def reader(self) -> Source:
        """The source that reads a card whose files are not plain images (e.g. SID's raw pairs)."""
        if self._reader is None:
            from restorebench.core.build import build_source

            self._reader = build_source(self.card.reader.format(root=self.params.root))
        return self._reader

    # -- loading

    @property
    def paired(self) -> bool:  # type: ignore[override]
        return self.card.reader is not None and self.reader.paired

    def load(self, image: ImageRef) -> np.ndarray:
        return self.reader.load(image) if self.card.reader is not None else read_image(image.locator)

    def load_lq(self, image: ImageRef) -> np.ndarray:
        return self.reader.load_lq(image)

    def levels(self, image: ImageRef) -> dict[str, Any]:
        return self.reader.levels(image) if self.card.reader is not None else {}

    def __getattr__(self, name: str) -> Any:
        """What a task's degradation asks of a reader-backed card (e.g. ``load_short`` of SID)."""
        if name.startswith("_") or name in ("card", "params") or self.__dict__.get("card") is None:
            raise AttributeError(name)
        if self.card.reader is None:
            raise AttributeError(f"{self.ref} has no {name!r}")
        return getattr(self.reader, name)

    # -- published results

    def published(self, task: str, degradation: Degradation, method: Method) -> dict[str, tuple[float, str]]:
        """The card's published results for one (degradation, method), by metric; none for a
        copy that differs from its card."""
        if getattr(self, "check", "").startswith("differs"):
            return {}
        out: dict[str, tuple[float, str]] = {}
        for entry in self.card.published:
            if entry.task == task and _same_degradation(entry, degradation) and _same_method(entry, method):
                out.setdefault(entry.metric, (entry.value, entry.source))
        return out


def _files_under(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            yield path


def _compare(entry: CardFile, path: Path, pixels: np.ndarray) -> str:
    """What differs between a file and its card entry ('' when nothing does)."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if entry.height is not None and (height, width) != (entry.height, entry.width):
        return f"{entry.file}: {path.name} is {width}x{height}, the card says {entry.width}x{entry.height}"
    if entry.channels is not None and channels != entry.channels:
        kinds = {1: "gray", 3: "colour"}
        return (
            f"{entry.file}: {path.name} is {kinds.get(channels, f'{channels}-channel')}, "
            f"the card says {kinds.get(entry.channels, f'{entry.channels}-channel')}"
        )
    if pixels.dtype != np.uint8 and entry.pixel_sha256:
        return f"{entry.file}: {path.name} holds {pixels.dtype} pixels, the card's are 8-bit"
    if entry.pixel_sha256 and pixel_sha256(pixels) != entry.pixel_sha256:
        return f"{entry.file}: the pixels of {path.name} differ from the card's (a re-encode or another version?)"
    return ""


def _check_label(card: Card, problems: list[str]) -> str:
    if problems:
        return f"differs from card: {len(problems)} of {len(card.files)} files"
    return f"verified ({card.checks} of {len(card.files)} files)"


def _shown(problems: list[str]) -> list[str]:
    extra = len(problems) - MAX_LISTED
    return problems[:MAX_LISTED] + ([f"... and {extra} more"] if extra > 0 else [])


def _same_degradation(entry: Published, degradation: Degradation) -> bool:
    from restorebench.core.build import build_degradation

    try:
        return build_degradation(entry.degradation, task=entry.task).ref == degradation.ref
    except UserError:
        return False


def _same_method(entry: Published, method: Method) -> bool:
    """``entry.method`` names ``method`` and every parameter it spells out has the method's value."""
    want = Ref.parse(entry.method, what="method")
    if want.name != method.name and want.name != f"{method.task}/{method.name}":
        return False
    have = method.params.model_dump(mode="json")
    return all(str(have.get(k)).lower() == str(v).lower() for k, v in want.params.items())
