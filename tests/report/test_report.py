"""The report: Markdown, CSV and the self-contained HTML page of a real small run; the figures' maths."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from restorebench.report.figures import Level, degradation_level
from restorebench.report.files import write_report
from restorebench.report.leaderboard import to_markdown
from restorebench.results.board import build_leaderboard
from restorebench.run.pipeline import RunOptions, run_suite

METHODS = ("denoise/identity", "denoise/median", "denoise/box")
DEGRADATIONS = ("gaussian?sigma=25", "saltpepper?density=0.1")


class PageParser(HTMLParser):
    """Collects the leaderboard tables (their attributes and row methods), images and body attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, str | None]] = []
        self.rows: list[list[str]] = []
        self.images: list[dict[str, str | None]] = []
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "leaderboard" in (a.get("class") or ""):
            self.tables.append(a)
            self.rows.append([])
        elif tag == "tr" and "data-method" in a:
            self.rows[-1].append(a["data-method"])
        elif tag == "img":
            self.images.append(a)
        elif tag == "body":
            self.body = a


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def run_and_report(folder: Path, out: Path, formats=("md", "csv", "html")) -> tuple[pd.DataFrame, Path]:
    """A real run (3 images x 2 degradations x 3 methods, in-process) and its report folder."""
    options = RunOptions(
        tasks=("denoise",),
        datasets=(f"folder:{folder}",),
        degradations=DEGRADATIONS,
        methods=METHODS,
        out=out,
        executor="local",
        tracking=False,
    )
    results = run_suite(options).results
    write_report(results, out / "report", list(formats))
    return results, out / "report"


@pytest.fixture
def report(image_folder, tmp_path) -> tuple[pd.DataFrame, Path]:
    return run_and_report(image_folder, tmp_path / "run")


def test_html_page_is_self_contained_and_ranked_like_the_csv(report):
    results, out = report
    page = out / "index.html"
    text = page.read_text(encoding="utf-8")
    parsed = parse_page(page)
    board = pd.read_csv(out / "leaderboard.csv")
    groups = list(board.groupby(["task", "dataset", "degradation"], sort=False))
    assert len(groups) == len(DEGRADATIONS)
    assert len(parsed.tables) == len(groups)
    for table, methods in zip(parsed.tables, parsed.rows):
        expected = board[
            (board["task"] == table["data-task"])
            & (board["dataset"] == table["data-dataset"])
            & (board["degradation"] == table["data-degradation"])
        ]
        assert methods == list(expected.sort_values("rank", kind="stable")["method"]) == list(expected["method"])
    assert "http://" not in text and "https://" not in text
    assert "no sample" not in text  # every group has its crops
    # runtime + level plots, one sample grid per degradation, three filters figures
    assert len(parsed.images) == 2 + len(DEGRADATIONS) + 3
    # plots are PNG; photographic figures (before/after grids, hybrid image, pyramids) JPEG
    formats = []
    for img in parsed.images:
        src = img["src"] or ""
        head, _, payload = src.partition(",")
        fmt = {"data:image/png;base64": "PNG", "data:image/jpeg;base64": "JPEG"}.get(head)
        assert fmt is not None, src[:60]
        _assert_image(base64.b64decode(payload, validate=True), fmt)
        formats.append(fmt)
    assert formats.count("JPEG") == len(DEGRADATIONS) + 2
    figures = {p.name: p for p in (out / "figures").iterdir()}
    assert len(figures) == len(parsed.images)
    for name, path in figures.items():
        _assert_image(path.read_bytes(), "PNG" if name.endswith(".png") else "JPEG")
        assert name.endswith(("-samples.jpg", "-hybrid.jpg", "-pyramids.jpg")) == name.endswith(".jpg")


def _assert_image(data: bytes, fmt: str) -> None:
    """``data`` is a complete, decodable image file in ``fmt``."""
    from PIL import Image

    magic = {"PNG": b"\x89PNG\r\n\x1a\n", "JPEG": b"\xff\xd8\xff"}[fmt]
    assert data.startswith(magic)
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # decodes every byte: a truncated JPEG fails here
        assert im.format == fmt and im.width > 0 and im.height > 0


def test_markdown_and_csv_are_unchanged_by_html(report):
    results, out = report
    board = build_leaderboard(results)
    assert (out / "LEADERBOARD.md").read_text() == to_markdown(board)
    assert (out / "leaderboard.csv").read_text() == board.table.to_csv(index=False, float_format="%.6g")


def test_missing_samples_and_metrics_do_not_break_the_page(report, tmp_path):
    results, out = report
    samples = out.parent / "samples"
    crop = next(samples.rglob("method-denoise_median.png"))
    crop.unlink()
    gone = next(p for p in samples.rglob("*") if p.is_dir() and "saltpepper" in p.name)
    for path in gone.iterdir():
        path.unlink()
    gone.rmdir()
    partial = results[~((results["metric"] == "psnr") & (results["method"] == "denoise/box"))]
    written = write_report(partial, tmp_path / "again", ["html"], run_dir=out.parent)
    text = written[0].read_text(encoding="utf-8")
    parsed = parse_page(written[0])
    assert text.count("no sample") == 1  # the saltpepper group; the missing crop is drawn as a panel
    assert len(parsed.tables) == len(DEGRADATIONS)
    # without a run directory every grid reads "no sample"
    bare = write_report(results, tmp_path / "bare", ["html"])
    assert bare[0].read_text(encoding="utf-8").count("no sample") == len(DEGRADATIONS)


def test_regenerating_removes_figures_the_new_report_does_not_write(report):
    results, out = report
    figures = out / "figures"
    before = sorted(p.name for p in figures.iterdir())
    for name in ("denoise-old_group-samples.png", "denoise-old_group-samples.jpg"):
        (figures / name).write_bytes(b"stale")
    (figures / "notes.txt").write_text("mine")  # not a figure: left alone
    write_report(results, out, ["html"], run_dir=out.parent)
    assert sorted(p.name for p in figures.iterdir()) == sorted([*before, "notes.txt"])


def test_html_marks_neural_and_non_blind_methods():
    from restorebench.report.html import table_html
    from restorebench.results.board import Leaderboard
    from restorebench.results.groups import metric_of

    frame = pd.DataFrame(
        {
            "task": "denoise",
            "dataset": "d",
            "degradation": "g",
            "method": ["denoise/dncnn", "denoise/box"],
            "rank": [1, 2],
            "kind": ["neural", "classical"],
            "non_blind": [False, True],
            "psnr": [30.0, float("nan")],
        }
    )
    board = Leaderboard(frame, pd.DataFrame(), {"psnr": metric_of("psnr")}, {"denoise": "psnr"})
    html = table_html(frame, "denoise", "d", "g", board)
    assert 'class="rank-1 neural" data-method="denoise/dncnn"' in html
    assert '<th data-metric="psnr" data-unit="dB"' in html and ">psnr ↑ (dB)</th>" in html
    assert 'class="rank-2 nonblind" data-method="denoise/box"' in html
    assert '<td class="num">-</td>' in html  # a missing metric


def test_empty_results_still_write_a_page(tmp_path):
    from restorebench.run.tables import COLUMNS

    written = write_report(pd.DataFrame(columns=COLUMNS), tmp_path, ["html"])
    assert "No results." in written[0].read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("gaussian?sigma=25", Level("gaussian", "sigma", 25.0)),
        ("saltpepper?density=0.1", Level("saltpepper", "density", 0.1)),
        ("bicubic?scale=3", Level("bicubic", "scale", 3.0)),
        ("lowlight?ratio=100", Level("lowlight", "ratio", 100.0)),
        ("gaussian?clip=true&sigma=50", Level("gaussian?clip=true", "sigma", 50.0)),
        ("gray", None),
        ("blur?radius=2", None),
    ],
)
def test_degradation_level(ref, expected):
    assert degradation_level(ref) == expected


@pytest.fixture
def mask_degradation():
    """A degradation ``mask`` whose level is a binned ``ratio`` (the inpainting task's, once it exists)."""
    from restorebench import Degradation, Params, register
    from restorebench.core.registry import DEGRADATIONS, _unregister

    if "mask" in DEGRADATIONS:
        yield DEGRADATIONS.get("mask")
        return

    class _Ratio(Params):
        ratio: str = "0.1-0.2"

    class Mask(Degradation):
        name, task, level, Params = "mask", "denoise", "ratio", _Ratio

    register(Mask)
    yield Mask
    _unregister(Mask)


def test_the_level_is_the_parameter_a_degradation_declares(mask_degradation):
    assert degradation_level("gaussian?sigma=25").key == "sigma"
    assert degradation_level("bicubic?scale=3").value == 3.0
    assert degradation_level("gaussian") is None  # level left at its default: no level to plot
    assert degradation_level("no_such_degradation?sigma=3") is None


def test_degradation_level_of_a_bin(mask_degradation):
    level = degradation_level("mask?ratio=0.1-0.2")
    assert (level.family, level.key, level.bin) == ("mask", "ratio", (0.1, 0.2))
    assert level.value == pytest.approx(0.15)


def test_hybrid_image_is_lowpass_plus_highpass():
    from scipy.ndimage import gaussian_filter

    from restorebench.tasks.denoise import filters_page as fp

    a, b = fp.hybrid_pair()
    assert a.shape == b.shape == fp.HYBRID_SIZE
    got = fp.hybrid_image(a, b, sigma_low=fp.SIGMA_LOW, sigma_high=fp.SIGMA_HIGH)
    expected = gaussian_filter(a, fp.SIGMA_LOW) + (b - gaussian_filter(b, fp.SIGMA_HIGH))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert np.abs(got - a).max() > 0.1 and np.abs(got - b).max() > 0.1


def test_laplacian_pyramid_reconstructs_the_image():
    from restorebench.tasks.denoise import filters_page as fp

    img = fp.photo("camera.png")[:301, :257]  # odd sides on purpose
    lap = fp.laplacian_pyramid(img, 5)
    assert [band.shape for band in lap] == [(301, 257), (151, 129), (76, 65), (38, 33), (19, 17)]
    np.testing.assert_allclose(fp.reconstruct(lap), img, rtol=0, atol=1e-6)
    gauss = fp.gaussian_pyramid(img, 5)
    np.testing.assert_array_equal(lap[-1], gauss[-1])


def test_baseline_kernels_are_normalised_low_pass_filters():
    from restorebench.tasks.denoise import filters_page as fp

    for name, kernel in fp.baseline_kernels().items():
        assert kernel.sum() == pytest.approx(1.0), name
        response = fp.frequency_response(kernel)
        assert response.max() == pytest.approx(1.0) and response[32, 32] == pytest.approx(1.0), name


def test_plot_axes_and_sample_labels_say_the_metrics_unit_and_direction(tmp_path):
    from restorebench.report.figures import runtime_figure, sample_figure
    from restorebench.report.samples import write_png
    from restorebench.results.groups import metric_of

    board = pd.DataFrame(
        {
            "dataset": "d",
            "degradation": ["gaussian?sigma=25", "gaussian?sigma=50"],
            "method": "m",
            "rank": [1, 1],
            "runtime_ms_per_mp": [10.0, 12.0],
            "psnr": [30.0, 27.0],
            "auc_rebal": [0.7, 0.6],
            "hole_l1": [0.05, 0.08],
        }
    )
    labels = {
        name: runtime_figure(board, metric_of(name)).axes[0].get_ylabel() for name in ("psnr", "auc_rebal", "hole_l1")
    }
    assert labels == {
        "psnr": "psnr (dB, higher is better)",
        "auc_rebal": "auc_rebal (higher is better)",
        "hole_l1": "hole_l1 (lower is better)",
    }
    crop = np.zeros((8, 8, 3), np.uint8)
    for name in ("clean", "degraded", "method-m"):
        write_png(tmp_path / f"{name}.png", crop)
    titles = {
        name: sample_figure(tmp_path, ["m"], {"m": value}, metric_of(name)).axes[2].get_title()
        for name, value in (("psnr", 27.3149), ("auc_rebal", 0.73456))
    }
    assert titles == {"psnr": "m\npsnr 27.31 dB", "auc_rebal": "m\nauc_rebal 0.7346"}
