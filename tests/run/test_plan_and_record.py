"""The plan (built once on the driver) and the record step (each batch into the run directory)."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest

from restorebench.core.errors import UserError
from restorebench.core.suite import parse_suite, resolve
from restorebench.run.plan import _parameter_count, make_plan
from restorebench.run.record import Recorder
from restorebench.run.store import RunDir
from restorebench.run.units import UnitResult


def _plan(folder, methods=("denoise/identity", "denoise/median")):
    suite = parse_suite(
        {
            "name": "t",
            "tasks": [
                {
                    "task": "denoise",
                    "datasets": [f"folder:{folder}"],
                    "degradations": ["gaussian?sigma=25"],
                    "methods": list(methods),
                }
            ],
        }
    )
    return make_plan(resolve(suite))


def test_the_plan_describes_each_method_once(image_folder):
    plan = _plan(image_folder, ("denoise/median?size=5", "denoise/dncnn?num_cpus=2"))
    units = list(plan.units())
    assert len(units) == plan.total == 3 * 2
    median, dncnn = plan.methods["denoise/median?size=5"], plan.methods["denoise/dncnn?num_cpus=2"]
    assert (median.kind, median.label, median.checkpoints) == ("classical", "denoise/median?size=5", ())
    assert math.isnan(median.parameters) and median.resources.num_cpus == 1
    # the label leaves out where it runs; the resources keep it; the size comes from the checkpoint header
    assert (dncnn.kind, dncnn.label, dncnn.resources.num_cpus) == ("neural", "denoise/dncnn", 2)
    assert dncnn.parameters == 210_960 and len(dncnn.checkpoints) == 2
    assert plan.metric_versions == {"psnr": "1", "ssim": "1", "psnr_y": "1", "ssim_y": "1"}
    assert {u.method for u in units} == set(plan.methods)


def test_record_writes_a_shard_its_samples_and_counts_failures(image_folder, tmp_path):
    plan = _plan(image_folder)
    run = RunDir.open(tmp_path / "run", plan.suite.to_dict(), resume=False)
    seen = []
    record = Recorder(plan, run, run_id=run.run_id, progress=lambda done, total, failed: seen.append((done, total)))
    record.start()
    first, second = list(plan.units())[:2]
    crop = np.full((4, 4, 3), 7, np.uint8)
    ok = UnitResult(
        first.unit_id,
        "ok",
        {"psnr": 30.0, "ssim": 0.9, "psnr_y": 31.0, "ssim_y": 0.91},
        runtime_s=0.5,
        megapixels=0.1,
        device="cpu",
        sample={"clean": crop, "degraded": crop, "restored": crop},
    )
    bad = UnitResult(second.unit_id, "failed", error="b_camera.png: ValueError: boom")
    record([ok, bad], {first.unit_id: first, second.unit_id: second})
    assert seen == [(0, 6), (2, 6)]
    assert (record.finished, record.failed, record.errors) == (2, 1, ["b_camera.png: ValueError: boom"])
    shards = list(run.shards.glob("part-*.parquet"))
    assert len(shards) == 1
    rows = pd.read_parquet(shards[0])
    assert len(rows) == 2 * 4 and set(rows["run_id"]) == {run.run_id}
    good = rows[rows["unit_id"] == first.unit_id].set_index("metric")
    assert good.loc["psnr", "value"] == 30.0 and good.loc["psnr", "method"] == plan.methods[first.method].label
    assert rows.loc[rows["unit_id"] == second.unit_id, "value"].isna().all()
    samples = list(run.samples.rglob("*.png"))
    assert {p.name for p in samples} == {"clean.png", "degraded.png", f"method-{first.method.replace('/', '_')}.png"}


def test_units_are_generated_lazily_with_the_ids_of_the_reference_hash(image_folder):
    """The plan generates units one by one (a synthetic source is never listed whole), and each
    id is :func:`unit_id` of its inputs, byte for byte (the results cache keys on them)."""
    import itertools

    from restorebench.run.units import unit_id

    suite = parse_suite(
        {
            "name": "t",
            "tasks": [
                {
                    "task": "denoise",
                    "datasets": ["synthetic:deadleaves?n=1000000&size=16"],
                    "degradations": ["gaussian?sigma=25", "saltpepper?density=0.1"],
                    "methods": ["denoise/identity", "denoise/median"],
                    "metrics": ["psnr"],
                }
            ],
        }
    )
    resolved = resolve(suite)
    plan = make_plan(resolved)
    assert plan.total == 4_000_000
    first = list(itertools.islice(plan.units(), 5))
    assert [(u.image.key, u.degradation, u.method) for u in first[:4]] == [
        ("00000", d, m)
        for d in ("gaussian?sigma=25", "saltpepper?density=0.1")
        for m in ("denoise/identity", "denoise/median")
    ]
    assert first[0].keep_sample and not first[4].keep_sample
    block = resolved.tasks[0]
    d, m = block.degradations[1], block.methods[0]
    expected = unit_id(
        task="denoise",
        image=first[2].image,
        degradation=d.identity(),
        method=m.identity(),
        metrics={"psnr": "1"},
        seed=0,
        quantize=True,
    )
    assert first[2].unit_id == expected


def test_an_unknown_size_is_a_warning_and_other_errors_are_raised(caplog):
    class Unreadable:
        ref = "denoise/dncnn"

        def __init__(self, error):
            self.error = error

        def parameter_count(self):
            raise self.error

    with caplog.at_level(logging.WARNING, logger="restorebench.run.plan"):
        count = _parameter_count(Unreadable(UserError("w.safetensors is not a readable .safetensors file")))
    assert math.isnan(count)
    assert "the size of denoise/dncnn is unknown (NaN): w.safetensors is not a readable" in caplog.text
    with pytest.raises(AttributeError):  # a bug in a method is not hidden as an unknown size
        _parameter_count(Unreadable(AttributeError("no such attribute")))
