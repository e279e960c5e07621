"""The leaderboard as one self-contained HTML page: ranked tables, plots, before/after grids, filters.

The page references nothing outside itself: the CSS is inline and every image is a
base64 ``data:`` URI (the same files are also written to ``figures/``: plots as PNG,
photographic grids as JPEG). A tiny inline
script counts the images that decoded and writes the counts to ``<body>`` as
``data-images-loaded`` and ``data-images-total`` (read by the browser test; a quick
check for humans too).
"""

from __future__ import annotations

import logging
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from restorebench.report import gallery
from restorebench.report.figures import data_uri, figure_bytes, level_figure, runtime_figure, sample_figure
from restorebench.report.gallery import gallery_html, gallery_photos
from restorebench.report.leaderboard import (
    digits,
    format_cell,
    header,
    metrics_legend,
    no_reference,
    ranking_note,
    section_note,
    shown_columns,
)
from restorebench.report.samples import sample_dir, slug

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from restorebench.core.metric import Metric
    from restorebench.results.board import Leaderboard

log = logging.getLogger(__name__)

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2125;
       margin: 0 auto; max-width: 1240px; padding: 16px 24px 48px; background: #fff; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { border-bottom: 2px solid #d0d7de; padding-bottom: 4px; margin-top: 40px; }
h3 { margin: 24px 0 8px; font-size: 16px; } h4 { margin: 16px 0 6px; font-size: 14px; color: #444; }
nav a { margin-right: 14px; } .meta { color: #57606a; }
table.leaderboard { border-collapse: collapse; font-size: 12.5px; margin: 4px 0 12px; }
table.leaderboard th, table.leaderboard td { border: 1px solid #d0d7de; padding: 3px 7px; white-space: nowrap; }
table.leaderboard th { background: #f3f5f7; position: sticky; top: 0; }
table.leaderboard tr:nth-child(even) td { background: #fafbfc; }
table.leaderboard tr.rank-1 td { background: #eaf6ec; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; font-size: 10.5px; font-weight: 600; border-radius: 8px; padding: 0 6px; margin-left: 5px; }
.badge.neural { background: #ddeaff; color: #0b4fb3; } .badge.nonblind { background: #fff1d6; color: #8a5300; }
figure { margin: 8px 0 18px; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #57606a; font-size: 12.5px; } .missing { color: #8c959f; font-style: italic; }
.scroll { overflow-x: auto; }
"""
SCRIPT = """
window.addEventListener("load", function () {
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {
    if (images[i].complete && images[i].naturalWidth > 0) loaded++;
  }
  document.body.dataset.imagesLoaded = String(loaded);
  document.body.dataset.imagesTotal = String(images.length);
});
"""
FOOTNOTE = (
    "Scores on 8-bit outputs; each metric's header shows its direction (↑ higher is better, ↓ lower, "
    "→x closer to x, no mark: descriptive, not ranked) and unit; <code>gap</code>: how far behind the best "
    "method in the table's ranking metric, in its unit; "
    "<code>non_blind</code>: the method was given the true noise level; runtime: <code>restore</code> only, "
    "after a warm-up; <code>oracle_*</code>: the best of a method's samples per image, an upper bound "
    "(it needs the ground truth to pick), not a result."
)


SUFFIX = {"png": "png", "jpeg": "jpg"}


class FigureWriter:
    """Writes figures to a folder and returns their embedded ``<figure>`` markup."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: set[str] = set()

    def embed(self, name: str, fig: Figure, caption: str, *, photo: bool = False, metric: Metric | None = None) -> str:
        """Save ``fig`` as ``<folder>/<name>.png`` (``.jpg`` for a ``photo``) and return a
        ``<figure>`` with it inline (``data-metric`` / ``data-unit``: the metric it plots)."""
        fmt = "jpeg" if photo else "png"
        data = figure_bytes(fig, fmt)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{slug(name)}.{SUFFIX[fmt]}"
        path.write_bytes(data)
        self.written.add(path.name)
        attrs = f' data-metric="{escape(metric.name)}" data-unit="{escape(metric.unit)}"' if metric else ""
        return (
            f'<figure{attrs}><img src="{data_uri(data, fmt)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )

    def embed_or_note(
        self,
        name: str,
        fig: Figure | None,
        caption: str,
        note: str = "no data",
        *,
        photo: bool = False,
        metric: Metric | None = None,
    ) -> str:
        if fig is None:
            return f'<p class="missing">{escape(note)}</p>'
        return self.embed(name, fig, caption, photo=photo, metric=metric)

    def remove_stale(self) -> list[Path]:
        """Delete figures a previous report left in the folder that this one did not write
        (e.g. a grid saved under another format or a group that is gone); returns them."""
        if not self.folder.is_dir():
            return []
        stale = [
            p
            for p in self.folder.iterdir()
            if p.is_file() and p.suffix in (".png", ".jpg") and p.name not in self.written
        ]
        for path in stale:
            path.unlink()
        return stale


def write_html(board: Leaderboard, out: Path, *, run_dir: Path | None = None) -> list[Path]:
    """Write ``index.html`` (self-contained) and ``figures/`` to ``out``; returns both paths.

    ``run_dir`` is the run directory whose ``samples/`` feed the before/after grids;
    without it (or without samples) the grids read "no sample".
    """
    writer = FigureWriter(out / "figures")
    samples = run_dir / "samples" if run_dir is not None and (run_dir / "samples").is_dir() else None
    tasks = sorted(board.table["task"].unique()) if not board.empty else []
    parts = [_header(board, tasks)]
    if not tasks:
        parts.append('<p class="missing">No results.</p>')
    scores = _sample_scores(board, samples)
    for task in tasks:
        parts.append(_task_section(task, board, scores, writer, samples))
    parts += [section(writer.embed) for _, section in _task_extras(tasks)]
    for stale in writer.remove_stale():
        log.info("removed stale figure %s", stale)
    path = out / "index.html"
    path.write_text(_document("restorebench leaderboard", "\n".join(parts)), encoding="utf-8")
    log.info("wrote %s with figures in %s", path, writer.folder)
    return [path, writer.folder]


def _document(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<style>{CSS}{gallery.CSS}</style>\n'
        f"</head>\n<body>\n{body}\n<script>{SCRIPT}{gallery.SCRIPT}</script>\n</body>\n</html>\n"
    )


def _header(board: Leaderboard, tasks: list[str]) -> str:
    runs, units, failed = board.counts.get("runs", []), board.counts.get("units", 0), board.counts.get("failed", 0)
    links = "".join(f'<a href="#task-{slug(t)}">{escape(t)}</a>' for t in tasks)
    links += "".join(f'<a href="#{slug(title)}">{escape(title)}</a>' for title, _ in _task_extras(tasks))
    return (
        "<header><h1>restorebench leaderboard</h1>"
        f'<p class="meta">run {escape(", ".join(runs) or "-")} · {units} units · {failed} failed · '
        f"{len(board.table)} leaderboard rows</p><nav>{links}</nav>"
        f'<p class="meta">{FOOTNOTE} <span class="badge neural">neural</span> a learned model; '
        '<span class="badge nonblind">non-blind</span> given the true degradation level.</p></header>'
    )


def _task_extras(tasks: list[str]) -> list[tuple[str, Any]]:
    """(title, section function) of each task in the report that contributes a section of its own
    (e.g. denoise's filters page); the section's markup carries ``id=<title>``."""
    from restorebench.core.registry import TASKS

    found = [TASKS.get(t) for t in tasks if t in TASKS]
    return [(t.report_title or t.name, t.report_section) for t in found if t.report_section is not None]


def plotted_metric(board: Leaderboard, task: str) -> Metric | None:
    """The metric a task's plots and sample labels show: its ranking metric, else its first metric."""
    ranked = board.rank_metric(task)
    if ranked is not None:
        return ranked
    shown = board.metrics_of(board.table[board.table["task"] == task])
    return shown[0] if shown else None


def _task_section(
    task: str, board: Leaderboard, scores: pd.DataFrame, writer: FigureWriter, samples: Path | None
) -> str:
    rows = board.table[board.table["task"] == task]
    metric = plotted_metric(board, task)
    shown = board.metrics_of(rows)
    parts = [
        f'<section id="task-{slug(task)}">',
        f"<h2>{escape(task)}</h2>",
        '<p class="meta">Metrics: '
        + " ".join(escape(line[2:]) for line in metrics_legend(board, shown)).replace("`", "")
        + "</p>",
    ]
    if metric is not None:
        parts.append(f'<p class="meta">Plots and sample labels show <code>{escape(metric.label())}</code>.</p>')
    groups = list(rows.groupby(["dataset", "degradation"], sort=True))
    for (dataset, degradation), table in groups:
        parts.append(f"<h3>{escape(dataset)} · {escape(degradation)}</h3>")
        note = section_note(table)
        if note:
            parts.append(f'<p class="meta">{escape(note.replace("**", "").replace("`", ""))}</p>')
        parts.append(f'<p class="meta">{escape(ranking_note(table, board).replace("`", ""))}</p>')
        parts.append(table_html(table, task, dataset, degradation, board))
        sources = sorted({s for s in table["published_source"] if s})
        if sources:
            parts.append(f'<p class="meta">Published: {escape("; ".join(sources))}</p>')
    label = metric.label() if metric is not None else "-"
    parts += [
        "<h3>Quality against runtime</h3>",
        writer.embed_or_note(
            f"{task}-runtime",
            runtime_figure(rows, metric) if metric is not None else None,
            f"{task}: mean {label} against runtime per megapixel (log), one point per method and degradation",
            metric=metric,
        ),
        "<h3>Quality against degradation level</h3>",
        writer.embed_or_note(
            f"{task}-levels",
            level_figure(rows, metric) if metric is not None else None,
            f"{task}: {label} against the degradation level, one line per method",
            "no degradation with a known level",
            metric=metric,
        ),
        "<h3>Before / after</h3>",
    ]
    for (dataset, degradation), table in groups:
        parts.append(f"<h4>{escape(dataset)} · {escape(degradation)}</h4>")
        if no_reference(degradation):
            parts.append(_gallery(task, dataset, degradation, list(table["method"]), scores, metric, samples))
        else:
            parts.append(
                _samples_html(task, dataset, degradation, list(table["method"]), scores, metric, writer, samples)
            )
    parts.append("</section>")
    return "\n".join(parts)


def table_html(table: pd.DataFrame, task: str, dataset: str, degradation: str, board: Leaderboard) -> str:
    """One ranked table, with the Markdown leaderboard's columns; neural and non-blind rows marked.
    A metric's header carries its direction and unit, and says both in its ``title``."""
    columns = shown_columns(table, board)
    numeric = {c for c in columns if table[c].dtype.kind in "fi"}
    places = {c: digits(table, c, board) for c in columns}
    heads = []
    for c in columns:
        metric = board.metrics.get(c)
        attrs = ""
        if metric is not None:
            what = f"{metric.description}; {metric.direction_text()}; {metric.aggregation_text()}"
            attrs = f' data-metric="{escape(c)}" data-unit="{escape(metric.unit)}" title="{escape(what)}"'
        heads.append(f"<th{attrs}>{escape(header(c, board, table))}</th>")
    rows = []
    for _, row in table.iterrows():
        neural, non_blind = row.get("kind") == "neural", _truthy(row.get("non_blind"))
        rank = format_cell(row.get("rank"), "rank")
        classes = [f"rank-{rank}"] + (["neural"] if neural else []) + (["nonblind"] if non_blind else [])
        cells = []
        for c in columns:
            text = escape(format_cell(row[c], c, places[c]))
            if c == "method":
                text += ('<span class="badge neural">neural</span>' if neural else "") + (
                    '<span class="badge nonblind">non-blind</span>' if non_blind else ""
                )
            cells.append(f'<td class="num">{text}</td>' if c in numeric else f"<td>{text}</td>")
        rows.append(f'<tr class="{" ".join(classes)}" data-method="{escape(str(row["method"]))}">{"".join(cells)}</tr>')
    attrs = f'data-task="{escape(task)}" data-dataset="{escape(dataset)}" data-degradation="{escape(degradation)}"'
    return (
        f'<div class="scroll"><table class="leaderboard" {attrs}><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _truthy(value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return False
    return bool(value) and str(value).lower() not in ("false", "0", "no")


def _sample_image(samples: Path | None, task: str, dataset: str, degradation: str) -> str | None:
    """The image a group's sample crops were cut from (its ``image.txt``), or None."""
    folder = sample_dir(samples, task, dataset, degradation) if samples is not None else None
    file = folder / "image.txt" if folder is not None else None
    return file.read_text().strip() if file is not None and file.is_file() else None


def _sample_scores(board: Leaderboard, samples: Path | None) -> pd.DataFrame:
    """Every method's plotted metric on each block's sampled image, in one query."""
    import pandas as pd

    from restorebench.results.groups import image_values

    wanted = []
    blocks = board.table.drop_duplicates(["task", "dataset", "degradation"]) if not board.empty else board.table
    for _, row in blocks.iterrows():
        image, metric = (
            _sample_image(samples, row["task"], row["dataset"], row["degradation"]),
            plotted_metric(board, row["task"]),
        )
        if image is not None and metric is not None:
            wanted.append((row["task"], row["dataset"], row["degradation"], image, metric.name))
        if no_reference(row["degradation"]) and metric is not None:  # the gallery's captions: every photo
            for key, _ in gallery_photos(samples, row["task"], row["dataset"], row["degradation"]):
                wanted.append((row["task"], row["dataset"], row["degradation"], key, metric.name))
    frame = pd.DataFrame(wanted, columns=["task", "dataset", "degradation", "image", "metric"])
    return image_values(board.results, frame)


def _samples_html(
    task: str,
    dataset: str,
    degradation: str,
    methods: list[str],
    scores: pd.DataFrame,
    metric: Metric | None,
    writer: FigureWriter,
    samples: Path | None,
) -> str:
    folder = sample_dir(samples, task, dataset, degradation) if samples is not None else None
    if folder is None or not folder.is_dir():
        return '<p class="missing">no sample</p>'
    image = _sample_image(samples, task, dataset, degradation)
    mine = _of_group(scores, task, dataset, degradation)
    values = {str(m): float(v) for m, v in zip(mine["method"], mine["value"])} if metric is not None else {}
    fig = sample_figure(folder, methods, values, metric)
    caption = f"{dataset} · {degradation} · image {image or '?'}: centre crops (red box: the patch magnified below)"
    return writer.embed_or_note(
        f"{task}-{dataset}-{degradation}-samples", fig, caption, "no sample", photo=True, metric=metric
    )


def _gallery(
    task: str,
    dataset: str,
    degradation: str,
    methods: list[str],
    scores: pd.DataFrame,
    metric: Metric | None,
    samples: Path | None,
) -> str:
    """Every photo of a group with no reference, input beside each method's whole output."""
    from restorebench.report.samples import views_of

    views = views_of(samples, task, dataset, degradation) if samples is not None else []
    mine = _of_group(scores, task, dataset, degradation)
    values = {(str(i), str(m)): float(v) for i, m, v in zip(mine["image"], mine["method"], mine["value"])}
    return gallery_html(views[: gallery.MAX_PHOTOS], len(views), methods, values, metric)


def _of_group(scores: pd.DataFrame, task: str, dataset: str, degradation: str) -> pd.DataFrame:
    """The rows of ``scores`` (per-image values of the plotted metric) of one group."""
    return scores[(scores["task"] == task) & (scores["dataset"] == dataset) & (scores["degradation"] == degradation)]
