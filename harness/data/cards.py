"""Dataset cards and the ``card:`` source that reads a user's copy through one.

A card (``datasets/NAME.yaml``; installed as ``restorebench/datasets``) says what a classic
test set is, its licence and citation, where to get it, which files it holds (with their
sizes and, where known, the SHA-256 of their decoded pixels) and results published on it.

``card:set5?root=DIR`` finds each file of the card under ``DIR`` (in any subfolder, by its
name, by the name a public copy the card knows gives it, e.g. the IRCNN test sets' ``01.tif``
for McMaster's ``1.tif``, or with another image extension) and checks it: present once, of
the card's size and channels, with the card's pixels. Where several files go by a file's
names, the card's sizes or pixels pick the one; where they cannot, the copy is ambiguous.
The verdict says which copy's names matched. A copy that differs is refused file by file;
``allow_mismatch=true`` scores it anyway (the files that were found), and its leaderboard rows
name the files not scored and those scored though they differ, and carry no published
numbers. A card given as a path (``card:my_set.yaml?root=DIR``) works the same way.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from restorebench.core.errors import ImageLoadError, UserError, choices
from restorebench.core.interfaces import Degradation, ImageRef, Method, Params, Source
from restorebench.core.refs import Ref
from restorebench.core.registry import register
from restorebench.data.images import IMAGE_EXTENSIONS, decode_array, pixel_sha256, read_image
from restorebench.data.storage import LocalPath, absolute_path

log = logging.getLogger(__name__)
MAX_LISTED = 10  # mismatching files named in one message
MAX_NAMED = 6  # files named, per kind, in a check's verdict
LOSSY = (".jpg", ".jpeg")


class CardFile(BaseModel):
    """One file of a card: its name, and what is known of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    file: str
    also: tuple[str, ...] = ()  # names other distributions give the same image
    height: int | None = None
    width: int | None = None
    channels: int | None = None
    pixel_sha256: str | None = None


class CardCopy(BaseModel):
    """A public copy that names the card's files otherwise (the IRCNN test sets' ``Set18/01.tif``
    for McMaster's ``1.tif``): ``names`` maps a card file to its name there; files not listed
    keep the card's name. A folder's verdict says which copy's names it matched."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    names: dict[str, str] = {}


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
    copies: tuple[CardCopy, ...] = ()
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

    @model_validator(mode="after")
    def _copies_name_card_files(self) -> Card:
        files = {f.file for f in self.files}
        for copy in self.copies:
            unknown = sorted(set(copy.names) - files)
            if unknown:
                raise ValueError(f"copy {copy.name!r} renames files the card does not list: {', '.join(unknown)}")
        return self

    def names(self, entry: CardFile) -> list[tuple[str, str]]:
        """(naming, name) of one file: the card's, each copy's, and its ``also`` names."""
        copies = [(c.name, c.names.get(entry.file, entry.file)) for c in self.copies]
        return [("card", entry.file), *copies, *(("also", n) for n in entry.also)]

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
        found, matched, problems = self._locate(root)
        refs: list[ImageRef] = []
        if self.card.reader is None:
            for entry, path in found.items():
                try:
                    pixels = decode_array(path.read_bytes(), str(path))
                except (OSError, ImageLoadError) as exc:
                    problems.append(_Problem(entry.file, "unreadable", f"{entry.file}: cannot read {path}: {exc}"))
                    continue
                problem = _compare(entry, path, pixels)
                if problem:
                    problems.append(problem)
                refs.append(ImageRef(self.ref, Path(entry.file).stem, pixel_sha256(pixels), str(path)))
        elif not problems:  # the reader needs the card's files
            refs = [replace(r, dataset=self.ref) for r in self.reader.list_images()]
        order = {f.file: i for i, f in enumerate(self.card.files)}
        problems.sort(key=lambda p: order[p.file])
        self.check = _check_label(self.card, problems, matched)
        if problems and (not self.params.allow_mismatch or self.card.reader is not None):
            raise UserError(
                f"your copy of {self.card.title} in {root} differs from its card ({len(problems)} of "
                f"{len(self.card.files)} files):\n  " + "\n  ".join(_shown([p.detail for p in problems])),
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

    def _locate(self, root: Path) -> tuple[dict[CardFile, Path], str, list[_Problem]]:
        """Each card file's path under ``root`` (by any name the card knows it by; the card's
        sizes or pixels pick among several), which copy's names matched, and what is wrong."""
        index: dict[str, list[Path]] = {}  # by name, and an image also by stem (another extension)
        for path in _files_under(root):
            index.setdefault(path.name.lower(), []).append(path)
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                index.setdefault("\0" + path.stem.lower(), []).append(path)
        found, how, problems = {}, {}, []  # how: the namings that call each found file as it is called
        for entry in self.card.files:
            names = self.card.names(entry)
            hits = sorted({p for _, n in names for p in _named(n, index)})
            fit = _fitting(entry, hits) if len(hits) > 1 else hits
            if len(fit) == 1 and fit[0] not in found.values():
                found[entry], how[entry] = fit[0], {k for k, n in names if fit[0] in _named(n, index)}
            elif len(fit) == 1:  # one file cannot be two of the card's
                other = next(e.file for e, p in found.items() if p == fit[0])
                detail = f"{entry.file}: {fit[0].relative_to(root)} is already the card's {other}"
                problems.append(_Problem(entry.file, "taken", detail))
            elif not hits:
                looked = " or ".join(dict.fromkeys(n for _, n in names))
                problems.append(
                    _Problem(entry.file, "missing", f"{entry.file}: missing (looked for {looked} under {root})")
                )
            else:
                shown = ", ".join(str(h.relative_to(root)) for h in hits[:4])
                known = "pixels" if entry.pixel_sha256 else "size"
                told = f", {len(fit) or 'none'} of them with the card's {known}" if _checked(entry) else ""
                detail = f"{entry.file}: {len(hits)} candidates ({shown}){told}; point root at the folder of one copy"
                problems.append(_Problem(entry.file, f"{len(hits)} candidates", detail))
        return found, _matched_as(self.card, how), problems

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


def _named(name: str, index: dict[str, list[Path]]) -> list[Path]:
    """The files called ``name``, or (for an image name) an image of its stem."""
    stem = index.get("\0" + Path(name).stem.lower(), []) if Path(name).suffix.lower() in IMAGE_EXTENSIONS else []
    return index.get(name.lower(), []) + stem


def _checked(entry: CardFile) -> bool:
    return entry.height is not None or entry.channels is not None or entry.pixel_sha256 is not None


def _fitting(entry: CardFile, paths: list[Path]) -> list[Path]:
    """Of several files that go by one card file's names, those its sizes and pixels allow."""
    return [p for p in paths if not _checked(entry) or _compare(entry, p, _pixels(p)) is None]


def _pixels(path: Path) -> np.ndarray | None:
    try:
        return decode_array(path.read_bytes(), str(path))
    except (OSError, ImageLoadError):
        return None


class _Problem(NamedTuple):
    """What is wrong with one of the card's files in a copy."""

    file: str  # the card's name for it
    what: str  # a few words, for the verdict on the leaderboard
    detail: str  # the line of the refusal
    scored: bool = False  # found and read: scored under allow_mismatch


def _compare(entry: CardFile, path: Path, pixels: np.ndarray | None) -> _Problem | None:
    """What differs between a file and its card entry (None when nothing does)."""
    if pixels is None:
        return _Problem(entry.file, "unreadable", f"{entry.file}: cannot read {path}")
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    kinds = {1: "gray", 3: "colour"}
    if entry.height is not None and (height, width) != (entry.height, entry.width):
        what, says = f"{width}x{height}", f"{path.name} is {width}x{height}, the card says {entry.width}x{entry.height}"
    elif entry.channels is not None and channels != entry.channels:
        what = kinds.get(channels, f"{channels}-channel")
        says = f"{path.name} is {what}, the card says {kinds.get(entry.channels, f'{entry.channels}-channel')}"
    elif path.suffix.lower() in LOSSY and Path(entry.file).suffix.lower() not in LOSSY:
        what, says = "JPEG", f"{path.name} is a JPEG: a lossy copy of the card's {Path(entry.file).suffix} file"
    elif pixels.dtype != np.uint8 and entry.pixel_sha256:
        what, says = f"{pixels.dtype}", f"{path.name} holds {pixels.dtype} pixels, the card's are 8-bit"
    elif entry.pixel_sha256 and pixel_sha256(pixels) != entry.pixel_sha256:
        what = "pixels differ"
        says = f"the pixels of {path.name} differ from the card's (a re-encode or another version?)"
    else:
        return None
    return _Problem(entry.file, what, f"{entry.file}: {says}", scored=True)


def _matched_as(card: Card, how: dict[CardFile, set[str]]) -> str:
    """Which copy's names a folder matched ('' for the card's own names): the fewest
    namings, in the card's order, that call every found file as it is called."""
    order = ["card", *(c.name for c in card.copies), "also"]
    picked, left = [], list(how.values())
    while left:  # every found file has a naming that calls it as it is called
        best = max(order, key=lambda k: (sum(k in ks for ks in left), -order.index(k)))
        picked.append(best)
        left = [ks for ks in left if best not in ks]
    if picked in ([], ["card"]):
        return ""
    said = {"card": "the card's names", "also": "other distributions' names"}
    return "matched as " + " and ".join(said.get(k, f"{k} names") for k in picked)


def _check_label(card: Card, problems: list[_Problem], matched: str = "") -> str:
    """The verdict shown above a leaderboard table and on each row: verified (and as which
    copy), or which files differ, naming those not scored and those scored anyway."""
    if not problems:
        return f"verified ({card.checks} of {len(card.files)} files{'; ' + matched if matched else ''})"
    parts = [f"differs from card: {len(problems)} of {len(card.files)} files"]
    for scored, kind in ((False, "not scored"), (True, "scored though different")):
        mine = [f"{p.file} ({p.what})" for p in problems if p.scored == scored]
        if mine:
            extra = f" and {len(mine) - MAX_NAMED} more" if len(mine) > MAX_NAMED else ""
            parts.append(f"{kind}: {', '.join(mine[:MAX_NAMED])}{extra}")
    return "; ".join(parts)


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
