"""restorebench: a distributed dataset-and-benchmark harness for image restoration.

This module is the plugin API: what a method, degradation, dataset source or task
author needs, and nothing else. A third-party method::

    from restorebench import Method, register

    @register
    class Sharpen(Method):
        task = "denoise"          # required: the task it belongs to
        name = "sharpen"          # required: its name, shown as denoise/sharpen

        def restore_one(self, item):
            return item.image     # float32 HWC in [0, 1], the clean image's shape

The engine's wings (``restorebench.core``, ``data``, ``score``, ``run``, ``neural``,
``track``, ``report``, ``commands``) follow the data path; see the README's
"Architecture" section.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restorebench.core.errors import ImageLoadError, SkipUnit, UserError
    from restorebench.core.interfaces import (
        AsIs,
        Degradation,
        Degraded,
        ImageRef,
        Method,
        Params,
        Resources,
        Source,
        Task,
    )
    from restorebench.core.metric import Metric
    from restorebench.core.registry import register
    from restorebench.neural.inference import NeuralMethod, NeuralParams
    from restorebench.plugins import load_plugins

# Resolved on first use (PEP 562), so `import restorebench` (and the CLI's start) stays cheap.
_HOMES = {
    "ImageLoadError": "restorebench.core.errors",
    "SkipUnit": "restorebench.core.errors",
    "UserError": "restorebench.core.errors",
    "AsIs": "restorebench.core.interfaces",
    "Degradation": "restorebench.core.interfaces",
    "Degraded": "restorebench.core.interfaces",
    "ImageRef": "restorebench.core.interfaces",
    "Method": "restorebench.core.interfaces",
    "Metric": "restorebench.core.metric",
    "Params": "restorebench.core.interfaces",
    "Resources": "restorebench.core.interfaces",
    "Source": "restorebench.core.interfaces",
    "Task": "restorebench.core.interfaces",
    "load_plugins": "restorebench.plugins",
    "register": "restorebench.core.registry",
    "NeuralMethod": "restorebench.neural.inference",
    "NeuralParams": "restorebench.neural.inference",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'restorebench' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [  # noqa: F822 (resolved by __getattr__)
    "AsIs",
    "Degradation",
    "Degraded",
    "ImageLoadError",
    "ImageRef",
    "Method",
    "Metric",
    "NeuralMethod",
    "NeuralParams",
    "Params",
    "Resources",
    "SkipUnit",
    "Source",
    "Task",
    "UserError",
    "__version__",
    "load_plugins",
    "register",
]
