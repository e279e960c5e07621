"""Typed registries of tasks, dataset sources, degradations, methods and metrics.

Components register themselves with :func:`register` when their module is imported;
which modules are imported is decided once, explicitly, by
:func:`restorebench.plugins.load_plugins`. A lookup never imports anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from restorebench.core.errors import UserError, choices
from restorebench.core.interfaces import Degradation, Method, Metric, Source, Task

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object. Unknown names raise :class:`UserError` listing what exists."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: add the object under ``name`` (default: its ``name`` attribute)."""

        def deco(obj: T) -> T:
            self.add(name or obj.name, obj)  # type: ignore[attr-defined]
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; another object under the same name is a ``ValueError``."""
        if not name:
            raise ValueError(f"a {self.what} needs a non-empty name")
        if name in self._items and self._items[name] is not obj:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self._items[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UserError(self.unknown(name)) from None

    def unknown(self, name: str) -> str:
        """The message for an unknown ``name``: a close match first, then every choice."""
        import difflib

        if not self._items:
            return (
                f"unknown {self.what} {name!r}: no {self.what} is registered (call restorebench.load_plugins() first)"
            )
        close = difflib.get_close_matches(name, self._items, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown {self.what} {name!r}; {guess}valid choices: {choices(self._items)}"

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(sorted(self._items.items()))

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)


TASKS: Registry[Task] = Registry("task")
SOURCES: Registry[type[Source]] = Registry("dataset source")
DEGRADATIONS: Registry[type[Degradation]] = Registry("degradation")
METHODS: Registry[type[Method]] = Registry("method")
METRICS: Registry[Metric] = Registry("metric")

C = TypeVar("C")


def register(component: C) -> C:
    """Register a :class:`Method`, :class:`Degradation` or :class:`Source` subclass, a
    :class:`Task` or a :class:`Metric`; returns it, so it works as a class decorator.

    A method is registered as ``TASK/NAME`` (both class attributes are required), a
    degradation by its ``name``, a source by its scheme (its ``name``).

    >>> from restorebench import Method, register
    >>> @register
    ... class Clip(Method):
    ...     task, name = "denoise", "clip_example"
    ...     def restore_one(self, item):
    ...         return item.image.clip(0, 1)
    >>> METHODS.get("denoise/clip_example") is Clip
    True
    """
    registry, name = _slot(component)
    registry.add(name, component)
    return component


def _slot(component: Any) -> tuple[Registry[Any], str]:
    if isinstance(component, Task):
        return TASKS, component.name
    if isinstance(component, Metric):
        return METRICS, component.name
    if isinstance(component, type) and issubclass(component, Method):
        if not component.task or not component.name:
            raise ValueError(f"method {component.__qualname__} needs the class attributes `task` and `name`")
        return METHODS, f"{component.task}/{component.name}"
    for base, registry in ((Degradation, DEGRADATIONS), (Source, SOURCES)):
        if isinstance(component, type) and issubclass(component, base):
            if not component.name:
                raise ValueError(f"{registry.what} {component.__qualname__} needs the class attribute `name`")
            return registry, component.name
    raise TypeError(f"cannot register {component!r}: not a Method, Degradation or Source subclass, a Task or a Metric")


def _unregister(component: Any) -> None:
    """Remove a registered component (tests of plugins clean up with this)."""
    registry, name = _slot(component)
    registry._items.pop(name, None)
