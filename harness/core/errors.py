"""The one user-facing error type; the CLI formats it and exits with its code."""

from __future__ import annotations

from collections.abc import Iterable


class UserError(Exception):
    """Something the user can fix: a bad name, parameter, file or option.

    The message says what was wrong and what to do; the CLI prints it without a
    traceback and exits with ``exit_code`` (2: bad usage or an invalid suite).
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base


def choices(names: Iterable[str]) -> str:
    """Format valid choices for an error message."""
    names = sorted(names)
    return ", ".join(names) if names else "(none registered)"


class Interrupted(UserError):
    """The user stopped a run (Ctrl-C); what was finished is stored."""

    exit_code = 130


class SkipUnit(Exception):
    """A unit with nothing to score (e.g. a gray image for colorization): recorded as
    ``skipped`` with this message, neither a result nor a failure."""


class ImageLoadError(Exception):
    """One image cannot be read or decoded; the worker fails that unit and the run goes on."""
