"""Real photos with no reference, end to end: sources that hold only photos, ``as_is`` per task,
no-reference scores, reports made for looking, and the refusals that come before any work."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write_image
from tests.runs import cli


def _noisy(img: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img.astype(np.float64) + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two real noisy 'phone shots' (scikit-image photos with sensor-like noise) and a gray scan."""
    from skimage import data as skdata

    root = tmp_path_factory.mktemp("photos")
    folder = root / "photos"
    folder.mkdir()
    write_image(folder / "astronaut.png", _noisy(skdata.astronaut()[60:252, 120:312], 20, 0))
    write_image(folder / "coffee.jpg", _noisy(skdata.coffee()[100:260, 200:400], 20, 1))
    write_image(folder / "scan.png", _noisy(skdata.camera()[100:260:, 100:260], 20, 2))
    return folder


def _read(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im).astype(np.float32) / (65535.0 if im.mode.startswith("I;16") else 255.0)
    return arr[..., None] if arr.ndim == 2 else arr


def _outputs(run: Path, method: str) -> dict[str, Path]:
    """The saved outputs of one method, by the photo's key (file name)."""
    from restorebench.run.outputs import output_name

    folder = next(p for p in (run / "outputs").rglob("*") if p.is_dir() and p.name == method.replace("/", "_"))
    names = {p.name: p for p in folder.glob("*.png")}
    keys = ("astronaut.png", "coffee.jpg", "scan.png", "dark.dng")
    return {key: names[output_name(key)] for key in keys if output_name(key) in names}


def _values(run: Path, metric: str) -> pd.DataFrame:
    from restorebench.run.read import read_results

    frame = read_results(run).frame()
    return frame[(frame["metric"] == metric) & (frame["status"] == "ok")]


def test_denoise_real_photos_one_command(photos, tmp_path):
    """The README's command: scores are NIQE of the very outputs saved, denoising lowers it, the
    leaderboard says there is no reference, the HTML shows every photo with every output, and
    MLflow's child runs carry the scores and the views."""
    from restorebench.score.niqe import default_model, niqe

    done = cli(
        "run",
        "denoise",
        "--dataset",
        f"folder:{photos}?reference=none",
        "--method",
        "denoise/identity",
        "--method",
        "denoise/median",
        "--method",
        "denoise/dncnn",
        "--executor",
        "local",
        "--save-outputs",
        "--out",
        "run",
        "--report",
        "report",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'mlflow.db'}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "**No reference:**" in done.stdout and "as_is" in done.stdout
    run = tmp_path / "run"
    scores = _values(run, "niqe")
    assert len(scores) == 9 and set(scores["degradation"]) == {"as_is"}
    model = default_model()
    for method in ("denoise/identity", "denoise/dncnn"):
        saved = _outputs(run, method)
        mine = scores[scores["method"] == method].set_index("image")["value"]
        for image, value in mine.items():  # the table's NIQE is the NIQE of the output itself
            assert niqe(_read(saved[image]), model) == pytest.approx(value, abs=1e-9)
    by_method = scores.groupby("method")["value"].mean()
    assert by_method["denoise/dncnn"] < by_method["denoise/identity"] - 2  # noise raises NIQE; DnCNN removes it
    assert (scores[scores["method"] == "denoise/identity"]["value"] > 8).all()

    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    ranked = list(board.sort_values("rank")["method"])
    assert ranked[-1] == "denoise/identity" and len(ranked) == 3  # ranked by NIQE, lower first
    assert "psnr" not in board.columns
    html = (tmp_path / "report" / "index.html").read_text()
    assert "No reference:" in html
    for key in ("astronaut.png", "coffee.jpg", "scan.png"):
        (row,) = re.findall(rf'<div class="photo" data-image="{re.escape(key)}">(.*?)</figure></div></div>', html)
        assert row.count("<figure>") == 4  # input and each method's whole output
        assert row.count('src="data:image/jpeg;base64,') == 4
        assert "denoise/dncnn · niqe" in row

    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    child = next(r for r in runs if r.info.run_name.endswith("denoise/dncnn"))
    assert child.data.metrics["niqe_mean"] == pytest.approx(by_method["denoise/dncnn"])
    views = [a.path for a in client.list_artifacts(child.info.run_id, "views")]
    assert len(views) == 3


def test_superres_photo_is_upscaled_by_its_scale(photos, tmp_path):
    done = cli(
        "run",
        "superres",
        "--dataset",
        f"folder:{photos}?reference=none",
        "--degradation",
        "as_is?scale=2",
        "--method",
        "superres/bicubic",
        "--executor",
        "local",
        "--no-tracking",
        "--save-outputs",
        "--out",
        "run",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    saved = _outputs(tmp_path / "run", "superres/bicubic")
    assert _read(saved["astronaut.png"]).shape == (384, 384, 3)
    assert _read(saved["scan.png"]).shape == (320, 320, 1)
    assert len(_values(tmp_path / "run", "niqe")) == 3


def test_colorize_black_and_white_scan(photos, tmp_path):
    """A gray scan is what colorization is for: never skipped; the output is colour, scored by
    colourfulness and saturation (descriptive) and NIQE."""
    done = cli(
        "run",
        "colorize",
        "--dataset",
        f"folder:{photos}?reference=none",
        "--method",
        "colorize/gray",
        "--method",
        "colorize/mean_ab",
        "--executor",
        "local",
        "--no-tracking",
        "--save-outputs",
        "--out",
        "run",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    colour = _values(tmp_path / "run", "colorfulness").set_index(["method", "image"])["value"]
    assert colour[("colorize/gray", "scan.png")] == pytest.approx(0.0, abs=1e-9)
    assert colour[("colorize/mean_ab", "scan.png")] > 1.0
    assert _read(_outputs(tmp_path / "run", "colorize/mean_ab")["scan.png"]).shape == (160, 160, 3)


def test_inpaint_photo_with_the_users_mask(photos, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    for name, (h, w) in (("astronaut", (192, 192)), ("coffee", (160, 200))):
        mask = np.full((h, w), 255, np.uint8)
        mask[40:90, 50:120] = 0  # the object to remove
        write_image(masks / f"{name}.png", mask)
    common = ["--method", "inpaint/telea", "--executor", "local", "--no-tracking", "--save-outputs"]
    refused = cli(
        "run", "inpaint", "--dataset", f"folder:{photos}?reference=none", "--degradation", f"as_is?masks={masks}",
        *common, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2 and "scan.png: no mask" in refused.stderr, refused.stderr
    assert not (tmp_path / "runs").exists()  # refused before any work
    write_image(masks / "scan.png", np.where(np.arange(160)[:, None] < 30, 0, 255).repeat(160, 1).astype(np.uint8))
    done = cli(
        "run", "inpaint", "--dataset", f"folder:{photos}?reference=none", "--degradation", f"as_is?masks={masks}",
        *common, "--out", "run", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = _read(_outputs(tmp_path / "run", "inpaint/telea")["astronaut.png"])
    photo = _read(photos / "astronaut.png")
    np.testing.assert_array_equal(out[:40], photo[:40])  # known pixels kept
    assert not np.array_equal(out[40:90, 50:120], photo[40:90, 50:120])  # the hole filled from around it


def test_lowlight_raw_and_srgb_photos(tmp_path):
    """Camera raw files (raw:DIR, read with rawpy) go to the raw methods; each method that
    takes the other kind of photo skips it, saying which methods do."""
    from skimage import data as skdata

    from restorebench.tasks.lowlight.synthetic import make_pair

    raws = tmp_path / "raw"
    raws.mkdir()
    clean = skdata.astronaut()[:128, :160].astype(np.float32) / 255.0
    (raws / "dark.dng").write_bytes(make_pair(clean, np.random.default_rng(0), ratio=50, iso=400).short_dng)
    done = cli(
        "run", "lowlight", "--dataset", f"raw:{raws}", "--method", "lowlight/camera", "--method", "lowlight/gamma",
        "--executor", "local", "--no-tracking", "--save-outputs", "--out", "run", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "skipped: dark.dng: lowlight/gamma works on sRGB photos and this one is raw" in done.stdout
    out = _read(_outputs(tmp_path / "run", "lowlight/camera")["dark.dng"])
    assert out.shape == (128, 160, 3)
    assert out.mean() > 0.15  # amplified to mid-grey: the dark exposure brightened
    assert list(_values(tmp_path / "run", "niqe")["method"]) == ["lowlight/camera"]


def test_auto_ratio_brings_the_mean_to_mid_grey():
    from restorebench.tasks.lowlight.photos import auto_ratio

    assert auto_ratio(np.full((4, 4, 4), 0.0018, np.float32)) == pytest.approx(100.0, rel=1e-5)
    assert auto_ratio(np.full((4, 4, 4), 0.5, np.float32)) == 1.0  # never darkens
    assert auto_ratio(np.zeros((4, 4, 4), np.float32)) == 300.0  # SID's cap


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--metric", "psnr"], ["metric(s) psnr compare the output with one", "need no reference: ", "niqe"]),
        (["--degradation", "gaussian?sigma=25"], ["has no reference", "as_is"]),
        (["--degradation", "as_is?scale=2"], ["as_is for denoise", "its as_is parameters: sigma"]),
    ],
)
def test_refused_before_any_work(photos, tmp_path, args, needles):
    done = cli(
        "run", "denoise", "--dataset", f"folder:{photos}?reference=none", *args, "--executor", "local",
        "--no-tracking", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_as_is_on_clean_images_is_refused(photos, tmp_path):
    done = cli(
        "run", "denoise", "--dataset", f"folder:{photos}", "--degradation", "as_is", "--executor", "local",
        "--no-tracking", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "?reference=none" in done.stderr, done.stderr


def test_manifest_and_parquet_of_photos_only(photos, tmp_path):
    """A manifest with only an lq column, and Parquet with reference=none, load the photo itself."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from restorebench.core.build import build_source

    (tmp_path / "photos.csv").write_text(f"lq\n{photos / 'astronaut.png'}\n{photos / 'scan.png'}\n")
    manifest = build_source(f"manifest:{tmp_path / 'photos.csv'}")
    assert not manifest.has_reference and not manifest.paired
    images = manifest.list_images()
    assert [i.key for i in images] == ["astronaut", "scan"]
    np.testing.assert_array_equal(manifest.load(images[1]), _read(photos / "scan.png"))

    table = pa.table({"lq": [(photos / "coffee.jpg").read_bytes()], "name": ["coffee"]})
    pq.write_table(table, tmp_path / "photos.parquet")
    source = build_source(f"parquet:{tmp_path / 'photos.parquet'}?reference=none&key=name")
    assert not source.has_reference
    (image,) = source.list_images()
    assert image.key == "coffee" and source.load(image).shape == (160, 200, 3)


def test_ray_workers_score_photos_as_the_local_executor(photos, tmp_path, ray_runtime):
    from tests.runs import denoise_run

    runs = {}
    for executor in ("local", "ray"):
        runs[executor] = denoise_run(
            photos, tmp_path / executor, ["denoise/median"], degradations=["as_is?sigma=20"],
            datasets=(f"folder:{photos}?reference=none",), executor=executor, metrics=("niqe",), use_cache=False,
        )  # fmt: skip
    local, ray = (_values(runs[e].run_dir, "niqe").set_index("image")["value"].sort_index() for e in ("local", "ray"))
    assert len(local) == 3
    pd.testing.assert_series_equal(local, ray)


def test_score_without_a_reference():
    """No clean image: a no-reference metric scores the output alone; a reference metric is
    reported as an error of its own (the run refuses it earlier; this is the last guard)."""
    from restorebench.core.interfaces import Degraded
    from restorebench.score.entries import score
    from restorebench.score.niqe import default_model, niqe

    rng = np.random.default_rng(0)
    out = rng.random((120, 100, 3)).astype(np.float32)
    scores = score(out, None, Degraded(out, "as_is"), ["niqe", "psnr"])
    assert scores.values == {"niqe": pytest.approx(niqe(np.round(out * 255) / 255, default_model()))}
    assert "compares the output with a reference" in scores.errors["psnr"]


def test_views_keep_the_whole_image_within_their_side():
    from restorebench.run.worker import view

    big = np.zeros((2000, 3000, 3), np.float32)
    big[:, 1500:] = 1.0
    small = view(big, 1600)
    assert small.shape == (1067, 1600, 3) and small.dtype == np.uint8
    assert small[:, :790].max() == 0 and small[:, 810:].min() == 255
    assert view(np.full((10, 20, 1), 0.5, np.float32)).shape == (10, 20, 1)


def test_the_no_reference_note_says_what_an_oracle_is_here():
    """Above a table of photos with no reference: the note, and, where a sampling method has
    ``oracle_*`` values, that they are a best-of-N picked by the score itself."""
    from restorebench.report.leaderboard import section_note

    plain = pd.DataFrame({"degradation": ["as_is?sigma=20"], "niqe": [4.0], "oracle_niqe": [np.nan]})
    assert section_note(plain).startswith("**No reference:**") and "best-of-N" not in section_note(plain)
    sampled = plain.assign(oracle_niqe=[3.5])
    assert "picked without any ground truth" in section_note(sampled)
    assert section_note(pd.DataFrame({"degradation": ["gaussian?sigma=25"], "dataset_check": [""]})) == ""
