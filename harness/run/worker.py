"""What a worker does with a batch of units: load, degrade, restore, score.

Executors (in-process or Ray) all call :func:`run_batch`, so every executor computes
bit-identical numbers. Components are built from their references and cached per
process; a unit that fails is returned as failed with its error, and the batch goes on.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import numpy as np

from restorebench.core.errors import SkipUnit
from restorebench.core.interfaces import Degraded, ImageRef, Method, Source
from restorebench.data.images import encode_png
from restorebench.run.units import UnitResult, WorkUnit, degradation_rng

log = logging.getLogger(__name__)

SAMPLE_CROP = 192  # side of the centre crop kept for before/after grids
VIEW_SIDE = 1600  # long side of the whole-image views of photos with no reference
DARK = 0.25  # an input whose 99th percentile is below this is brightened for its sample crop


@cache
def _degradation(ref: str, task: str) -> Any:
    from restorebench.core.build import build_degradation

    return build_degradation(ref, task=task)


@cache
def _method(ref: str) -> Method:
    from restorebench.core.build import build_method

    method = build_method(ref)
    method.setup()
    set_thread_limit(_threads)  # setup may have imported torch
    method._warmed_up = False  # type: ignore[attr-defined]
    return method


def _source(image: ImageRef) -> Source:
    from restorebench.core.build import get_source

    return get_source(image.dataset)


_threads = os.cpu_count() or 1


def set_thread_limit(num_threads: int, *, torch_too: bool = False) -> None:
    """Keep libraries inside this worker's CPU allocation (Ray reuses worker processes).
    ``torch_too``: import torch to limit it even before the method has (a neural method that
    imports torch inside ``restore`` would otherwise run its first unit on all cores)."""
    global _threads
    num_threads = _threads = max(1, int(num_threads))
    try:
        import cv2

        cv2.setNumThreads(num_threads)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass
    if torch_too or "torch" in sys.modules:
        import torch

        torch.set_num_threads(num_threads)


def inference_threads(method: Method) -> int:
    """The CPU threads a neural method's inference runs on: the CPUs it reserves (``num_cpus``),
    whatever the executor; part of its identity (see NeuralMethod.identity)."""
    return max(1, int(method.required_resources().num_cpus))


def device_name(method: Method | None = None) -> str:
    """Where restore ran: the method's device (e.g. a GPU's name), or this CPU."""
    name = method.device_name() if method is not None else "cpu"
    return name if name != "cpu" else f"cpu:{platform.machine()}:{os.cpu_count()}"


WARM_UP_CROP = 32  # side of the crop of the untimed warm-up call


def _warm_up(method: Method, item: Degraded) -> None:
    """One untimed call on a small crop so imports and caches don't count as runtime (the
    extras of the image's size, e.g. an inpainting mask, are cropped with it)."""
    if getattr(method, "_warmed_up", True) or not method.warm_up:
        return
    h, w = item.image.shape[:2]
    extras = {k: _crop_like(v, h, w) for k, v in item.extras.items()}
    crop = Degraded(item.image[:WARM_UP_CROP, :WARM_UP_CROP], item.degradation, item.params, extras=extras)
    try:
        method.restore([crop])
    except Exception as exc:  # broad: a method may raise anything on a crop; its timed call reports its own errors
        log.warning(
            "the untimed warm-up of %s on a %dx%d crop failed (%s: %s), so its first timed call includes "
            "its start-up; a method that cannot restore a crop sets warm_up = False",
            method.ref,
            WARM_UP_CROP,
            WARM_UP_CROP,
            type(exc).__name__,
            exc,
        )
    method._warmed_up = True  # type: ignore[attr-defined]


def _crop_like(value: Any, h: int, w: int) -> Any:
    """``value`` cropped as the warm-up crops the image when it is an array of the image's height and width."""
    if isinstance(value, np.ndarray) and value.ndim >= 2 and value.shape[:2] == (h, w):
        return value[:WARM_UP_CROP, :WARM_UP_CROP]
    return value


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def _displayable(img: np.ndarray) -> np.ndarray:
    """An input that is not an image (e.g. 4 packed raw channels, a dark exposure) made
    viewable: its first three channels, brightened when it is very dark."""
    if img.ndim == 3 and img.shape[2] not in (1, 3):
        img = img[..., :3]
    if not img.size:
        return img
    # the 99th percentile is at least DARK when enough values are: then it is not needed (a
    # percentile sorts the whole image, ~4 ms at 512x512; the count is ~0.5 ms)
    rank = int(0.99 * (img.size - 1))  # np.percentile's lower neighbour of the 99 % rank
    if np.count_nonzero(img >= DARK) >= img.size - rank:
        return img
    top = float(np.percentile(img, 99))
    return img / top if 0 < top < DARK else img


def view(img: np.ndarray, side: int = VIEW_SIDE) -> np.ndarray:
    """A whole image as 8-bit, shrunk (box filter) to at most ``side`` pixels on its long
    side: what the report shows of a photo with no reference and of each method's output."""
    arr = _to_uint8(img)
    h, w = arr.shape[:2]
    if max(h, w) <= side:
        return arr
    from PIL import Image

    size = (max(1, round(w * side / max(h, w))), max(1, round(h * side / max(h, w))))
    gray = arr.ndim == 3 and arr.shape[2] == 1
    small = np.asarray(Image.fromarray(arr[..., 0] if gray else arr).resize(size, Image.Resampling.BOX))
    return small[..., None] if gray else small


def _centre_crop(img: np.ndarray, size: int = SAMPLE_CROP) -> np.ndarray:
    h, w = img.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return _to_uint8(img[top : top + size, left : left + size])


class InvalidOutput(ValueError):
    """A method returned something that is not a restored image; the unit fails with this message."""


def validate_output(output: object, shape: tuple[int, ...], method: str) -> np.ndarray:
    """``output`` as float32 when it is a real, finite, float image of ``shape`` (or a stack
    of samples, ``N x shape``); else :class:`InvalidOutput` saying what the method returned.
    Nothing is silently coerced: an 8-bit output would be clipped to white, a complex one
    cut to its real part."""
    try:
        arr = np.asarray(output)
    except (ValueError, TypeError) as exc:  # ragged lists, objects that refuse conversion
        raise InvalidOutput(f"{method} returned {type(output).__name__}, not an image array: {exc}") from None
    kind = arr.dtype.kind
    if kind in "iub":
        hint = " (divide 8-bit values by 255)" if arr.dtype == np.uint8 else ""
        raise InvalidOutput(f"{method} returned {arr.dtype} values; return floats in [0, 1]{hint}")
    if kind == "c":
        raise InvalidOutput(f"{method} returned complex values ({arr.dtype}); return real floats in [0, 1]")
    if kind != "f":
        raise InvalidOutput(f"{method} returned an array of {arr.dtype}; return floats in [0, 1]")
    samples = arr.ndim == len(shape) + 1 and arr.shape[1:] == tuple(shape) and arr.shape[0] >= 1
    if arr.shape != tuple(shape) and not samples:
        raise InvalidOutput(f"{method} returned shape {arr.shape}, expected the clean image's {tuple(shape)}")
    bad = ~np.isfinite(arr)
    if bad.any():
        kinds = ", ".join(
            k for k, m in (("NaN", np.isnan(arr)), ("+Inf", arr == np.inf), ("-Inf", arr == -np.inf)) if m.any()
        )
        raise InvalidOutput(f"{method} returned {int(bad.sum())} non-finite values ({kinds})")
    return arr.astype(np.float32, copy=False)


def run_unit(unit: WorkUnit, clean: np.ndarray | None, degraded: Degraded) -> UnitResult:
    """Restore and score one unit whose clean and degraded images are already at hand
    (``clean`` None: a photo with no reference, scored by no-reference metrics only)."""
    from restorebench.score.entries import score, score_samples

    if degraded.reference is not None:
        clean = degraded.reference
    shape = degraded.output_shape or (clean.shape if clean is not None else degraded.image.shape)
    method = _method(unit.method)
    if method.kind == "neural":
        # The same intra-op thread count under every executor (the one the method reserves):
        # float sums, and so the last bits of a network's output, depend on it.
        set_thread_limit(inference_threads(method), torch_too=True)
    _warm_up(method, degraded)
    start = time.perf_counter()
    outputs = method.restore([degraded])
    runtime = time.perf_counter() - start
    if len(outputs) != 1:
        raise ValueError(f"{method.qualified_name}.restore returned {len(outputs)} images for 1 input")
    restored = validate_output(outputs[0], tuple(shape), method.qualified_name)
    if restored.ndim == len(shape) + 1:  # several samples: mean scores and the oracle's
        scores = score_samples(restored, clean, degraded, unit.metrics, quantize=unit.quantize)
        restored = restored[0]
    else:
        scores = score(restored, clean, degraded, unit.metrics, quantize=unit.quantize)
    sample = None
    if unit.keep_sample and clean is None:  # a photo with no reference: the whole input and output
        sample = {"input": view(_displayable(degraded.image)), "restored": view(restored)}
    elif unit.keep_sample:
        sample = {
            "clean": _centre_crop(clean),
            "degraded": _centre_crop(_displayable(degraded.image)),
            "restored": _centre_crop(restored),
        }
    output = encode_png(restored, 8 if unit.quantize else 16) if unit.save_output else None
    return UnitResult(
        unit_id=unit.unit_id,
        status="ok",
        output=output,
        metrics=scores.values,
        stats=scores.stats,
        metric_errors=scores.errors,
        runtime_s=runtime,
        megapixels=shape[0] * shape[1] / 1e6,
        device=device_name(method),
        sample=sample,
    )


def _failed(unit: WorkUnit, exc: BaseException) -> UnitResult:
    if isinstance(exc, SkipUnit):
        return UnitResult(
            unit_id=unit.unit_id, status="skipped", error=f"{unit.image.key}: {exc}", device=device_name()
        )
    where = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return UnitResult(unit_id=unit.unit_id, status="failed", error=f"{unit.image.key}: {where}", device=device_name())


# The last image a batch on this process used, with its degraded inputs (successes only).
# Batches are cut in image order, so the next batch a worker gets most often starts with the
# same image's other units: they skip its decode and degradation.
_last_image: dict[str, np.ndarray] = {}
_last_inputs: dict[tuple, Degraded] = {}


def run_batch(
    units: Sequence[WorkUnit], num_threads: int = 1, on_unit: Callable[[WorkUnit], None] | None = None
) -> list[UnitResult]:
    """Compute a batch of units; images and degraded inputs are shared within the batch (and
    the last image with the next batch). ``on_unit`` is told each unit before it runs."""
    from restorebench.plugins import load_plugins

    load_plugins()  # a Ray worker process starts with empty registries
    set_thread_limit(num_threads)
    images: dict[str, np.ndarray | BaseException] = dict(_last_image)
    inputs: dict[tuple, Degraded] = dict(_last_inputs)
    results = []
    key = None
    for unit in units:
        if on_unit is not None:
            on_unit(unit)
        try:
            key = unit.image.content_hash + unit.image.locator
            source = _source(unit.image)
            if key not in images:
                try:
                    images[key] = source.load(unit.image)
                except Exception as exc:  # broad: any load failure is recorded per unit, the batch goes on
                    images[key] = exc
            clean = images[key]
            if isinstance(clean, BaseException):
                raise clean
            dkey = (key, unit.task, unit.degradation, unit.seed)
            if dkey not in inputs:
                degradation = _degradation(unit.degradation, unit.task)
                rng = degradation_rng(unit.seed, unit.image, degradation.identity())
                inputs[dkey] = degradation.degrade(source, unit.image, clean, rng)
            # a source with no reference loads the photo itself: it is the input, not the truth
            results.append(run_unit(unit, clean if source.has_reference else None, inputs[dkey]))
        except Exception as exc:  # broad: any failure of a unit is recorded as its error; the batch goes on
            log.debug("unit %s failed", unit.unit_id, exc_info=True)
            results.append(_failed(unit, exc))
    _keep_last(key, images, inputs)
    return results


def _keep_last(key: str | None, images: dict, inputs: dict) -> None:
    """Keep the batch's last image and its degraded inputs for the next batch, if they loaded."""
    _last_image.clear()
    _last_inputs.clear()
    if key is None or key not in images or isinstance(images[key], BaseException):
        return
    _last_image[key] = images[key]
    _last_inputs.update((k, v) for k, v in inputs.items() if k[0] == key)
