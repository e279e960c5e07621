"""References: ``name?key=value&key=value`` strings that name a component and its parameters.

Suites, the command line and result tables all speak in references
(``gaussian?sigma=25``, ``denoise/median``, ``synthetic:deadleaves?n=8&size=256``). A
reference has one canonical spelling so that equal components compare and hash equal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote

from restorebench.core.errors import UserError


@dataclass(frozen=True)
class Ref:
    """A component name plus its (unvalidated) keyword parameters."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | Mapping[str, Any], *, what: str = "reference") -> Ref:
        """Parse ``name?k=v&k2=v2`` or a mapping ``{name: ..., k: v}`` (YAML form)."""
        if isinstance(text, Mapping):
            data = dict(text)
            if "name" not in data:
                raise UserError(f"{what} {data!r} has no 'name' key", hint="write {name: NAME, param: value, ...}")
            name = data.pop("name")
            return cls(str(name), data)
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"{what} must be a non-empty string, got {text!r}")
        name, _, query = text.strip().partition("?")
        params: dict[str, Any] = {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
            if not key:
                raise UserError(f"{what} {text!r} has a parameter without a name", hint="use name?key=value&key=value")
            if key in params:
                raise UserError(f"{what} {text!r} gives parameter {key!r} twice")
            params[key] = value
        if query and not params:
            raise UserError(f"cannot parse the parameters of {what} {text!r}", hint="use name?key=value&key=value")
        return cls(name, params)


def format_value(value: Any) -> str:
    """Spell a parameter value the way references and tables show it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    return str(value)


def canonical(name: str, params: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> str:
    """``name?k=v`` with keys sorted and parameters equal to their defaults left out."""
    defaults = defaults or {}
    shown = {k: v for k, v in params.items() if k not in defaults or defaults[k] != v}
    if not shown:
        return name
    query = "&".join(f"{k}={quote(format_value(v), safe='/:.,-_')}" for k, v in sorted(shown.items()))
    return f"{name}?{query}"


def stable_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace, for hashing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def slug(text: str) -> str:
    """A file-name-safe spelling of a reference (``gaussian?sigma=25`` -> ``gaussian_sigma-25``):
    one path component, never ``.``, ``..`` or hidden.

    >>> slug("../escaped/pwn")
    'escaped_pwn'
    """
    text = text.replace("?", "_").replace("=", "-").replace("&", "_")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_").lstrip("._") or "x"
