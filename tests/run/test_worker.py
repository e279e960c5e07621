"""What the worker accepts from a method, and how it scores: invalid outputs are refused
with a message per unit; one failing metric never costs the others."""

from __future__ import annotations

import logging
import textwrap

import numpy as np
import pytest
from PIL import Image

from restorebench.run.pipeline import RunOptions, run_suite
from restorebench.run.worker import InvalidOutput, validate_output
from tests.runs import denoise_run

ODD = """
from typing import Literal

import numpy as np

from restorebench import Method, Params


class OddParams(Params):
    returns: Literal["inf", "-inf", "nan", "uint8", "complex", "shape", "two", "fine"] = "fine"


class Odd(Method):
    task = "denoise"
    name = "odd"
    Params = OddParams

    def restore(self, batch):
        kind, img = self.params.returns, batch[0].image
        out = {
            "inf": lambda: np.where(np.arange(img.size).reshape(img.shape) == 0, np.inf, img),
            "-inf": lambda: np.full_like(img, -np.inf),
            "nan": lambda: np.full_like(img, np.nan),
            "uint8": lambda: (img * 255).astype(np.uint8),
            "complex": lambda: img.astype(np.complex64),
            "shape": lambda: img[1:],
            "two": lambda: img,
            "fine": lambda: img,
        }[kind]()
        return [out, out] if kind == "two" else [out]
"""

MESSAGES = {
    "inf": "returned 1 non-finite values (+Inf)",
    "-inf": "non-finite values (-Inf)",
    "nan": "non-finite values (NaN)",
    "uint8": "returned uint8 values; return floats in [0, 1] (divide 8-bit values by 255)",
    "complex": "returned complex values (complex64)",
    "shape": "returned shape (63, 80, 3), expected the clean image's (64, 80, 3)",
    "two": "restore returned 2 images for 1 input",
}


@pytest.fixture
def odd_plugin(tmp_path, monkeypatch):
    (tmp_path / "oddplugin.py").write_text(textwrap.dedent(ODD))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_invalid_outputs_fail_their_unit_with_what_the_method_returned(image_folder, tmp_path, odd_plugin):
    methods = tuple(f"oddplugin:Odd?returns={k}" for k in (*MESSAGES, "fine"))
    summary = run_suite(
        RunOptions(
            tasks=("denoise",),
            datasets=(f"folder:{image_folder}",),
            degradations=("gaussian?sigma=5",),
            methods=methods,
            out=tmp_path / "run",
            executor="local",
            tracking=False,
        )
    )
    units = summary.results.drop_duplicates("unit_id")
    astronaut = units[units["image"] == "a_astronaut.png"].set_index("method")
    for kind, message in MESSAGES.items():
        row = astronaut.loc[f"denoise/odd?returns={kind}"]
        assert row["status"] == "failed" and message in row["error"], (kind, row["error"])
    assert astronaut.loc["denoise/odd", "status"] == "ok"  # returns=fine is the default: the plain name
    assert summary.failed == 3 * len(MESSAGES)


def test_validate_output_accepts_float_images_only():
    img = np.zeros((4, 5, 3), np.float64)
    assert validate_output(img, (4, 5, 3), "m").dtype == np.float32
    for bad in (img.astype(np.int16), img.astype(bool), img.astype(object), [[1, 2], [3]]):
        with pytest.raises(InvalidOutput):
            validate_output(bad, (4, 5, 3), "m")


def test_one_failing_metric_keeps_the_others(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    Image.fromarray(np.arange(27, dtype=np.uint8).reshape(3, 3, 3) * 9).save(folder / "tiny.png")
    summary = denoise_run(folder, tmp_path / "run", ("denoise/identity",))
    rows = summary.results.set_index("metric")
    assert rows.loc["psnr", "status"] == "ok" and np.isfinite(rows.loc["psnr", "value"])  # was lost with SSIM
    assert rows.loc["psnr_y", "status"] == "ok"
    for metric in ("ssim", "ssim_y"):
        assert rows.loc[metric, "status"] == "failed" and np.isnan(rows.loc[metric, "value"])
        assert f"tiny.png: metric {metric}: ValueError" in rows.loc[metric, "error"]
    assert summary.failed == 0 and summary.computed == 1
    assert any("metric ssim" in e for e in summary.errors)
    again = denoise_run(folder, tmp_path / "again", ("denoise/identity",))
    assert again.from_cache == 1
    assert again.results.set_index("metric").loc["ssim", "status"] == "failed"  # the cache keeps why


def test_a_dark_input_is_brightened_for_its_sample_exactly_as_by_its_99th_percentile():
    """The shortcut (count the values at or above DARK) never changes what the percentile decides."""
    from restorebench.run.worker import DARK, _displayable

    def by_percentile(img):
        img = img[..., :3] if img.ndim == 3 and img.shape[2] not in (1, 3) else img
        top = float(np.percentile(img, 99))
        return img / top if 0 < top < DARK else img

    rng = np.random.default_rng(0)
    brightened = kept = 0
    for trial in range(600):
        n = int(rng.integers(1, 300))
        img = (rng.random((n, 4 if trial % 2 else 3)) * rng.choice([0.05, 0.2, 0.3, 1.0])).astype(np.float32)
        img.flat[: int(rng.integers(0, img.size))] = rng.choice([0.0, DARK])  # ties at the threshold
        out, expected = _displayable(img), by_percentile(img)
        assert out.shape == expected.shape and np.array_equal(out, expected), trial
        brightened += out.max() > img[..., :3].max()
        kept += out is img or np.shares_memory(out, img)
    assert brightened > 50 and kept > 50  # both branches were taken


def test_consecutive_batches_of_one_image_decode_and_degrade_it_once(image_folder, tmp_path, monkeypatch):
    """Batches are cut in image order: a worker's next batch reuses the last image and its
    degraded inputs, and the values are those of batches that load everything anew."""
    import pandas as pd

    from restorebench.core.build import get_source
    from restorebench.run import worker

    source_cls = type(get_source(f"folder:{image_folder}"))
    loads: list[str] = []
    load = source_cls.load

    def counting_load(self, image):
        loads.append(image.key)
        return load(self, image)

    monkeypatch.setattr(source_cls, "load", counting_load)
    worker._last_image.clear()  # nothing carried over from an earlier test in this process
    worker._last_inputs.clear()
    methods = ("denoise/median", "denoise/gaussian", "denoise/tv")
    degradations = ("gaussian?sigma=25", "saltpepper?density=0.1")
    reused = denoise_run(image_folder, tmp_path / "reused", methods, degradations=degradations, use_cache=False)
    assert reused.computed == 18 and sorted(loads) == sorted(set(loads)) and len(loads) == 3  # 9 batches
    loads.clear()
    monkeypatch.setattr(worker, "_keep_last", lambda *args: None)
    worker._last_image.clear()
    worker._last_inputs.clear()
    anew = denoise_run(image_folder, tmp_path / "anew", methods, degradations=degradations, use_cache=False)
    assert len(loads) == 9  # each batch loads its image

    def values(summary):
        frame = pd.read_parquet(summary.run_dir / "results.parquet")
        return frame.sort_values(["unit_id", "metric"])[["unit_id", "metric", "value"]].reset_index(drop=True)

    pd.testing.assert_frame_equal(values(reused), values(anew))


def test_validate_output_names_what_cannot_be_an_array_and_lets_other_errors_through():
    class Refuses:
        def __array__(self, dtype=None, copy=None):
            raise TypeError("no array here")

    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("a bug in the method's output type")

    with pytest.raises(InvalidOutput, match="m returned Refuses, not an image array: no array here"):
        validate_output(Refuses(), (4, 5, 3), "m")
    with pytest.raises(RuntimeError, match="a bug"):  # not dressed up as a bad output: the unit fails with it
        validate_output(Broken(), (4, 5, 3), "m")


class _Warmed:
    """A method that records what its calls get, refusing inputs its mask does not fit."""

    ref = "denoise/warmed"
    warm_up = True

    def __init__(self, fails=False):
        self.fails, self.seen, self._warmed_up = fails, [], False

    def restore(self, batch):
        item = batch[0]
        self.seen.append((item.image.shape, item.extras["mask"].shape, item.extras["note"]))
        if self.fails:
            raise ValueError("needs at least 64 pixels")
        if item.extras["mask"].shape != item.image.shape[:2]:
            raise ValueError("the mask does not fit the image")
        return [item.image]


def test_the_warm_up_crops_the_extras_of_the_images_size_with_it(caplog):
    from restorebench.core.interfaces import Degraded
    from restorebench.run.worker import _warm_up

    item = Degraded(np.zeros((48, 40, 3), np.float32), "mask", extras={"mask": np.ones((48, 40)), "note": "kept"})
    method = _Warmed()
    with caplog.at_level(logging.WARNING, logger="restorebench.run.worker"):
        _warm_up(method, item)
        _warm_up(method, item)  # once per method and process
    assert method.seen == [((32, 32, 3), (32, 32), "kept")] and caplog.text == ""


def test_a_failed_warm_up_is_a_warning_naming_the_method(caplog):
    from restorebench.core.interfaces import Degraded
    from restorebench.run.worker import _warm_up

    item = Degraded(np.zeros((48, 40, 3), np.float32), "mask", extras={"mask": np.ones((48, 40)), "note": ""})
    method = _Warmed(fails=True)
    with caplog.at_level(logging.WARNING, logger="restorebench.run.worker"):
        _warm_up(method, item)
    assert "warm-up of denoise/warmed on a 32x32 crop failed (ValueError: needs at least 64 pixels)" in caplog.text
    assert "warm_up = False" in caplog.text and method._warmed_up
