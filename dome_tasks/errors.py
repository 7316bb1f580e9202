"""One small error hierarchy. Every error says what is wrong, where, and how to fix it.

They become ``invoke.Exit(message, code)`` only at the task boundary (see ``dome_tasks.cli``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DomeError(Exception):
    """Base class: a user-facing error with an optional location and remedy."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ManifestError(DomeError):
    """The manifest is malformed or inconsistent."""


class UsageError(DomeError):
    """A command-line argument is wrong (unknown service, environment, …)."""


class RenderError(DomeError):
    """A template failed, or rendered text is not valid TOML."""


class ToolMissingError(DomeError):
    """wrangler, just or node is not installed where we look."""


class CommandFailed(DomeError):
    """An external command (wrangler, just, a build) exited non-zero."""

    exit_code = 1

    def __init__(self, message: str, *, returncode: int = 1, **kwargs: str | None):
        super().__init__(message, **kwargs)
        self.returncode = returncode


class Refused(DomeError):
    """The tool refuses to act (e.g. production without confirmation)."""

    exit_code = 1


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest candidate, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
