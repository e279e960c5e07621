"""Discovery: the one explicit step that fills the registries.

:func:`load_plugins` imports the engine's own components (dataset sources, metrics),
every built-in task package under ``restorebench.tasks`` and the third-party methods of
the entry-point group ``restorebench.methods``. The command line and the pipeline call
it once per process (workers too); nothing is imported as a side effect of a lookup.
It marks itself done only after it succeeded, and a broken plugin is one clear error
naming it.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

from restorebench.core.errors import UserError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "restorebench.methods"
TASKS_PACKAGE = "restorebench.tasks"

_loaded = False


def loaded() -> bool:
    """Whether :func:`load_plugins` has completed in this process."""
    return _loaded


def load_plugins(*, entry_points: bool = True) -> None:
    """Import the engine's components, the built-in tasks and (``entry_points``) the plugins.

    Idempotent: later calls return at once. A task package or plugin that fails to import
    raises :class:`UserError` naming it (and the registries stay as they were, so the
    next call tries again).
    """
    global _loaded
    if _loaded:
        return
    _engine_components()
    for name in builtin_tasks():
        _import(name, f"built-in task package {name}")
    if entry_points:
        _load_entry_points()
    _loaded = True


def _engine_components() -> None:
    """Import the engine's own sources, degradations and metrics; each registers itself. Plain
    imports, so the import-rules test sees them (this module is outside the wings: it is the
    one place that knows every part of the engine that registers something)."""
    from restorebench.data import as_is, bundled, cards, folder, given, hf, paired, synthetic  # noqa: F401
    from restorebench.score import entries  # noqa: F401


def builtin_tasks() -> list[str]:
    """The module names of the task packages that ship with restorebench."""
    package = importlib.import_module(TASKS_PACKAGE)
    return [f"{TASKS_PACKAGE}.{info.name}" for info in pkgutil.iter_modules(package.__path__) if info.ispkg]


def _import(name: str, what: str) -> object:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise UserError(f"cannot import {what}: {type(exc).__name__}: {exc}") from None


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    from restorebench.core.registry import METHODS

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:
            raise UserError(
                f"cannot load method plugin {ep.name!r} ({ep.value}) of entry-point group {ENTRY_POINT_GROUP}: "
                f"{type(exc).__name__}: {exc}",
                hint=f"fix or uninstall the package that provides it ({_distribution(ep)})",
            ) from None
        from restorebench.core.build import check_plugin

        check_plugin(cls, f"entry point {ep.name!r} ({ep.value})")
        if ep.name not in METHODS:
            METHODS.add(ep.name, cls)


def _distribution(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
