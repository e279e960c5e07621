"""The spine end to end on real components: sources -> units -> executors -> store -> cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restorebench.core.errors import UserError
from restorebench.run.pipeline import RunOptions, run_suite
from tests.runs import replace_results

pytestmark = pytest.mark.ray

METHODS = ("denoise/identity", "denoise/median", "denoise/box")


def _options(folder, out, **kw) -> RunOptions:
    base = dict(
        tasks=("denoise",),
        datasets=(f"folder:{folder}",),
        degradations=("gaussian?sigma=25", "saltpepper?density=0.1"),
        methods=METHODS,
        out=out,
        executor="local",
        tracking=False,
    )
    base.update(kw)
    return RunOptions(**base)


def _values(frame: pd.DataFrame) -> pd.Series:
    ok = frame[frame["status"] == "ok"]
    return ok.set_index(["image", "degradation", "method", "metric"])["value"].sort_index()


def test_local_and_ray_give_bit_identical_values(image_folder, tmp_path, ray_runtime):
    local = run_suite(_options(image_folder, tmp_path / "local"))
    remote = run_suite(_options(image_folder, tmp_path / "ray", executor="ray", use_cache=False))
    assert remote.computed == local.computed == 3 * 2 * len(METHODS)
    a, b = _values(local.results), _values(remote.results)
    assert len(a) == 3 * 2 * len(METHODS) * 4
    pd.testing.assert_series_equal(a, b, check_exact=True)
    stored = pd.read_parquet(tmp_path / "ray" / "results.parquet")
    pd.testing.assert_series_equal(_values(stored), b, check_exact=True)


def test_identity_psnr_matches_a_hand_computed_value(image_folder, tmp_path):
    """The noisy input scored by the harness equals PSNR computed here from the same draw."""
    from restorebench.core.build import build_degradation, build_source
    from restorebench.run.units import degradation_rng

    summary = run_suite(
        _options(image_folder, tmp_path / "run", methods=("denoise/identity",), degradations=("gaussian?sigma=25",))
    )
    source = build_source(f"folder:{image_folder}")
    image = source.list_images()[0]
    clean = source.load(image).astype(np.float64)
    deg = build_degradation("gaussian?sigma=25")
    noisy = deg.apply(clean.astype(np.float32), degradation_rng(0, image, deg.identity())).image
    quant = np.round(np.clip(noisy.astype(np.float64), 0, 1) * 255) / 255
    expected = 10 * np.log10(1.0 / np.mean((quant - clean) ** 2))
    got = summary.results.query("image == @image.key and metric == 'psnr'")["value"].item()
    assert got == pytest.approx(expected, abs=1e-4)
    assert 19.0 < got < 23.0  # sigma 25 noise, clipped to [0, 1] by the 8-bit output


def test_reruns_are_deterministic_and_seed_changes_the_input(image_folder, tmp_path):
    first = run_suite(_options(image_folder, tmp_path / "a", use_cache=False))
    second = run_suite(_options(image_folder, tmp_path / "b", use_cache=False))
    other = run_suite(_options(image_folder, tmp_path / "c", use_cache=False, seed=1))
    pd.testing.assert_series_equal(_values(first.results), _values(second.results), check_exact=True)
    assert not np.array_equal(_values(first.results).to_numpy(), _values(other.results).to_numpy())


def test_a_corrupt_image_fails_its_units_and_the_run_completes(image_folder, tmp_path):
    (image_folder / "d_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (image_folder / "e_empty.jpg").write_bytes(b"")
    summary = run_suite(_options(image_folder, tmp_path / "run"))
    units = summary.results.drop_duplicates("unit_id")
    failed = units[units["status"] == "failed"]
    assert set(failed["image"]) == {"d_broken.png", "e_empty.jpg"}
    assert len(failed) == summary.failed == 2 * 2 * len(METHODS)
    assert failed["error"].str.contains("d_broken.png|e_empty.jpg").all()
    assert (units["status"] == "ok").sum() == 3 * 2 * len(METHODS)


def test_resume_computes_only_missing_units(image_folder, tmp_path, monkeypatch):
    out = tmp_path / "run"
    full = run_suite(_options(image_folder, out, use_cache=False))
    expected = _values(full.results)  # read before the run directory is cut down below
    # Simulate an interrupted run: keep only the shard of part of the units.
    results = pd.read_parquet(out / "results.parquet")
    replace_results(out, results[results["image"] != "b_camera.png"])
    calls: list[int] = []
    import restorebench.run.worker as worker

    original = worker.run_batch

    def counting(units, num_threads=1, on_unit=None):
        calls.append(len(units))
        return original(units, num_threads, on_unit)

    monkeypatch.setattr(worker, "run_batch", counting)
    resumed = run_suite(_options(image_folder, out, use_cache=False, resume=True))
    assert sum(calls) == resumed.computed == 2 * len(METHODS)
    assert resumed.resumed == 2 * 2 * len(METHODS)
    pd.testing.assert_series_equal(expected, _values(resumed.results), check_exact=True)


def test_existing_run_dir_needs_resume(image_folder, tmp_path):
    run_suite(_options(image_folder, tmp_path / "run"))
    with pytest.raises(UserError, match="--resume"):
        run_suite(_options(image_folder, tmp_path / "run"))


def test_cache_makes_an_unchanged_rerun_compute_nothing(image_folder, tmp_path, monkeypatch):
    first = run_suite(_options(image_folder, tmp_path / "a"))
    assert first.computed == 3 * 2 * len(METHODS) and first.from_cache == 0
    second = run_suite(_options(image_folder, tmp_path / "b"))
    assert second.computed == 0 and second.from_cache == first.computed
    assert second.results["cached"].all()
    pd.testing.assert_series_equal(_values(first.results), _values(second.results), check_exact=True)
    # One method changes its parameters: only its units are recomputed.
    changed = run_suite(_options(image_folder, tmp_path / "c", methods=(*METHODS[:2], "denoise/box?size=5")))
    assert changed.computed == 3 * 2 and changed.from_cache == 3 * 2 * 2
    bypass = run_suite(_options(image_folder, tmp_path / "d", use_cache=False))
    assert bypass.computed == first.computed and bypass.from_cache == 0


def test_units_are_content_addressed(image_folder, tmp_path):
    """The same files in another folder give the same unit ids (and so hit the cache)."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(image_folder, copy)
    a = run_suite(_options(image_folder, tmp_path / "a"))
    b = run_suite(_options(copy, tmp_path / "b"))
    assert set(a.results["unit_id"]) == set(b.results["unit_id"])
    assert b.from_cache == a.computed


def test_results_table_has_the_documented_columns(image_folder, tmp_path):
    summary = run_suite(_options(image_folder, tmp_path / "run"))
    frame = pd.read_parquet(tmp_path / "run" / "results.parquet")
    for column in (
        "run_id",
        "unit_id",
        "task",
        "dataset",
        "image",
        "degradation",
        "method",
        "metric",
        "value",
        "runtime_s",
        "status",
        "error",
    ):
        assert column in frame.columns
    assert set(frame["metric"]) == {"psnr", "ssim", "psnr_y", "ssim_y"}
    assert (frame["run_id"] == summary.run_id).all()
    assert (frame.loc[frame["status"] == "ok", "runtime_s"] > 0).all()
    assert list((tmp_path / "run" / "shards").glob("*.parquet")) == []
    samples = list((tmp_path / "run" / "samples").rglob("*.png"))
    assert len(samples) == 2 * (2 + len(METHODS))  # per degradation: clean, degraded, one per method


PROBE = '''
import numpy as np

from restorebench import Method


class ThreadProbe(Method):
    """A "neural" method whose output is the intra-op thread count torch runs it with."""

    task, name, kind = "denoise", "thread_probe", "neural"

    def restore_one(self, item):
        import torch

        return np.full_like(item.image, torch.get_num_threads() / 10)
'''


@pytest.fixture(scope="module", autouse=True)
def probe_plugin(tmp_path_factory):
    """The probe plugin on the Python path of this process and of the Ray workers (started after)."""
    import os
    import sys

    folder = tmp_path_factory.mktemp("probe")
    (folder / "thread_probe.py").write_text(PROBE)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(folder), old or ""])
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def test_neural_methods_run_on_the_same_threads_under_every_executor(image_folder, tmp_path, ray_runtime):
    opts = dict(methods=("thread_probe:ThreadProbe",), degradations=("gaussian?sigma=5",), use_cache=False)
    local = _values(run_suite(_options(image_folder, tmp_path / "local", **opts)).results)
    remote = _values(run_suite(_options(image_folder, tmp_path / "ray", executor="ray", **opts)).results)
    pd.testing.assert_series_equal(local, remote, check_exact=True)  # was 2 threads locally, 1 on Ray


def test_a_network_gives_bit_identical_values_locally_and_on_ray(tmp_path, ray_runtime):
    opts = dict(
        tasks=("lowlight",),
        datasets=("synthetic:deadleaves?n=2&size=96",),
        degradations=("lowlight?ratio=100",),
        methods=("lowlight/sid_unet",),
        tracking=False,
        use_cache=False,
    )
    local = run_suite(RunOptions(out=tmp_path / "local", executor="local", **opts))
    remote = run_suite(RunOptions(out=tmp_path / "ray", executor="ray", **opts))
    assert local.computed == remote.computed == 2
    pd.testing.assert_series_equal(_values(local.results), _values(remote.results), check_exact=True)
