"""``restorebench list``: what it cannot work out is said, not silently left as '?'."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, ConfigDict

from restorebench.commands.listings import _count
from restorebench.core.errors import UserError


class _NeedsAFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    checkpoint: str  # no default


class _Network:
    name = "denoise/needs_a_file"
    Params = _NeedsAFile

    def __init__(self, params):
        self.params = params

    def parameter_count(self):
        raise UserError(f"{self.params.checkpoint} is not a readable .safetensors file")


def test_a_size_that_cannot_be_counted_is_a_warning_naming_the_method(caplog):
    with caplog.at_level(logging.WARNING, logger="restorebench.commands.listings"):
        assert _count(_Network, {}) == "params=?"  # no default for checkpoint
        assert _count(_Network, {"checkpoint": "w.safetensors"}) == "params=?"
    first, second = caplog.messages
    assert first.startswith("the size of denoise/needs_a_file is unknown (params=?): 1 validation error")
    assert second == (
        "the size of denoise/needs_a_file {'checkpoint': 'w.safetensors'} is unknown (params=?): "
        "w.safetensors is not a readable .safetensors file"
    )


def test_a_bug_in_a_method_is_not_listed_as_an_unknown_size():
    class Buggy(_Network):
        def parameter_count(self):
            raise AttributeError("no such attribute")

    with pytest.raises(AttributeError):
        _count(Buggy, {"checkpoint": "w.safetensors"})
