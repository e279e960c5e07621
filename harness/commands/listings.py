"""``restorebench list``: what is registered, as records (for ``--json``) and as text lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from restorebench.core.errors import UserError

log = logging.getLogger(__name__)

WHAT = {
    "tasks": "the restoration problems, with their default metrics",
    "methods": "restoration methods: kind, resources, blind or not, parameters with defaults",
    "degradations": "degradations and their parameters",
    "metrics": "metrics: protocol version, direction, unit and how they aggregate over a set",
    "datasets": "dataset source schemes (folder:, hf:, paired:, ...) and the dataset cards (card:set5, ...)",
    "checkpoints": "the committed checkpoints, with how each was trained",
}


def listing(what: str) -> list[dict[str, Any]]:
    """One record per registered thing of kind ``what`` (see :data:`WHAT`)."""
    builders: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "tasks": _tasks,
        "methods": _methods,
        "degradations": _degradations,
        "metrics": _metrics,
        "datasets": _datasets,
        "checkpoints": _checkpoints,
    }
    if what not in builders:
        import difflib

        close = difflib.get_close_matches(what, WHAT, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise UserError(f"cannot list {what!r}; {guess}valid choices: {', '.join(WHAT)}")
    return builders[what]()


def print_listing(what: str | None, *, as_json: bool = False) -> None:
    """Print ``what`` as aligned text or JSON; with nothing to list, what can be listed."""
    if what is None:
        records = [{"name": k, "description": v} for k, v in WHAT.items()]
        if as_json:
            print(json.dumps(records, indent=2))
            return
        print("restorebench list WHAT, where WHAT is one of:")
        for record in records:
            print(f"  {record['name']:<13} {record['description']}")
        return
    records = listing(what)
    if as_json:
        print(json.dumps(records, indent=2, default=str))
        return
    if what == "metrics":
        print("\n".join(_metric_lines(records)))
        return
    for record in records:
        print("  ".join(_text(v) for v in record.values()))


REQUIRED = "(required)"


def _text(value: Any) -> str:
    if isinstance(value, dict):  # parameters: name=default, JSON-spelled (per task: task: (name=default))
        return (
            ", ".join(
                f"{k}: ({_text(v)})" if isinstance(v, dict) else f"{k} {v}" if v == REQUIRED else f"{k}={json.dumps(v)}"
                for k, v in value.items()
            )
            or "-"
        )
    return "" if value is None else str(value)


def _parameters(model: Any, hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Each field of a parameter model with its default (``(required)`` when it has none)."""
    from restorebench.core.interfaces import param_defaults

    defaults = param_defaults(model)
    return {name: defaults.get(name, REQUIRED) for name in model.model_fields if name not in hidden}


def _tasks() -> list[dict[str, Any]]:
    from restorebench.core.registry import TASKS

    return [{"name": n, "description": t.description, "metrics": ", ".join(t.metrics)} for n, t in TASKS.items()]


def _methods() -> list[dict[str, Any]]:
    from restorebench.core.registry import METHODS

    rows = []
    for name, cls in METHODS.items():
        level = cls.uses_true_level
        blind = "by parameter" if isinstance(level, property) else ("non-blind" if level else "blind")
        rows.append(
            {
                "name": name,
                "kind": cls.kind,
                "resources": f"cpus={cls.resources.num_cpus:g} gpus={cls.resources.num_gpus:g}",
                "level": blind,
                "description": cls.description,
                "parameters": _parameters(cls.Params),
                "size": _size(cls),
            }
        )
    return rows


def _size(cls: Any) -> str:
    """A neural method's learned parameters ('' for classical ones): with its committed
    checkpoint, or its architecture's; one figure per ``variant`` when it has several."""
    if cls.kind != "neural":
        return ""
    field = cls.Params.model_fields.get("variant")
    variants = list(getattr(field.annotation, "__args__", ())) if field is not None else []
    if not variants:
        return _count(cls, {})
    return ", ".join(f"{v}: {_count(cls, {'variant': v})}" for v in variants)


def _count(cls: Any, params: dict[str, Any]) -> str:
    from pydantic import ValidationError

    try:
        count = cls(cls.Params(**params)).parameter_count()
    except (UserError, ValidationError) as exc:  # an unreadable checkpoint; a parameter with no default
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("the size of %s%s is unknown (params=?): %s", cls.name, f" {params}" if params else "", why)
        return "params=?"
    return f"params={count:,}" if count is not None else ""


def _degradations() -> list[dict[str, Any]]:
    from restorebench.core.registry import DEGRADATIONS, TASKS

    def parameters(cls: Any) -> dict[str, Any]:
        if not cls.takes_photos:
            return _parameters(cls.Params)
        return {n: _parameters(t.as_is.Params) for n, t in TASKS.items() if t.as_is is not None}  # per task

    return [
        {"name": n, "task": c.task, "parameters": parameters(c), "level": c.level or ""}
        for n, c in DEGRADATIONS.items()
    ]


def _metrics() -> list[dict[str, Any]]:
    """Each metric with what its number means: ``direction`` (higher, lower, target, none) and
    ``target``, ``unit``, ``aggregation`` (mean or set) and its description, ``parameters``,
    ``reference`` (false: a no-reference score)."""
    from restorebench.core.registry import METRICS

    return [
        {
            "name": n,
            "version": f"v{m.version}",
            "direction": m.direction,
            "target": m.target,
            "unit": m.unit,
            "aggregation": "set" if m.set_level else "mean",
            "aggregation_detail": m.aggregation_text(),
            "parameters": m.parameters,
            "reference": m.reference,
            "description": m.description,
        }
        for n, m in METRICS.items()
    ]


def _metric_lines(records: list[dict[str, Any]]) -> list[str]:
    """``list metrics`` as aligned columns: name, version, direction, unit, aggregation."""
    from restorebench.core.registry import METRICS

    rows = [("metric", "version", "direction", "unit", "aggregation")]
    for r in records:
        m = METRICS.get(r["name"])
        name = f"{r['name']}[?{r['parameters']}]" if r["parameters"] else r["name"]
        rows.append((name, r["version"], m.direction_text(), r["unit"] or "-", r["aggregation_detail"]))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths)), row[4]]).rstrip() for row in rows]


def _datasets() -> list[dict[str, Any]]:
    from restorebench.core.registry import SOURCES

    return [
        {
            "scheme": f"{n}:",
            "description": (c.__doc__ or "").strip().splitlines()[0],
            "parameters": _parameters(c.Params, frozenset({"target"})),
        }
        for n, c in SOURCES.items()
    ] + _cards()


def _cards() -> list[dict[str, Any]]:
    """The built-in dataset cards, read with ``card:NAME?root=DIR``."""
    from restorebench.data.cards import builtin_cards, load_card

    rows = []
    for name in builtin_cards():
        card = load_card(name)
        published = f"; {len(card.published)} published results" if card.published else ""
        rows.append(
            {
                "scheme": f"card:{name}",
                "description": f"{card.title}: checks {card.checks} of {len(card.files)} files{published}; "
                f"get it: {card.get.strip()}",
                "parameters": "root=DIR (required), allow_mismatch=false",
            }
        )
    return rows


def _checkpoints() -> list[dict[str, Any]]:
    """The committed checkpoint of every neural method that has one, with its provenance."""
    from restorebench.core.registry import METHODS

    rows = []
    for name, cls in METHODS.items():
        if cls.kind != "neural" or getattr(cls, "describe_checkpoints", None) is None:
            continue
        try:
            infos = cls().describe_checkpoints()
        except UserError as exc:  # e.g. a checkpoint not trained yet
            rows.append({"method": name, "file": f"unavailable: {exc.args[0]}"})
            continue
        for info in infos:
            psnr = info["val_psnr"]
            rows.append(
                {
                    "method": name,
                    "file": Path(info["file"]).name,
                    "sha256": f"sha256:{info['sha256']}",
                    "steps": f"steps={info['steps']}",
                    "train_s": f"train_s={info['seconds']}",
                    "val_psnr": f"val_psnr={psnr:.2f}" if psnr is not None else "val_psnr=-",
                    "mlflow_run": f"mlflow_run={info['mlflow_run']}",
                    "command": info["command"],
                }
            )
    return rows
