"""The report's gallery of photos with no reference: every photo's input beside every method's
whole output, with a synchronised zoom.

Made for looking: with no ground truth, the eye is the judge the scores cannot be. Each row
is one photo; hovering over any of its images magnifies the same spot of all of them (the
outputs of super-resolution, larger than the input, are shown at the same width, so a spot
is the same part of the scene); a click holds the zoom, the wheel changes its power. Images
are inline JPEG ``data:`` URIs, so the page stays self-contained.
"""

from __future__ import annotations

import io
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restorebench.report.figures import data_uri
from restorebench.report.samples import read_png, slug, views_of

if TYPE_CHECKING:
    from restorebench.core.metric import Metric

MAX_PHOTOS = 100  # photos of one group shown in the page (all are kept under the run's samples/)
JPEG_QUALITY = 92

CSS = """
.gallery .photo { margin: 10px 0 22px; } .gallery .photo-key { font-weight: 600; margin: 0 0 4px; }
.gallery .views { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 8px; }
.gallery figure { margin: 0; } .gallery .frame { overflow: hidden; border: 1px solid #d0d7de; cursor: zoom-in; }
.gallery .frame img { display: block; width: 100%; height: auto; transform-origin: var(--x, 50%) var(--y, 50%); }
.gallery .views.zoom .frame img { transform: scale(var(--z, 4)); image-rendering: pixelated; }
.gallery .views.held .frame { cursor: zoom-out; outline: 2px solid #0b4fb3; }
"""

SCRIPT = """
var galleryRows = document.querySelectorAll(".gallery .views");
galleryRows.forEach(function (row) {
  var held = false;
  function at(event) {
    var box = event.currentTarget.getBoundingClientRect();
    row.style.setProperty("--x", (100 * (event.clientX - box.left) / box.width).toFixed(2) + "%");
    row.style.setProperty("--y", (100 * (event.clientY - box.top) / box.height).toFixed(2) + "%");
  }
  row.querySelectorAll(".frame").forEach(function (frame) {
    frame.addEventListener("mouseenter", function () { row.classList.add("zoom"); });
    frame.addEventListener("mousemove", function (e) { if (!held) at(e); });
    frame.addEventListener("mouseleave", function () { if (!held) row.classList.remove("zoom"); });
    frame.addEventListener("click", function (e) {
      held = !held; row.classList.toggle("held", held); row.classList.add("zoom"); at(e);
    });
    frame.addEventListener("wheel", function (e) {
      if (!row.classList.contains("zoom")) return;
      e.preventDefault();
      var z = parseFloat(row.style.getPropertyValue("--z") || "4") * (e.deltaY < 0 ? 1.25 : 0.8);
      row.style.setProperty("--z", Math.min(16, Math.max(1.5, z)).toFixed(2));
    }, { passive: false });
  });
});
document.body.dataset.galleryRows = String(galleryRows.length);  // the rows wired (read by the browser test)
"""


def gallery_photos(samples: Path | None, task: str, dataset: str, degradation: str) -> list[tuple[str, Path]]:
    """``(image key, views folder)`` of a group's photos, the first :data:`MAX_PHOTOS`."""
    return views_of(samples, task, dataset, degradation)[:MAX_PHOTOS] if samples is not None else []


def gallery_html(
    photos: list[tuple[str, Path]],
    total: int,
    methods: list[str],
    values: dict[tuple[str, str], float],
    metric: Metric | None,
) -> str:
    """One group's gallery: a row per photo, its input then each method's output (in
    ``methods`` order, the leaderboard's), captioned with the method's ``metric`` on it
    (``values``: by (image, method))."""
    if not photos:
        return '<p class="missing">no views (the run kept none)</p>'
    rows = []
    for key, folder in photos:
        cells = [_cell(folder / "input.png", "input")]
        for method in methods:
            value = values.get((key, method))
            score = f" · {metric.name} {metric.format(value)}" if metric is not None and value is not None else ""
            cells.append(_cell(folder / f"method-{slug(method)}.png", f"{method}{score}"))
        rows.append(
            f'<div class="photo" data-image="{escape(key)}"><p class="photo-key">{escape(key)}</p>'
            f'<div class="views">{"".join(cells)}</div></div>'
        )
    more = (
        f'<p class="meta">The first {len(photos)} of {total} photos; every view is under the run\'s samples/.</p>'
        if total > len(photos)
        else ""
    )
    hint = (
        '<p class="meta">Hover over an image to magnify the same spot of every image in its row; click to hold '
        "the zoom, scroll to change it. Inputs and outputs are shown whole (shrunk to at most 1600 pixels).</p>"
    )
    return f'<div class="gallery">{hint}{"".join(rows)}{more}</div>'


def _cell(path: Path, caption: str) -> str:
    if not path.is_file():
        body = '<p class="missing">no output</p>'
    else:
        body = f'<div class="frame"><img src="{_jpeg_uri(read_png(path))}" alt="{escape(caption)}"></div>'
    return f"<figure>{body}<figcaption>{escape(caption)}</figcaption></figure>"


def _jpeg_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return data_uri(buf.getvalue(), "jpeg")
