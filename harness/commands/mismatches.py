"""What ``compare`` could not pair, said at the coarsest level that explains it.

Failed units per side, metric versions that differ (different protocols), and results
present on one side only (a method, a block, images, or a metric), each one line for
the verdict's "Mismatches" list: nothing is ever dropped silently. :class:`Tally` gathers them
as the two sides' groups stream past (one comparison row's images at a time), so a
comparison of millions of rows keeps only these lines and one group's images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from restorebench.commands.verdicts import Paired
from restorebench.results.groups import GROUP, metric_of

if TYPE_CHECKING:
    import duckdb

ROW = [*GROUP, "metric"]  # one row of a comparison
LABELS = ("BASE", "CAND")


@dataclass
class SideFacts:
    """What one side holds, in few rows: its metrics, and the blocks and methods of each
    compared metric (what a one-sided result is said against)."""

    all_metrics: set[str]
    blocks: set[tuple]  # (task, dataset, degradation, metric)
    methods: set[tuple]  # (task, dataset, degradation, method, metric)
    failed: dict[tuple, tuple[int, int]]  # GROUP -> (units with a row not ok, units), over the compared metrics

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection, view: str, names: tuple[str, ...]) -> SideFacts:
        all_metrics = {
            r[0] for r in con.execute(f"SELECT DISTINCT metric FROM {view} WHERE status <> 'skipped'").fetchall()
        }
        wanted = ", ".join("'" + n.replace("'", "''") + "'" for n in names)
        methods = {
            tuple(r)
            for r in con.execute(
                f"SELECT DISTINCT {', '.join(ROW)} FROM {view} WHERE status <> 'skipped' AND metric IN ({wanted})"
            ).fetchall()
        }
        group = ", ".join(GROUP)
        units = (  # one row per unit (a grouping that spills to disk; count(DISTINCT) does not)
            f"SELECT {group}, bool_or(status <> 'ok') AS bad FROM {view} "
            f"WHERE status <> 'skipped' AND metric IN ({wanted}) GROUP BY {group}, unit_id"
        )
        failed = {
            tuple(r[:-2]): (int(r[-2]), int(r[-1]))
            for r in con.execute(
                f"SELECT {group}, count(*) FILTER (WHERE bad), count(*) FROM ({units}) GROUP BY {group}"
            ).fetchall()
        }
        return cls(all_metrics, {(*m[:3], m[4]) for m in methods}, methods, failed)


@dataclass
class Tally:
    """The mismatches of a comparison, gathered group by group (:meth:`add`). A group's rows
    are Arrow tables: their images are strings in buffers, not Python objects, so a group of
    100,000 images costs megabytes."""

    facts: list[SideFacts]
    _protocol: list[str] = field(default_factory=list)
    _one_sided: list[dict[str, list[str]]] = field(default_factory=lambda: [{}, {}])

    def add(self, key: tuple, b: Any, c: Any) -> tuple[Paired | None, Any]:
        """Take one comparison row's rows of each side (Arrow tables, or None where a side has
        none); returns the images paired under one protocol (None: none) and BASE's ok rows
        whose unit failed in CAND (a table, maybe empty)."""
        import pyarrow.compute as pc

        oks = [ok_rows(b), ok_rows(c)]
        broken = None
        if oks[0] is not None and c is not None:
            broken = oks[0].filter(pc.is_in(oks[0].column("image"), value_set=_images(c, failed=True)))
        if oks[0] is None or oks[1] is None:
            side = 0 if oks[1] is None else 1
            if oks[side] is not None and oks[side].num_rows:
                self._unpaired(side, key, oks[side], c if side == 0 else b)
            return None, broken
        where = pc.index_in(oks[0].column("image"), value_set=oks[1].column("image"))
        matched = pc.is_valid(where)
        alone = [
            oks[0].filter(pc.invert(matched)),
            oks[1].filter(pc.invert(pc.is_in(oks[1].column("image"), value_set=oks[0].column("image")))),
        ]
        for side in (0, 1):
            if alone[side].num_rows:
                self._unpaired(side, key, alone[side], c if side == 0 else b)
        base = oks[0].filter(matched)
        cand = oks[1].take(pc.drop_null(where))
        same = pc.equal(base.column("metric_version"), cand.column("metric_version"))
        if not pc.all(same).as_py():
            self._other_protocols(key, base.filter(pc.invert(same)), cand.filter(pc.invert(same)))
            base, cand = base.filter(same), cand.filter(same)
        if not base.num_rows:
            return None, broken
        return _paired(base, cand, metric_of(key[-1]).set_level), broken

    def messages(self) -> list[str]:
        """Every mismatch line: failed units, other protocols, one-sided results."""
        out = [
            f"{LABELS[side]}: {_where(key)}: {failed} of {total} unit(s) failed (not compared)"
            for side in (0, 1)
            for key, (failed, total) in sorted(self.facts[side].failed.items())
            if failed
        ]
        out += self._protocol
        for found in self._one_sided:
            out += [f"{text} [{', '.join(dict.fromkeys(ms))}]" if ms else text for text, ms in found.items()]
        return out

    # ------------------------------------------------------------ the parts

    def _other_protocols(self, key: tuple, base: Any, cand: Any) -> None:
        import pandas as pd

        versions = pd.DataFrame(
            {"b": base.column("metric_version").to_pylist(), "c": cand.column("metric_version").to_pylist()}
        )
        for (vb, vc), g in versions.groupby(["b", "c"], sort=True):
            self._protocol.append(
                f"{_where(key[:4])}: metric `{key[4]}` version {vb} in BASE vs {vc} in CAND: {len(g)} image(s) "
                "not compared (different protocols)"
            )

    def _unpaired(self, side: int, key: tuple, rows: Any, other: Any) -> None:
        """Rows of ``side`` without a partner, said at the coarsest level that explains them:
        a metric the other side lacks, a block or a method it lacks, or images (lost there,
        or failed there)."""
        import pyarrow.compute as pc

        label, other_label = LABELS[side], LABELS[1 - side]
        theirs, metric = self.facts[1 - side], key[4]
        found = self._one_sided[side]
        if metric not in theirs.all_metrics:
            found.setdefault(f"metric `{metric}` only in {label}", [])
            return
        if (*key[:3], metric) not in theirs.blocks:
            text = f"{' · '.join(key[:3])}: only in {label}"
        elif key not in theirs.methods:
            text = f"{_where(key[:4])}: method only in {label}"
        else:
            images = pc.unique(rows.column("image"))
            there = pc.fill_null(pc.is_in(images, value_set=_images(other)), False)
            parts = []
            for names, say in (
                (images.filter(pc.invert(there)), f"only in {label}"),
                (images.filter(there), f"failed in {other_label}"),
            ):
                if len(names):
                    first = pc.take(names, pc.sort_indices(names)[:8]).to_pylist()
                    parts.append(f"{len(names)} image(s) {say}: {_names(first, len(names))}")
            text = f"{_where(key[:4])}: " + "; ".join(parts)
        found.setdefault(text, []).append(metric)


def ok_rows(table: Any) -> Any:
    """A group's rows that count (ok, with a value), one per image (the last)."""
    if table is None:
        return None
    import pyarrow.compute as pc

    ok = table.filter(pc.and_(pc.equal(table.column("status"), "ok"), pc.is_valid(table.column("value"))))
    ok = ok.filter(pc.invert(pc.is_nan(ok.column("value")))) if ok.num_rows else ok
    if ok.num_rows and len(pc.unique(ok.column("image"))) < ok.num_rows:  # rare: keep each image's last row
        import pyarrow as pa

        frame = ok.to_pandas().drop_duplicates("image", keep="last")
        ok = pa.Table.from_pandas(frame, schema=ok.schema, preserve_index=False)
    return ok


def _images(table: Any, *, failed: bool = False) -> Any:
    """The images of a side's rows (only those whose row is not ok, with ``failed``)."""
    import pyarrow.compute as pc

    rows = table.filter(pc.not_equal(table.column("status"), "ok")) if failed else table
    return pc.unique(rows.column("image"))


def _paired(base: Any, cand: Any, set_level: bool) -> Paired:
    versions = tuple(", ".join(sorted(map(str, t.column("method_version").unique().to_pylist()))) for t in (base, cand))
    stats = (base.column("stats").to_pylist(), cand.column("stats").to_pylist()) if set_level else (None, None)
    return Paired(
        base.column("value").to_numpy(),
        cand.column("value").to_numpy(),
        stats[0],
        stats[1],
        versions,  # type: ignore[arg-type]
    )


def _where(key: tuple) -> str:
    task, dataset, degradation, method = key
    return f"{method} on {dataset} · {degradation}"


def _names(names: list[str], limit: int = 8) -> str:
    return ", ".join(names[:limit]) + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
