"""The HTML report in a real headless browser (Debian's chromium): it renders and every image loads.

Without chromium the tests skip, except under CI (``CI`` set), where ``.ci/run`` installs
it and a missing browser is a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests.report.test_report import run_and_report

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    path = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is missing under CI: .ci/run installs it with apt-get install chromium")
    pytest.skip("chromium is not installed (apt-get install chromium); the browser test needs it")


@pytest.fixture
def page(image_folder, tmp_path) -> Path:
    _, out = run_and_report(image_folder, tmp_path / "run", formats=("html",))
    return out / "index.html"


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_screenshot_is_rendered(chromium, page, tmp_path):
    from PIL import Image

    shot = tmp_path / "report.png"
    done = _chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        page.resolve().as_uri(),
    )
    assert shot.exists(), done.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.width == 1280
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.std() > 20, "the screenshot looks blank"


class _BodyAttrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self.body = dict(attrs)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


def test_every_image_loads_in_the_browser(chromium, page, tmp_path):
    body = _loaded_body(chromium, page, tmp_path)
    loaded, total = body.get("data-images-loaded"), body.get("data-images-total")
    assert total is not None, f"the page's image counter did not run: {body}"
    assert int(total) > 0
    assert loaded == total


def test_the_gallery_of_photos_without_reference_loads_and_wires_every_row(chromium, image_folder, tmp_path):
    """Each photo's row (input and every output) loads, and its zoom script ran over every row."""
    from restorebench.report.files import write_report
    from restorebench.run.pipeline import RunOptions, run_suite

    options = RunOptions(
        tasks=("denoise",),
        datasets=(f"folder:{image_folder}?reference=none",),
        methods=("denoise/median", "denoise/identity"),
        out=tmp_path / "run",
        executor="local",
        tracking=False,
    )
    write_report(run_suite(options).results_set, tmp_path / "report", ["html"], run_dir=tmp_path / "run")
    body = _loaded_body(chromium, tmp_path / "report" / "index.html", tmp_path)
    assert body.get("data-gallery-rows") == "3"
    assert int(body["data-images-total"]) >= 3 * 3 and body["data-images-loaded"] == body["data-images-total"]


def _loaded_body(chromium: str, page: Path, tmp_path: Path) -> dict[str, str | None]:
    """The attributes of ``<body>`` once ``page`` loaded in chromium, served over HTTP."""
    handler = functools.partial(_Quiet, directory=str(page.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{page.name}"
        done = _chromium(chromium, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert done.returncode == 0, done.stderr[-2000:]
    parser = _BodyAttrs()
    parser.feed(done.stdout)
    return parser.body


class _Figures(HTMLParser):
    """Each figure's metric attributes and caption, and each table header's text and attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[dict[str, str | None]] = []
        self.headers: list[dict[str, str | None]] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "figure":
            self.figures.append({**dict(attrs), "caption": ""})
        elif tag == "figcaption":
            self._in = "caption"
        elif tag == "th":
            self.headers.append({**dict(attrs), "text": ""})
            self._in = "th"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("figcaption", "th"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "caption":
            self.figures[-1]["caption"] += data
        elif self._in == "th":
            self.headers[-1]["text"] += data


def test_plots_and_labels_carry_each_metrics_own_unit(chromium, image_folder, tmp_path):
    """A report of a denoising (PSNR, dB) and a colorization (AuC, no unit) block, as the
    browser builds it: each plot says its metric and unit, and no AuC is labelled in dB."""
    from restorebench.report.files import write_report
    from restorebench.run.pipeline import RunOptions, run_suite

    suite = tmp_path / "two.yaml"
    suite.write_text(
        "name: two\ntasks:\n"
        f"  - task: denoise\n    datasets: ['folder:{image_folder}']\n"
        "    degradations: ['gaussian?sigma=25']\n    methods: [denoise/median, denoise/box]\n"
        f"  - task: colorize\n    datasets: ['folder:{image_folder}']\n"
        "    degradations: [gray]\n    methods: [colorize/gray, colorize/mean_ab]\n"
    )
    summary = run_suite(RunOptions(suite=str(suite), out=tmp_path / "run", executor="local", tracking=False))
    page = write_report(summary.results, tmp_path / "run" / "report", ["html"], board=summary.board)[0]
    done = _chromium(chromium, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = _Figures()
    dom.feed(done.stdout)

    plots = {(f["data-metric"], f["caption"].split(":")[0]) for f in dom.figures if f.get("data-metric")}
    assert {("psnr", "denoise"), ("auc_rebal", "colorize")} <= plots
    for figure in dom.figures:
        metric, unit, caption = figure.get("data-metric"), figure.get("data-unit"), figure["caption"]
        if metric == "psnr":
            assert unit == "dB" and ("psnr (dB)" in caption or "against" not in caption)
        elif metric == "auc_rebal":
            assert unit == "" and "dB" not in caption
    runtime = [f["caption"] for f in dom.figures if "against runtime" in f["caption"]]
    assert any(c.startswith("denoise: mean psnr (dB)") for c in runtime)
    assert any(c.startswith("colorize: mean auc_rebal against") for c in runtime)
    heads = {h.get("data-metric"): h for h in dom.headers if h.get("data-metric")}
    assert heads["psnr"]["text"] == "psnr ↑ (dB)" and heads["psnr"]["data-unit"] == "dB"
    assert heads["auc_rebal"]["text"] == "auc_rebal ↑" and "set's pixels" in heads["auc_rebal"]["title"]
    assert heads["colorfulness_gap"]["text"] == "colorfulness_gap →0"
    assert heads["saturation"]["text"] == "saturation" and "descriptive" in heads["saturation"]["title"]
    gaps = [h["text"] for h in dom.headers if h["text"].startswith("gap")]
    assert "gap (dB)" in gaps and "gap" in gaps  # denoise's in dB, colorize's (AuC) without a unit
