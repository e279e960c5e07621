"""The contracts between the engine and the tasks: sources, degradations, methods, metrics, tasks.

A task package (or a plugin) subclasses these and registers them with
:func:`restorebench.register`. Nothing here knows about Ray, MLflow or a particular task.
Images are float32 HWC arrays in [0, 1] with 1 or 3 channels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from restorebench.core.errors import UserError
from restorebench.core.metric import Metric, ScoreFn  # noqa: F401  (part of the contracts; defined in core/metric)
from restorebench.core.refs import Ref, canonical


class Params(BaseModel):
    """Base of every component's parameter model: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component:
    """Something built from a reference: a name, a version and validated parameters."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"
    Params: ClassVar[type[Params]] = Params
    kind_label: ClassVar[str] = "component"
    # Parameters left out of the reference shown in results and of the identity hashed
    # into unit ids: where or how fast to run, and a checkpoint's path (the content hash
    # of the checkpoint goes into the identity instead, and the method keeps its name,
    # so `compare` pairs a model with its retrained self).
    unlabelled_params: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, params: Params | None = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def from_ref(cls, ref: Ref) -> Component:
        """Validate ``ref.params`` against ``Params``; a bad one is a :class:`UserError`."""
        try:
            params = cls.Params(**ref.params)
        except ValidationError as exc:
            raise UserError(_explain(cls, ref, exc)) from None
        return cls(params)

    @property
    def ref(self) -> str:
        """The canonical reference: name plus the parameters that differ from defaults."""
        return canonical(self.name, self._result_params(), param_defaults(self.Params))

    def _result_params(self) -> dict[str, Any]:
        values = self.params.model_dump(mode="json")
        return {k: v for k, v in values.items() if k not in self.unlabelled_params}

    def identity(self) -> dict[str, Any]:
        """Everything that determines this component's output (hashed into unit ids)."""
        return {"name": self.name, "version": self.version, "params": self._result_params()}

    def adopt_params(self, model: type[Params], owner: str, hint: str | None = None) -> None:
        """Validate this component's parameters against ``model``, the parameters ``owner`` (a
        task) declares for it, and use them from now on: a task-agnostic component (``given``,
        ``as_is``) takes the task's levels. A bad one is a UserError, as from :meth:`from_ref`,
        with ``hint``."""
        try:
            params = model(**self.params.model_dump())
        except ValidationError as exc:
            fake = type(self.name, (Component,), {"name": f"{self.name} for {owner}", "Params": model})
            raise UserError(
                _explain(fake, Ref(self.name, self.params.model_dump()), exc).replace("component", self.kind_label, 1),
                hint=hint,
            ) from None
        self.params = params
        self.Params = model  # type: ignore[misc]  # the reference's defaults are the owner's


def param_defaults(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON defaults of a parameter model's optional fields."""
    return {
        name: f.get_default(call_default_factory=True) for name, f in model.model_fields.items() if not f.is_required()
    }


def _explain(cls: type[Component], ref: Ref, exc: ValidationError) -> str:
    """One line per problem, unknown parameters first (a misspelt one explains the missing one)."""
    import difflib

    fields = cls.Params.model_fields
    unknown, other = [], []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(key, fields, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            valid = ", ".join(sorted(fields)) or "(it takes no parameters)"
            unknown.append(f"  unknown parameter {key!r}; {guess}valid parameters: {valid}")
        elif err["type"] == "missing":
            other.append(f"  missing required parameter {key!r}")
        elif not key:  # a check of several parameters together
            other.append(f"  {message}")
        else:
            other.append(f"  {key}={err.get('input')!r}: {message}")
    return "\n".join([f"invalid parameters for {cls.kind_label} {cls.name!r}:", *unknown, *other])


# ---------------------------------------------------------------- images and samples


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: enough for any worker to load it by itself."""

    dataset: str  # canonical source reference, e.g. "bundled:photos"
    key: str  # the image's name within the dataset (file name, index, ...)
    content_hash: str  # SHA-256 of the image's content (file bytes or generator recipe)
    locator: str = ""  # how the source finds it again (a path, a row index, ...)


@dataclass
class Degraded:
    """A degraded input and what a non-blind method may know about its degradation."""

    image: np.ndarray
    degradation: str  # the degradation's name, e.g. "gaussian"
    params: Mapping[str, Any] = field(default_factory=dict)  # its true parameters (sigma, ...)
    crop_border: int = 0  # border the metrics leave out (e.g. the scale in super-resolution)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. masks, raw data
    reference: np.ndarray | None = None  # the target when it is not the clean image (e.g. modcropped HR)
    # The shape a method must return when no reference image says it: a photo taken as it is
    # (``as_is``) has none, and its restored version may be larger (super-resolution) or have
    # other channels (colorization, raw in -> RGB out). None: the reference's shape.
    output_shape: tuple[int, ...] | None = None


# ---------------------------------------------------------------- components


class Source(Component):
    """A dataset: lists its images and loads one of them.

    ``name`` is the reference's scheme; a ``target`` parameter (a folder, a file, a
    dataset id) is written after the colon: ``scheme:target?other=params``.
    """

    kind_label = "dataset source"
    paired: ClassVar[bool] = False  # holds pre-degraded inputs (load_lq) beside the ground truth

    @property
    def ref(self) -> str:
        values = self.params.model_dump(mode="json")
        if "target" not in values:  # scheme:key=value&... (e.g. paired:gt=DIR&lq=DIR)
            return canonical(self.name, values, param_defaults(type(self.params))).replace("?", ":", 1)
        target = values.pop("target")
        defaults = {k: v for k, v in param_defaults(type(self.params)).items() if k != "target"}
        return canonical(f"{self.name}:{target}", values, defaults)

    @property
    def has_reference(self) -> bool:
        """Whether :meth:`load` gives a clean reference to score against (False: real photos
        with no ground truth, e.g. ``folder:DIR?reference=none``; :meth:`load` then gives the
        photo itself, which only the ``as_is`` degradation takes)."""
        return True

    def load_lq(self, image: ImageRef) -> np.ndarray:
        """A paired source's degraded input of ``image`` (float32 HWC in [0, 1])."""
        raise NotImplementedError(f"{self.ref} holds no degraded inputs")

    def levels(self, image: ImageRef) -> dict[str, Any]:
        """What a paired source says the degradation of ``image`` was (e.g. its ``scale``)."""
        return {}

    def pair_sizes(self, image: ImageRef) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """A paired source's ``(height, width)`` of the ground truth and of the degraded input,
        read cheaply (image headers) so pairs are checked before work starts; None: unknown."""
        return None

    # What listing found out about the copy, for its leaderboard rows: a card's verdict
    # ("verified (pixels of 5 files)", "differs from card: ...") or "" when nothing is checked.
    check: str = ""

    def list_images(self) -> list[ImageRef]:
        """The dataset's images, in a stable order."""
        raise NotImplementedError

    # A source whose images can be generated one by one (a synthetic set of a million) says so
    # and overrides iter_images and count_images: a run then never holds its whole list.
    lazy: ClassVar[bool] = False

    def iter_images(self) -> Iterator[ImageRef]:
        """The images of :meth:`list_images`, one by one."""
        return iter(self.list_images())

    def count_images(self) -> int:
        """How many images :meth:`iter_images` yields."""
        return len(self.list_images())

    def published(self, task: str, degradation: Degradation, method: Method) -> dict[str, tuple[float, str]]:
        """Results published on this dataset for one (degradation, method): metric to
        (value, citation). Only a dataset card knows any."""
        return {}

    def load(self, image: ImageRef) -> np.ndarray:
        """The image as float32 HWC in [0, 1] (1 or 3 channels)."""
        raise NotImplementedError


class Degradation(Component):
    """A seeded corruption of a clean image.

    ``level`` names the parameter that is its severity (``sigma``, ``scale``, ``ratio``):
    the leaderboard's level axis and the report's level plots read it.
    """

    kind_label = "degradation"
    task: ClassVar[str] = ""  # "*": any task's (e.g. ``given``)
    level: ClassVar[str | tuple[str, ...] | None] = None  # the parameter(s) that can be its level
    needs_pairs: ClassVar[bool] = False  # reads a paired source's degraded inputs instead of making them
    takes_photos: ClassVar[bool] = False  # takes photos with no reference as they are (``as_is``)
    for_task: str | None = None  # the task it was built for (set by :meth:`bind`)

    def bind(self, task: str) -> None:
        """Called once the task it degrades for is known: a task-agnostic degradation
        (``given``, ``as_is``) adapts to it, and may refuse it with a UserError."""
        self.for_task = task

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        """Degrade ``image``; every random draw comes from ``rng``."""
        raise NotImplementedError

    def degrade(self, source: Source, image: ImageRef, clean: np.ndarray, rng: np.random.Generator) -> Degraded:
        """What the worker calls. Most degradations only need the clean pixels; one that
        reads real degraded data from its dataset (e.g. a raw short exposure beside the
        long one) overrides this and asks ``source`` for it."""
        return self.apply(clean, rng)


@dataclass(frozen=True)
class Resources:
    """What one instance of a method needs from a worker (fractions allowed)."""

    num_cpus: float = 1.0
    num_gpus: float = 0.0


class Method(Component):
    """A restoration method: ``setup()`` once per worker, then ``restore(batch)``."""

    kind_label = "method"
    task: ClassVar[str] = ""
    kind: ClassVar[Literal["classical", "neural"]] = "classical"
    resources: ClassVar[Resources] = Resources()
    uses_true_level: ClassVar[bool] = False  # non-blind: reads Degraded.params
    warm_up: ClassVar[bool] = True  # one untimed call on a small crop before timing
    description: ClassVar[str] = ""
    user_label: str | None = None  # ``?label=NAME`` of its reference (set by build_method)

    @property
    def qualified_name(self) -> str:
        return f"{self.task}/{self.name}" if self.task else self.name

    @property
    def ref(self) -> str:  # methods are referred to as TASK/NAME
        base = super().ref
        return f"{self.task}/{base}" if self.task else base

    def required_resources(self) -> Resources:
        """What a worker must reserve for this instance (parameters may raise it)."""
        return self.resources

    def device_name(self) -> str:
        """Where ``restore`` runs, for the results table (e.g. ``cpu``, ``cuda:NVIDIA H100``)."""
        return "cpu"

    def setup(self) -> None:
        """Load weights or warm caches; called once per worker before ``restore``."""

    def restore(self, batch: Sequence[Degraded]) -> list[np.ndarray]:
        """Restored images (float, HWC, same size as the clean image) for a batch."""
        return [self.restore_one(item) for item in batch]

    def restore_one(self, item: Degraded) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} implements neither restore nor restore_one")

    def parameter_count(self) -> int | None:
        """Learned parameters (neural methods); None for classical ones."""
        return None

    def identity(self) -> dict[str, Any]:
        """Name, version and parameters, plus where the code comes from: a plugin that calls
        itself ``denoise/median`` never shares the built-in's unit ids or cached results."""
        return {**super().identity(), "code": code_origin(type(self))}


_ORIGINS: dict[type, dict[str, str]] = {}


def code_origin(cls: type) -> dict[str, str]:
    """Where a class's code comes from: its module and qualified name; for code outside
    restorebench also the version of the distribution that installed it and the SHA-256 of
    its module's source file, so an edited plugin gets new unit ids."""
    if cls not in _ORIGINS:
        origin = {"module": cls.__module__, "class": cls.__qualname__}
        if not cls.__module__.startswith("restorebench."):
            origin.update(_plugin_provenance(cls))
        _ORIGINS[cls] = origin
    return _ORIGINS[cls]


def _plugin_provenance(cls: type) -> dict[str, str]:
    import hashlib
    import inspect
    from importlib import metadata

    found: dict[str, str] = {}
    try:
        path = inspect.getsourcefile(cls)
        if path:
            with open(path, "rb") as f:
                found["source_sha256"] = hashlib.sha256(f.read()).hexdigest()
    except (OSError, TypeError):
        pass
    top = cls.__module__.split(".")[0]
    dists = metadata.packages_distributions().get(top, [])
    if dists:
        found["package"] = f"{dists[0]}=={metadata.version(dists[0])}"
    return found


class AsIs:
    """How a task takes a photo with no reference as it is (the ``as_is`` degradation).

    ``prepare(photo, params, image, source)`` turns the photo (float32 HWC in [0, 1], as the
    source loads it) into the task's input, e.g. its lightness for colorization, or its raw
    mosaic for low light, and sets ``Degraded.output_shape`` where the restored image differs
    from the input (super-resolution: the photo times the scale). ``Params`` is what a user
    may say about the photos (``as_is?scale=4``, ``as_is?masks=DIR``); ``check(params,
    source, images)`` lists what is wrong before any work starts (a photo without its mask).
    ``metrics`` are the task's default metrics when no reference exists.
    """

    def __init__(
        self,
        expects: str,
        prepare: Callable[[np.ndarray, Any, ImageRef, Source], Degraded],
        *,
        params: type[Params] = Params,
        metrics: tuple[str, ...] = ("niqe",),
        check: Callable[[Any, Source, list[ImageRef]], list[str]] | None = None,
    ) -> None:
        self.expects = expects
        self.prepare = prepare
        self.Params = params
        self.metrics = metrics
        self.check = check


ReportSection = Callable[[Any], str]  # (figure writer) -> HTML markup


@dataclass(frozen=True)
class Task:
    """A restoration problem: its default metrics, default suite and report contribution.

    ``report_section``, when given, adds a section of the task's own to the HTML report:
    it is called with the report's figure writer (``writer.figure(w, h)`` makes a
    matplotlib figure, ``writer.embed(name, fig, caption)`` returns its markup).
    """

    name: str
    description: str
    metrics: tuple[str, ...]  # default metrics, first one ranks the leaderboard
    suite: str | None = None  # path of the task's default suite YAML
    quantize_output: bool = True  # score outputs on the 8-bit grid
    report_section: ReportSection | None = None
    report_title: str = ""  # the section's heading and link text
    given: Callable[[Degraded, np.ndarray], Degraded] | None = None  # adapt a pre-degraded pair to the protocol
    # What is wrong with a pre-degraded pair of these sizes ((h, w) of GT, LQ) and levels under the
    # task's protocol (None: nothing), checked before any work starts; default: the same size.
    given_check: Callable[[tuple[int, int], tuple[int, int], Mapping[str, Any]], str | None] | None = None
    as_is: AsIs | None = None  # how it takes a photo with no reference as it is (None: it cannot)
    # The levels a pre-degraded pair of this task may state (``given?sigma=25``, a manifest's
    # ``sigma`` column), as a parameter model whose fields are optional; None: no levels.
    levels: type[Params] | None = None
