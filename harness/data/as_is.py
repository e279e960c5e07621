"""Photos with no reference, taken as they are: the ``as_is`` degradation and its checks.

A source without a reference (``folder:DIR?reference=none``, a manifest with only an ``lq``
column, ``parquet:FILE?reference=none&lq=COL``, ``hf:NAME?column=COL&reference=none``) loads
the photo itself. ``as_is`` hands it to the task's :class:`~restorebench.core.interfaces.AsIs`,
which makes the task's input of it (the noisy photo for denoising, the photo and a scale for
super-resolution, its lightness for colorization, ...); its parameters are the task's
(``as_is?scale=4``, ``as_is?masks=DIR``). Only metrics that need no reference score such
runs (NIQE, colourfulness, runtime); asking for another is refused before any work starts.
"""

from __future__ import annotations

import numpy as np
from pydantic import ConfigDict

from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degradation, Degraded, ImageRef, Params, Source
from restorebench.core.no_reference import task_spec
from restorebench.core.registry import TASKS, register


class _Unbound(Params):
    """Any parameters: which ones are valid depends on the task (checked by :meth:`AsIsPhoto.bind`)."""

    model_config = ConfigDict(extra="allow", frozen=True)


@register
class AsIsPhoto(Degradation):
    """The photo of a source with no reference, as it is, made the task's input by the task."""

    name = "as_is"
    task = "*"
    takes_photos = True
    Params = _Unbound

    def bind(self, task: str) -> None:
        spec = task_spec(TASKS.get(task))
        fields = ", ".join(sorted(spec.Params.model_fields)) or "none"
        self.adopt_params(spec.Params, task, hint=f"{task} takes {spec.expects}; its as_is parameters: {fields}")
        super().bind(task)

    def degrade(self, source: Source, image: ImageRef, clean: np.ndarray, rng: np.random.Generator) -> Degraded:
        if source.has_reference:
            raise ValueError(f"as_is takes photos with no reference; {source.ref} holds clean images")
        if self.for_task is None:
            raise ValueError("as_is was built without a task: build it with build_degradation(ref, task=...)")
        return task_spec(TASKS.get(self.for_task)).prepare(clean, self.params, image, source)

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        raise UserError("as_is takes a photo with no reference as it is; it cannot degrade a clean image")
