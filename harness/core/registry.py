"""Registries of tasks, dataset sources, degradations, methods and metrics.

Built-in components register themselves when their task package is imported (every
package under ``tasks/`` is imported on first lookup); third-party methods come in
through the entry-point group ``restorebench.methods`` (``name = "module:Class"``) or
directly as ``module:Class`` references.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from harness.errors import UserError, choices

log = logging.getLogger(__name__)
T = TypeVar("T")

ENTRY_POINT_GROUP = "restorebench.methods"


class Registry(Generic[T]):
    """Name -> object. Unknown names raise :class:`UserError` listing what exists."""

    def __init__(self, what: str, key: Callable[[Any], str] = lambda obj: obj.name) -> None:
        self.what = what
        self._key = key
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the object under ``name`` (default: its ``name`` attribute)."""

        def deco(obj: T) -> T:
            self.add(name or self._key(obj), obj)
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        load_builtins()
        try:
            return self._items[name]
        except KeyError:
            raise UserError(f"unknown {self.what} {name!r}; valid choices: {choices(self._items)}") from None

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        load_builtins()
        return iter(sorted(self._items.items()))

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._items


TASKS: Registry[Any] = Registry("task")
SOURCES: Registry[Any] = Registry("dataset source")
DEGRADATIONS: Registry[Any] = Registry("degradation")
METHODS: Registry[Any] = Registry("method", key=lambda cls: f"{cls.task}/{cls.name}")
METRICS: Registry[Any] = Registry("metric")

_loaded = False


def load_builtins() -> None:
    """Import the harness's own components, every task package and the method entry points."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("harness.sources")
    importlib.import_module("harness.scoring")
    import tasks

    for info in pkgutil.iter_modules(tasks.__path__):
        if info.ispkg:
            importlib.import_module(f"tasks.{info.name}")
    _load_entry_points()


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plugin must not break the built-ins
            log.warning("cannot load method plugin %s (%s): %s", ep.name, ep.value, exc)
            continue
        METHODS.add(ep.name, cls)


def method_class(name: str) -> Any:
    """Look up a method by ``TASK/NAME`` or import a plugin given as ``module:Class``."""
    if ":" in name:
        return import_plugin(name)
    return METHODS.get(name)


def import_plugin(spec: str) -> Any:
    """Import ``package.module:Class`` and check that it is a Method subclass."""
    from harness.interfaces import Method

    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(f"cannot import plugin module {module_name!r}: {exc}", hint="is it installed or on PYTHONPATH?") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise UserError(f"module {module_name!r} has no attribute {attr!r}")
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise UserError(f"plugin {spec!r} is not a subclass of harness.interfaces.Method")
    return obj


def build_degradation(text: str | dict[str, Any], *, task: str | None = None) -> Any:
    """A validated degradation instance from ``name?k=v`` (or its YAML mapping form)."""
    from harness.refs import Ref

    ref = Ref.parse(text, what="degradation")
    cls = DEGRADATIONS.get(ref.name)
    if task is not None and cls.task != task:
        raise UserError(
            f"degradation {ref.name!r} belongs to task {cls.task!r}, not {task!r}; "
            f"valid choices for {task!r}: {choices(n for n, c in DEGRADATIONS.items() if c.task == task)}"
        )
    return cls.from_ref(ref)


def build_method(text: str | dict[str, Any], *, task: str | None = None) -> Any:
    """A validated method instance from ``TASK/NAME?k=v`` or ``module:Class?k=v``.

    The instance's ``build_ref`` is the reference a worker rebuilds it from.
    """
    from harness.interfaces import param_defaults
    from harness.refs import Ref, canonical

    ref = Ref.parse(text, what="method")
    cls = method_class(ref.name)
    if task is not None and cls.task != task:
        raise UserError(
            f"method {ref.name!r} belongs to task {cls.task!r}, not {task!r}; "
            f"valid choices for {task!r}: {choices(n for n, c in METHODS.items() if c.task == task)}"
        )
    method = cls.from_ref(ref)
    method.build_ref = canonical(ref.name, method.params.model_dump(mode="json"), param_defaults(cls.Params))
    return method
