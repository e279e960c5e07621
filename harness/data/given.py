"""``given``: the degraded input a paired source holds, handed to the method with the level it
stands for (``given?scale=4``, ``given?sigma=25``, or a manifest's level columns).

Which levels exist is each task's to say (``Task.levels``: denoising's ``sigma`` and ``density``,
super-resolution's ``scale``, ...); the task also adapts a pair to its protocol (``Task.given``:
super-resolution modcrops the HR and checks the LR is HR / scale) and says before any work
starts what is wrong with a pair of given sizes (``Task.given_check``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ConfigDict, ValidationError

from restorebench.core.errors import UserError
from restorebench.core.interfaces import Degradation, Degraded, ImageRef, Params, Source
from restorebench.core.registry import TASKS, register


class _Levels(Params):
    """Any parameters: which levels are valid is the task's to say (checked by :meth:`Given.bind`)."""

    model_config = ConfigDict(extra="allow", frozen=True)


@register
class Given(Degradation):
    """The degraded input a paired source holds, with the level it stands for (the task's
    levels: ``Task.levels``, e.g. denoising's ``sigma``, super-resolution's ``scale``)."""

    name = "given"
    task = "*"
    level = "*"  # its parameters are levels: the one it sets is its level
    needs_pairs = True
    Params = _Levels

    def bind(self, task: str) -> None:
        model = TASKS.get(task).levels or Params
        fields = ", ".join(sorted(model.model_fields)) or "none"
        self.adopt_params(model, task, hint=f"the levels {task}'s pairs may state: {fields}")
        super().bind(task)

    def levels_of(self, source: Source, image: ImageRef) -> dict[str, Any]:
        """The levels a pair stands for: the source's (a manifest's columns) and this reference's,
        validated by the task's level model; a conflict or an invalid level is a ValueError."""
        declared = {k: v for k, v in self.params.model_dump().items() if v is not None}
        merged = dict(declared)
        for key, value in source.levels(image).items():
            if key in declared and float(declared[key]) != float(value):
                raise ValueError(f"the source says {key}={value:g}, the degradation given?{key}={declared[key]:g}")
            merged.setdefault(key, value)
        model = self.Params  # the task's levels, adopted by bind (none: no field)
        if not model.model_fields:
            if merged:
                raise ValueError(f"{self.for_task} states no levels, and this pair has {', '.join(sorted(merged))}")
            return {}
        unknown = sorted(set(merged) - set(model.model_fields))
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} is not a level of {self.for_task} (its levels: {', '.join(model.model_fields)})"
            )
        try:
            valid = model(**merged)
        except ValidationError as exc:
            raise ValueError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None
        return {k: v for k, v in valid.model_dump().items() if v is not None}

    def degrade(self, source: Source, image: ImageRef, clean: np.ndarray, rng: np.random.Generator) -> Degraded:
        if not source.paired:
            raise UserError(f"given needs a paired source; {source.ref} has no degraded inputs")
        try:
            levels = self.levels_of(source, image)
        except ValueError as exc:
            raise ValueError(f"{image.key}: {exc}") from None
        lq = source.load_lq(image)
        degraded = Degraded(image=lq, degradation=self.name, params=levels)
        task = TASKS.get(self.for_task) if self.for_task in TASKS else None
        if task is not None and task.given is not None:  # the task adapts the pair (sizes, channels)
            return task.given(degraded, clean)
        if lq.shape[2:] != clean.shape[2:]:
            raise ValueError(
                f"{image.key}: the LQ has {_channels(lq)}, its GT {_channels(clean)}: a pair's images must have the "
                "same channels (convert one of them)"
            )
        if degraded.image.shape[:2] != clean.shape[:2]:
            raise ValueError(f"the LQ is {_size(degraded.image)}, its GT {_size(clean)}: they must be the same size")
        return degraded

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> Degraded:
        raise UserError("given reads the degraded input of a paired source; it cannot degrade an image itself")


def _channels(img: np.ndarray) -> str:
    n = img.shape[2] if img.ndim == 3 else 1
    return {1: "1 channel (gray)", 3: "3 channels (RGB)"}.get(n, f"{n} channels")


def _size(img: np.ndarray) -> str:
    return f"{img.shape[1]}x{img.shape[0]}"


def given_problems(source: Source, images: list[ImageRef], degradation: Degradation, task: Any) -> list[str]:
    """Why pairs of ``source`` cannot be scored with ``degradation`` (``given``) under ``task``'s
    protocol, found before any work starts from their levels and header sizes: a level the task
    needs and nobody gave, an LQ whose size does not fit (one line per pair)."""
    problems = []
    for image in images:
        sizes = source.pair_sizes(image)
        try:
            levels = degradation.levels_of(source, image)
        except ValueError as exc:
            problems.append(f"{image.key}: {exc}")
            continue
        if task.given_check is not None:
            problem = task.given_check(sizes[0], sizes[1], levels) if sizes else None
        elif sizes and sizes[0] != sizes[1]:
            problem = (
                f"the LQ is {sizes[1][1]}x{sizes[1][0]}, its GT {sizes[0][1]}x{sizes[0][0]}: they must be the same size"
            )
        else:
            problem = None
        if problem:
            problems.append(f"{image.key}: {problem}")
    return problems
