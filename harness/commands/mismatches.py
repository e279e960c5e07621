"""What ``compare`` could not pair, said at the coarsest level that explains it.

Failed units per side, metric versions that differ (different protocols), and results
present on one side only (a method, a block, images, or a metric), each one line for
the verdict's "Mismatches" list: nothing is ever dropped silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pandas import DataFrame

from restorebench.results.groups import BLOCK, GROUP

ROW = [*GROUP, "metric"]  # one row of a comparison


def failed_units(frame: DataFrame):
    bad = frame[frame["status"] != "ok"]
    return bad.groupby(GROUP)["unit_id"].nunique()


def failures(sides: list[DataFrame]) -> list[str]:
    out = []
    for frame, label in zip(sides, ("BASE", "CAND")):
        total = frame.groupby(GROUP)["unit_id"].nunique()
        for key, count in failed_units(frame).items():
            out.append(f"{label}: {_where(key)}: {count} of {total[key]} unit(s) failed (not compared)")
    return out


def protocol(rows: DataFrame) -> list[str]:
    keys = [*ROW, "metric_version_base", "metric_version_cand"]
    return [
        f"{_where(k[:4])}: metric `{k[4]}` version {k[5]} in BASE vs {k[6]} in CAND: {len(g)} image(s) "
        "not compared (different protocols)"
        for k, g in rows.groupby(keys, sort=True)
    ]


def one_sided(rows: DataFrame, other: DataFrame, label: str, other_label: str) -> list[str]:
    """Rows of one side without a partner, said at the coarsest level that explains them."""
    found: dict[str, list[str]] = {}
    for metric, by_metric in rows.groupby("metric", sort=True):
        there = other[other["metric"] == metric]
        if there.empty:
            found.setdefault(f"metric `{metric}` only in {label}", [])
            continue
        blocks, methods = set(map(tuple, there[BLOCK].to_numpy())), set(map(tuple, there[GROUP].to_numpy()))
        images = set(map(tuple, there[[*GROUP, "image"]].to_numpy()))
        for key, g in by_metric.groupby(GROUP, sort=True):
            if key[:3] not in blocks:
                text = f"{' · '.join(key[:3])}: only in {label}"
            elif key not in methods:
                text = f"{_where(key)}: method only in {label}"
            else:
                names = sorted(g["image"].unique())
                failed = [n for n in names if (*key, n) in images]
                lost = [n for n in names if (*key, n) not in images]
                parts = ([f"{len(lost)} image(s) only in {label}: {_names(lost)}"] if lost else []) + (
                    [f"{len(failed)} image(s) failed in {other_label}: {_names(failed)}"] if failed else []
                )
                text = f"{_where(key)}: " + "; ".join(parts)
            found.setdefault(text, []).append(metric)
    return [f"{text} [{', '.join(dict.fromkeys(ms))}]" if ms else text for text, ms in found.items()]


def _where(key: tuple) -> str:
    task, dataset, degradation, method = key
    return f"{method} on {dataset} · {degradation}"


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
