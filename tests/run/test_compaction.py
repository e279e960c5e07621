"""Compaction in bounded memory: the latest row of each (unit, metric) across parts and row
groups, only the units kept, one file per task, checked against the same rule in pandas."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from restorebench.run.compaction import compact_parts


def _parts(tmp_path, rng):
    """Five parts of 3-row row groups: units u0..u19 of two tasks, each metric written up to 4
    times (status and value change), some failed rows without a metric; the first part in an older
    schema (no ``metric_index``, ``error``)."""
    frames = []
    for n in range(5):
        rows = []
        for _ in range(int(rng.integers(8, 20))):
            unit = int(rng.integers(0, 20))
            failed = rng.random() < 0.25
            rows.append(
                {
                    "run_id": "r",
                    "unit_id": f"u{unit}",
                    "task": "denoise" if unit % 2 else "superres",
                    "metric": None if failed and rng.random() < 0.3 else ("psnr", "ssim")[int(rng.integers(0, 2))],
                    "status": "failed" if failed else "ok",
                    "value": float(rng.normal()),
                    "metric_index": 0,
                    "error": "boom" if failed else None,
                }
            )
        frame = pd.DataFrame(rows)
        if n == 0:
            frame = frame.drop(columns=["metric_index", "error"])
        frames.append(frame)
    paths = []
    for n, frame in enumerate(frames):
        path = tmp_path / f"part-{n}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=3)
        paths.append(path)
    return paths, frames


def _expected(frames, keep=None):
    every = pd.concat(frames, ignore_index=True)
    every["key_metric"] = every["metric"].fillna("")
    latest = every.drop_duplicates(["unit_id", "key_metric"], keep="last")
    if keep is not None:
        latest = latest[latest["unit_id"].isin(keep)]
    return latest


def _read(written):
    return pd.concat([pq.read_table(p).to_pandas() for p in written], ignore_index=True)


def _rows_of(frame):
    return sorted(zip(frame["unit_id"], frame["metric"].fillna(""), frame["status"], frame["value"]))


def _names():
    counter = itertools.count()
    return lambda: f"part-{next(counter):04d}.parquet"


def test_the_latest_row_of_each_unit_and_metric_stays(tmp_path):
    parts, frames = _parts(tmp_path, np.random.default_rng(1))
    written = compact_parts(parts, tmp_path / "dataset", name=_names())
    assert sorted(p.parent.name for p in written) == ["denoise", "superres"]  # one file per task
    got = _read(written)
    want = _expected(frames)
    assert _rows_of(got) == _rows_of(want) and len(got) == len(want)
    assert got["metric_index"].isna().sum() == want["metric_index"].isna().sum()  # the old part's rows: null


def test_only_the_units_kept_stay_and_fresh_parts_are_copied_whole(tmp_path):
    parts, frames = _parts(tmp_path, np.random.default_rng(2))
    keep = {f"u{i}" for i in range(0, 20, 3)}
    written = compact_parts(parts, tmp_path / "kept", keep=lambda ids: keep.intersection(ids), name=_names())
    got, want = _read(written), _expected(frames, keep)
    assert set(got["unit_id"]) == set(want["unit_id"]) and len(got) == len(want)
    whole = compact_parts(parts, tmp_path / "whole", deduplicate=False, name=_names())
    assert len(_read(whole)) == sum(len(f) for f in frames)


def test_several_runs_keep_a_units_ok_row_over_a_later_failure(tmp_path):
    parts, frames = _parts(tmp_path, np.random.default_rng(4))
    written = compact_parts(parts, tmp_path / "runs", prefer_ok=True, name=_names())
    every = pd.concat(frames, ignore_index=True)
    every["key_metric"] = every["metric"].fillna("")
    every["rank"] = (every["status"] == "ok").astype(int)
    every["order"] = range(len(every))
    want = every.sort_values(["rank", "order"]).drop_duplicates(["unit_id", "key_metric"], keep="last")
    got = _read(written)
    assert _rows_of(got) == _rows_of(want) and len(got) == len(want)
    assert (got["status"] == "ok").sum() > (_expected(frames)["status"] == "ok").sum()  # the rule changed something


def test_rows_read_a_few_at_a_time_give_the_same_rows(tmp_path, monkeypatch):
    import restorebench.run.compaction as compaction

    parts, frames = _parts(tmp_path, np.random.default_rng(5))
    whole = _read(compact_parts(parts, tmp_path / "whole", prefer_ok=True, name=_names()))
    monkeypatch.setattr(compaction, "BATCH_ROWS", 2)  # slices of 2 rows within row groups of 3
    monkeypatch.setattr(compaction, "ROW_GROUP_ROWS", 5)
    sliced = compact_parts(parts, tmp_path / "sliced", prefer_ok=True, name=_names())
    assert _rows_of(_read(sliced)) == _rows_of(whole)
    assert max(pq.ParquetFile(p).metadata.row_group(0).num_rows for p in sliced) >= 5  # slices gathered
