"""The results layer on small tables built by hand: group values (means and set-level
reductions), ranks in each metric's direction, the distance to the best, and tables written
by older versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from restorebench import Metric, register
from restorebench.core.registry import _unregister
from restorebench.report.leaderboard import to_markdown
from restorebench.results.board import build_leaderboard
from restorebench.run.tables import COLUMNS


def _table(values: dict[str, dict[str, list[float]]], *, task: str = "colorize", stats=None) -> pd.DataFrame:
    """Tidy rows: ``{method: {metric: [value per image]}}``, every unit ok, 1 s per 0.5 MP."""
    rows = []
    for method, metrics in values.items():
        for metric, per_image in metrics.items():
            for i, value in enumerate(per_image):
                row = dict.fromkeys(COLUMNS)
                row.update(
                    run_id="r",
                    unit_id=f"{method}-{i}",
                    task=task,
                    dataset="d",
                    image=f"img{i}",
                    degradation="gray",
                    method=method,
                    method_kind="classical",
                    metric=metric,
                    metric_version="1",
                    value=float(value),
                    runtime_s=1.0,
                    megapixels=0.5,
                    status="ok",
                    error="",
                )
                if stats is not None and metric in stats:
                    row["stats"] = np.asarray(stats[metric][method][i], dtype=np.float64)
                rows.append(row)
    return pd.DataFrame(rows)


def test_a_target_metric_ranks_by_the_mean_distance_to_its_target():
    # A: +50 on one image, -50 on the other (mean 0, but far from faithful); B: a little washed out
    results = _table({"A": {"colorfulness_gap": [50, -50]}, "B": {"colorfulness_gap": [-10, -12]}})
    board = build_leaderboard(results).table.set_index("method")
    assert board.loc["A", "colorfulness_gap"] == 0.0 and board.loc["B", "colorfulness_gap"] == -11.0
    assert board.loc["B", "rank"] == 1 and board.loc["A", "rank"] == 2
    assert board.loc["B", "gap"] == 0.0 and board.loc["A", "gap"] == pytest.approx(50 - 11)
    assert set(board["rank_metric"]) == {"colorfulness_gap"}


def test_lower_is_better_ranks_ascending_and_the_gap_is_never_negative():
    results = _table({"A": {"l1": [0.1, 0.3]}, "B": {"l1": [0.05, 0.07]}, "C": {"l1": [0.5, 0.5]}}, task="inpaint")
    board = build_leaderboard(results).table
    assert list(board["method"]) == ["B", "A", "C"] and list(board["rank"]) == [1, 2, 3]
    assert board["gap"].tolist() == pytest.approx([0.0, 0.14, 0.44])


def test_a_table_of_descriptive_statistics_ranks_nothing():
    results = _table({"A": {"saturation": [0.2, 0.4]}, "B": {"saturation": [0.5, 0.5]}})
    built = build_leaderboard(results)
    assert built.table["rank"].isna().all() and built.table["gap"].isna().all()
    assert built.rank_by == {"colorize": ""}
    text = to_markdown(built)
    assert "Not ranked" in text and "| saturation |" in text and "`saturation`: descriptive (not ranked)" in text


def test_the_first_metric_that_ranks_ranks_and_oracles_never_do():
    results = _table(
        {
            "A": {"saturation": [0.9, 0.9], "oracle_psnr": [40, 40], "psnr": [20, 21]},
            "B": {"saturation": [0.1, 0.1], "oracle_psnr": [30, 30], "psnr": [22, 23]},
        }
    )
    built = build_leaderboard(results)
    assert built.rank_by == {"colorize": "psnr"}
    assert built.table.set_index("method").loc["B", "rank"] == 1
    assert "gap (dB)" in to_markdown(built) and "psnr ↑ (dB)" in to_markdown(built)


@pytest.fixture
def pooled_mean():
    """A set-level metric: per image (sum, count) of its pixels; the set's value pools them."""

    def stats(restored, clean, degraded):
        return np.array([float(restored.sum()), float(restored.size)])

    def reduce(rows, weights):
        total = weights @ rows
        return total[0] / total[1]

    metric = Metric("pooled_mean", stats, "1", "higher", "pooled mean", reduce=reduce, aggregation="pooled")
    register(metric)
    yield metric
    _unregister(metric)


def test_a_set_level_metric_is_the_reduction_of_its_images_statistics(pooled_mean):
    # image 0: 100 pixels of mean 0.2; image 1: 300 pixels of mean 0.6; pooled: (20 + 180) / 400 = 0.5
    stats = {"pooled_mean": {"A": [[20.0, 100.0], [180.0, 300.0]]}}
    results = _table({"A": {"pooled_mean": [0.2, 0.6]}}, stats=stats)
    built = build_leaderboard(results)
    assert built.table.loc[0, "pooled_mean"] == 0.5  # not the mean of the images' values (0.4)
    row = built.values.iloc[0]
    assert (row["value"], row["mean"], row["goodness"]) == (0.5, pytest.approx(0.4), 0.5)


def test_tables_of_older_versions_are_read(pooled_mean):
    """A results table without the ``stats`` column (written before set-level metrics): its
    set-level metric's rows aggregate as the mean they were, and nothing fails."""
    results = _table({"A": {"pooled_mean": [0.2, 0.6], "psnr": [20, 22]}}).drop(columns=["stats"])
    built = build_leaderboard(results)
    assert built.table.loc[0, "pooled_mean"] == pytest.approx(0.4) and built.table.loc[0, "psnr"] == 21.0
    assert "pooled_mean" in to_markdown(built)


def test_a_metric_no_plugin_registers_here_is_shown_never_ranked():
    results = _table({"A": {"psnr": [20, 22], "their_metric": [1, 2]}, "B": {"psnr": [25, 25], "their_metric": [9, 9]}})
    built = build_leaderboard(results)
    assert built.metrics["their_metric"].direction == "none"
    assert built.table.set_index("method").loc["B", "rank"] == 1  # by psnr
