"""Cutting a run into batches: every unit once, neural methods apart, batches small enough
that the last ones to finish leave the other workers idle only briefly."""

from __future__ import annotations

from collections import Counter

from restorebench.core.interfaces import ImageRef, Resources
from restorebench.run.batches import CLASSICAL_BATCHES_PER_WORKER, MAX_BATCH, NEURAL_BATCHES_PER_WORKER, make_batches
from restorebench.run.plan import MethodInfo
from restorebench.run.units import WorkUnit


def _units(images: int, methods: tuple[str, ...]) -> list[WorkUnit]:
    return [
        WorkUnit(
            unit_id=f"{i}-{sigma}-{m}",
            task="denoise",
            image=ImageRef(dataset="synthetic:x", key=f"{i:03d}", content_hash=str(i)),
            degradation=f"gaussian?sigma={sigma}",
            method=m,
            metrics=("psnr",),
            seed=0,
        )
        for i in range(images)
        for sigma in (15, 50)
        for m in methods
    ]


def _info(kind: str) -> MethodInfo:
    return MethodInfo(
        build_ref="x", label="x", kind=kind, version="1", resources=Resources(), non_blind=False, parameters=0.0
    )


METHODS = {
    "denoise/median": _info("classical"),
    "denoise/nlmeans": _info("classical"),
    "denoise/dncnn": _info("neural"),
}


def test_every_unit_lands_in_exactly_one_batch_and_neural_ones_apart():
    units = _units(25, tuple(METHODS))
    batches = make_batches(units, METHODS, parallelism=2)
    assert Counter(u.unit_id for b in batches for u in b) == Counter(u.unit_id for u in units)
    for batch in batches:
        kinds = {METHODS[u.method].kind for u in batch}
        assert len(kinds) == 1
        if kinds == {"neural"}:
            assert {u.method for u in batch} == {"denoise/dncnn"}


def test_a_small_run_is_cut_into_many_batches_per_worker():
    # 100 classical units on 2 workers: batches of 4 units (one image's, 2 levels x 2 methods),
    # 25 of them; with batches of 13 (four per worker) the last one held a worker ~8 s alone
    units = _units(25, ("denoise/median", "denoise/nlmeans"))
    batches = make_batches(units, METHODS, parallelism=2)
    assert len(batches) == 25 and {len(b) for b in batches} == {4}
    assert all(len({u.image.key for u in b}) == 1 for b in batches)
    assert CLASSICAL_BATCHES_PER_WORKER == 16


def test_a_large_run_keeps_batches_at_most_max_batch():
    units = _units(2000, ("denoise/median", "denoise/nlmeans"))  # 8,000 units
    batches = make_batches(units, METHODS, parallelism=2)
    assert max(len(b) for b in batches) == MAX_BATCH
    assert sum(len(b) for b in batches) == 8000


def test_neural_batches_stay_large_for_the_actors_that_hold_a_device():
    # 150 units, 50 of them DnCNN's: classical batches of ceil(150 / 32) = 5, neural ones of
    # ceil(150 / 8) = 19 (sixteen per worker for the actors took the default suite 148 -> 187 s)
    units = _units(25, tuple(METHODS))
    batches = make_batches(units, METHODS, parallelism=2)
    neural = [len(b) for b in batches if METHODS[b[0].method].kind == "neural"]
    classical = [len(b) for b in batches if METHODS[b[0].method].kind == "classical"]
    assert max(neural) == 19 and sum(neural) == 50 and NEURAL_BATCHES_PER_WORKER == 4
    assert max(classical) == 5 and sum(classical) == 100
