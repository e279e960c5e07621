"""Building components from references: ``TASK/NAME?k=v``, ``name?k=v``, ``scheme:target?k=v``.

One short function per registry turns a reference (or its YAML mapping form) into a
validated instance; an unknown name or a bad parameter is a :class:`UserError` that
names it and lists the valid choices.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

from restorebench.core.errors import UserError, choices
from restorebench.core.interfaces import Degradation, Method, Source, param_defaults
from restorebench.core.metric import Metric
from restorebench.core.refs import Ref, canonical
from restorebench.core.registry import DEGRADATIONS, METHODS, METRICS, SOURCES, TASKS

_SCHEME_HINT = "write SCHEME:TARGET, e.g. bundled:photos, folder:DIR, synthetic:deadleaves?n=8, hf:NAME"


def build_source(text: str) -> Source:
    """A source from a dataset reference such as ``folder:photos?recursive=true``.

    >>> build_source("synthetic:deadleaves?n=2").ref
    'synthetic:deadleaves?n=2'
    """
    scheme, sep, rest = str(text).strip().partition(":")
    if not sep or not scheme:
        hint = f"for a directory write folder:{text}" if os.path.isdir(str(text)) else _SCHEME_HINT
        raise UserError(f"dataset reference {text!r} has no scheme", hint=hint)
    cls = SOURCES.get(scheme)
    if not rest.strip():
        raise UserError(f"dataset reference {text!r} has no target after {scheme + ':'!r}", hint=_SCHEME_HINT)
    if "=" in rest.split("?", 1)[0] and "target" not in cls.Params.model_fields:  # scheme:key=value&...
        return cls.from_ref(Ref(scheme, dict(Ref.parse("x?" + rest, what="dataset reference").params)))
    ref = Ref.parse(rest, what="dataset reference")
    if "target" in ref.params:
        raise UserError(f"dataset reference {text!r}: give the target after the colon, not as ?target=")
    return cls.from_ref(Ref(scheme, {**ref.params, "target": ref.name}))


_SOURCE_CACHE: dict[str, Source] = {}


def get_source(text: str) -> Source:
    """:func:`build_source`, cached per process (workers ask for every batch)."""
    if text not in _SOURCE_CACHE:
        _SOURCE_CACHE[text] = build_source(text)
    return _SOURCE_CACHE[text]


def build_degradation(text: str | dict[str, Any], *, task: str | None = None) -> Degradation:
    """A validated degradation instance from ``name?k=v`` (or its YAML mapping form)."""
    ref = Ref.parse(text, what="degradation")
    cls = DEGRADATIONS.get(ref.name)
    if task is not None and cls.task not in (task, "*"):
        raise UserError(
            f"degradation {ref.name!r} belongs to task {cls.task!r}, not {task!r}; "
            f"valid choices for {task!r}: {choices(n for n, c in DEGRADATIONS.items() if c.task in (task, '*'))}"
        )
    degradation = cls.from_ref(ref)
    if task is not None:
        degradation.bind(task)  # a task-agnostic degradation (``given``, ``as_is``) adapts to it
    return degradation


_METRIC_CACHE: dict[str, Metric] = {}


def build_metric(text: str) -> Metric:
    """A metric from ``name`` or ``name?key=value`` (e.g. ``auc_rebal?prior=FILE``), cached
    per process. A configured metric is named by its canonical reference, which is what
    results tables, leaderboards and ``compare`` call it.

    >>> build_metric("psnr").unit
    'dB'
    """
    if text not in _METRIC_CACHE:
        ref = Ref.parse(text, what="metric")
        metric = METRICS.get(ref.name)
        label = canonical(ref.name, ref.params)
        try:
            _METRIC_CACHE[text] = metric.with_params(label, ref.params)
        except ValueError as exc:
            raise UserError(f"metric {text!r}: {exc}") from None
    return _METRIC_CACHE[text]


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")


def build_method(text: str | dict[str, Any], *, task: str | None = None) -> Method:
    """A validated method instance from ``TASK/NAME?k=v`` or ``module:Class?k=v``.

    The instance's ``build_ref`` is the reference a worker rebuilds it from. Any method
    takes ``label=NAME``: its leaderboard row becomes ``TASK/NAME@label`` (e.g. to tell two
    checkpoints apart by name); the label does not change results or unit ids.
    """
    ref = Ref.parse(text, what="method")
    params = dict(ref.params)
    label = params.pop("label", None)
    if label is not None and not _LABEL.match(str(label)):
        raise UserError(f"method {ref.name!r}: label {label!r} must be 1-40 letters, digits, '.', '_' or '-'")
    ref = Ref(ref.name, params)
    cls = method_class(ref.name)
    if task is not None and cls.task != task:
        raise UserError(
            f"method {ref.name!r} belongs to task {cls.task!r}, not {task!r}; "
            f"valid choices for {task!r}: {choices(n for n, c in METHODS.items() if c.task == task)}"
        )
    method = cls.from_ref(ref)
    method.user_label = label
    shown = method.params.model_dump(mode="json") | ({"label": label} if label else {})
    method.build_ref = canonical(ref.name, shown, param_defaults(cls.Params))
    return method


def method_class(name: str) -> type[Method]:
    """Look up a method by ``TASK/NAME`` or import a plugin given as ``module:Class``."""
    if ":" in name:
        return import_plugin(name)
    return METHODS.get(name)


def import_plugin(spec: str) -> type[Method]:
    """Import ``package.module:Class`` and check that it is a usable Method subclass."""
    module_name, _, attr = spec.partition(":")
    _search_working_directory()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UserError(
            f"cannot import plugin module {module_name!r}: {exc}", hint="is it installed or on PYTHONPATH?"
        ) from None
    except Exception as exc:
        raise UserError(f"plugin module {module_name!r} fails on import: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise UserError(f"module {module_name!r} has no attribute {attr!r}")
    return check_plugin(obj, f"plugin {spec!r}")


def _search_working_directory() -> None:
    """Let ``my_plugin:Class`` find ``./my_plugin.py``, as ``python -m`` would: the working
    directory goes at the *end* of ``sys.path``, so an installed package always wins (and a
    local ``tasks.py`` or ``harness.py`` can never shadow restorebench's own modules)."""
    import sys

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def check_plugin(obj: Any, what: str) -> type[Method]:
    """``obj`` if it is a Method subclass with a known ``task`` and a ``name``, else a UserError."""
    if not (isinstance(obj, type) and issubclass(obj, Method)):
        raise UserError(f"{what} is not a subclass of restorebench.Method")
    tasks = choices(TASKS.names())
    if not obj.task:
        raise UserError(f"{what} has no `task` attribute", hint=f"set task = one of: {tasks}")
    if obj.task not in TASKS:
        raise UserError(f"{what} has task {obj.task!r}, which is not a task", hint=f"set task = one of: {tasks}")
    if not obj.name:
        raise UserError(f"{what} has no `name` attribute", hint="set name = 'my_method' (it names its leaderboard row)")
    return obj
