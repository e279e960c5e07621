"""Run directories are safe: a resume never loses results, --out never overwrites a user's files,
a suite's name never escapes runs/, a damaged run.json is a clear error."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from restorebench.core.errors import UserError
from restorebench.core.refs import slug
from restorebench.run.pipeline import RunOptions, run_suite
from tests.runs import denoise_run


def test_resume_with_other_options_refuses_and_keeps_every_result(image_folder, tmp_path):
    out = tmp_path / "run"
    first = denoise_run(image_folder, out, ("denoise/median", "denoise/gaussian"))
    before = pd.read_parquet(out / "results.parquet")
    spec = (out / "spec.yaml").read_text()
    with pytest.raises(UserError) as info:
        denoise_run(image_folder, out, ("denoise/box",), resume=True)
    text = str(info.value)
    assert "was started with another suite" in text and "methods: ['denoise/median', 'denoise/gaussian'] then" in text
    assert "['denoise/box'] now" in text and info.value.exit_code == 2
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), before)
    assert (out / "spec.yaml").read_text() == spec
    again = denoise_run(image_folder, out, ("denoise/median", "denoise/gaussian"), resume=True)
    assert (again.resumed, again.computed) == (first.computed, 0)


def test_out_refuses_a_directory_of_the_users_files(image_folder, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "spec.yaml").write_text("my own file\n")
    with pytest.raises(UserError, match="is not empty and is not a restorebench run directory"):
        denoise_run(image_folder, mine, ("denoise/median",))
    assert (mine / "spec.yaml").read_text() == "my own file\n" and sorted(os.listdir(mine)) == ["spec.yaml"]
    with pytest.raises(UserError, match="not empty and is not a restorebench run directory"):
        denoise_run(image_folder, image_folder, ("denoise/median",), resume=True)  # e.g. the image folder itself
    assert sorted(os.listdir(image_folder)) == ["a_astronaut.png", "b_camera.png", "c_coffee.jpg"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert denoise_run(image_folder, empty, ("denoise/median",)).computed == 3
    with pytest.raises(UserError, match="--resume: .* is not a run directory to resume"):
        denoise_run(image_folder, tmp_path / "new", ("denoise/median",), resume=True)


def test_out_that_is_a_file_is_a_clear_error(image_folder, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    with pytest.raises(UserError, match="is a file, not a directory"):
        denoise_run(image_folder, target, ("denoise/median",))


def test_a_suite_name_never_escapes_the_runs_folder(image_folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("../escaped/pwn", "/abs/olute", ".."):
        suite = tmp_path / "suite.yaml"
        suite.write_text(
            f"name: {name!r}\ntasks:\n  - task: denoise\n    datasets: ['folder:{image_folder}']\n"
            "    degradations: ['gaussian?sigma=5']\n    methods: [denoise/identity]\n"
        )
        summary = run_suite(RunOptions(suite=str(suite), executor="local", tracking=False))
        assert summary.run_dir.parent == tmp_path / "runs", summary.run_dir
    assert not (tmp_path / "escaped").exists() and not os.path.exists("/abs")


def test_a_damaged_run_json_is_a_clear_error(image_folder, tmp_path):
    out = tmp_path / "run"
    denoise_run(image_folder, out, ("denoise/median",))
    (out / "run.json").write_text("{not json")
    with pytest.raises(UserError, match=r"run.json is not valid JSON"):
        denoise_run(image_folder, out, ("denoise/median",), resume=True)


def test_limit_takes_the_first_images_and_is_part_of_the_suite(image_folder, tmp_path):
    out = tmp_path / "run"
    two = denoise_run(image_folder, out, ("denoise/median",), limit=2)
    assert sorted(two.results["image"].unique()) == ["a_astronaut.png", "b_camera.png"]
    with pytest.raises(UserError, match="limit: 2 then, 1 now"):  # a smaller limit would drop results
        denoise_run(image_folder, out, ("denoise/median",), limit=1, resume=True)
    with pytest.raises(UserError, match="--limit must be at least 1"):
        denoise_run(image_folder, tmp_path / "zero", ("denoise/median",), limit=0)


def test_save_outputs_writes_the_scored_pixels_of_every_unit(image_folder, tmp_path):
    from restorebench.data.images import decode_array, read_image
    from restorebench.run.outputs import output_name
    from restorebench.score.metrics import psnr

    out = tmp_path / "run"
    summary = denoise_run(image_folder, out, ("denoise/median", "denoise/gaussian"), save_outputs=True, use_cache=False)
    assert summary.failed == 0
    saved = sorted((out / "outputs").rglob("*.png"))
    assert len(saved) == 6  # 3 images x 2 methods
    rows = summary.results[summary.results["metric"] == "psnr"]
    for _, row in rows.iterrows():
        folder = out / "outputs" / slug(row["dataset"]) / "gaussian_sigma-25" / slug(row["method"])
        png = folder / output_name(row["image"])  # c_coffee.jpg -> c_coffee.jpg.png
        pixels = decode_array(png.read_bytes(), png.name)
        assert pixels.dtype == np.uint8  # denoise scores 8-bit outputs
        clean = read_image(image_folder / row["image"])
        # the saved file holds exactly the pixels that were scored
        assert psnr(pixels.reshape(clean.shape).astype(np.float64) / 255, clean) == pytest.approx(
            row["value"], abs=1e-6
        )


def test_sixteen_bit_outputs_round_trip():
    from restorebench.data.images import decode_array, encode_png

    img = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    pixels = decode_array(encode_png(img, 16), "x")
    assert pixels.dtype == np.uint16 and pixels.shape == (5, 7, 3)
    assert np.abs(pixels / 65535 - img).max() <= 0.5 / 65535 + 1e-7
    gray = decode_array(encode_png(img[:, :, :1], 8), "x")
    assert gray.shape == (5, 7) and gray.dtype == np.uint8


def test_compaction_keeps_each_units_latest_row_and_streams_a_fixed_schema(tmp_path):
    import pyarrow.parquet as pq

    from restorebench.run.store import RunDir
    from restorebench.run.tables import schema

    run = RunDir.open(tmp_path / "run", {"name": "s", "seed": 0, "tasks": []}, resume=False)
    base = {"run_id": "r", "task": "t", "metric": "psnr", "metric_version": "1"}
    for i in range(30):  # many shards; unit u1 fails first and succeeds later, u2 the other way round
        run.append([{**base, "unit_id": f"u{i % 3}", "status": "failed" if i < 15 else "ok", "value": float(i)}])
    run.append([{**base, "unit_id": "u2", "status": "failed", "value": float("nan"), "error": "boom"}])
    # a unit with an ok row ran, even if a later row failed (which a resume never produces: it
    # computes only units without one); compaction still keeps each unit's latest row
    assert run.completed_units() == {"u0", "u1", "u2"}
    run.append([{**base, "unit_id": "u3", "status": "failed", "value": float("nan"), "error": "boom"}])
    assert "u3" not in run.completed_units()
    frame = run.compact(keep_units={"u0", "u1", "u2"}).frame()
    (written,) = (tmp_path / "run" / "results.parquet").glob("*/*.parquet")  # one file per task
    assert [(f.name, f.type) for f in pq.read_schema(written)] == [(f.name, f.type) for f in schema()]
    assert not list((tmp_path / "run" / "shards").glob("*.parquet"))
    latest = frame.set_index("unit_id")
    assert latest.loc["u0", "value"] == 27.0 and latest.loc["u1", "value"] == 28.0
    assert latest.loc["u2", "status"] == "failed" and latest.loc["u2", "error"] == "boom"
    assert len(frame) == 3
    assert run.compact(keep_units={"u0"}).frame()["unit_id"].tolist() == ["u0"]  # compacting again keeps the table
    assert len(list((tmp_path / "run" / "results.parquet").glob("*/*.parquet"))) == 1  # the older file replaced
