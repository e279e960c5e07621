"""Work units: one (image, degradation, method) triple of a task, and its content id.

A unit's id hashes everything that determines its result, so the same id always means
the same numbers: the image's content hash, the degradation and method identities
(name, version, parameters, checkpoint hash), the metric versions and the seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restorebench.core.interfaces import ImageRef
from restorebench.core.refs import stable_json


@dataclass(frozen=True)
class WorkUnit:
    """What a worker needs to compute one result; small and picklable."""

    unit_id: str
    task: str
    image: ImageRef
    degradation: str  # canonical reference, e.g. "gaussian?sigma=25"
    method: str  # canonical reference, e.g. "denoise/median" or "pkg.mod:Class"
    metrics: tuple[str, ...]
    seed: int
    quantize: bool = True
    keep_sample: bool = False  # return a crop of clean / degraded / restored for the report
    save_output: bool = False  # return the restored image as PNG bytes (--save-outputs)

    @property
    def dataset(self) -> str:
        return self.image.dataset


def unit_id(
    *,
    task: str,
    image: ImageRef,
    degradation: dict[str, Any],
    method: dict[str, Any],
    metrics: dict[str, str],
    seed: int,
    quantize: bool,
) -> str:
    """SHA-256 of the unit's inputs.

    The image enters by content hash and key, not by dataset reference, so the same files
    read from another folder or machine give the same id (and hit the cache).
    """
    payload = {
        "task": task,
        "image": [image.content_hash, image.key],
        "degradation": degradation,
        "method": method,
        "metrics": metrics,
        "seed": seed,
        "quantize": quantize,
    }
    return hashlib.sha256(stable_json(payload).encode()).hexdigest()[:32]


class UnitIds:
    """:func:`unit_id` for many units of one (task, degradation, method, metrics, seed): the
    JSON of everything but the image is built once, so a unit costs one short string and one
    SHA-256 (the same ids, byte for byte: ``stable_json`` of the same payload)."""

    def __init__(
        self,
        *,
        task: str,
        degradation: dict[str, Any],
        method: dict[str, Any],
        metrics: dict[str, str],
        seed: int,
        quantize: bool,
    ) -> None:
        self.head = '{"degradation":' + stable_json(degradation) + ',"image":'
        rest = {"method": method, "metrics": metrics, "quantize": quantize, "seed": seed, "task": task}
        self.tail = "".join(f",{stable_json(key)}:{stable_json(value)}" for key, value in rest.items()) + "}"

    def __call__(self, image: ImageRef) -> str:
        text = self.head + stable_json([image.content_hash, image.key]) + self.tail
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def degradation_rng(seed: int, image: ImageRef, degradation: dict[str, Any]) -> np.random.Generator:
    """The generator for one image's degradation: seeded by SHA-256(seed, image, degradation).

    The image enters by its content hash, so the same picture gets the same noise whatever
    dataset or path it was read from; Python's salted ``hash()`` is never used.
    """
    text = stable_json({"seed": seed, "image": image.content_hash, "degradation": degradation})
    digest = hashlib.sha256(text.encode()).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))


@dataclass
class UnitResult:
    """What a worker sends back for one unit."""

    unit_id: str
    status: str  # "ok", "failed", or "skipped" (nothing to score: SkipUnit)
    metrics: dict[str, float] = field(default_factory=dict)
    stats: dict[str, np.ndarray] = field(default_factory=dict)  # set-level metrics' per-image statistics
    metric_errors: dict[str, str] = field(default_factory=dict)  # metrics that could not be computed, and why
    runtime_s: float = float("nan")
    megapixels: float = float("nan")
    device: str = ""
    error: str = ""
    sample: dict[str, np.ndarray] | None = None
    output: bytes | None = None  # the restored image as PNG (8-bit when scored quantised, else 16-bit)
    cached: bool = False
    node: str = ""  # the Ray node that computed it (empty in-process)
