"""One small error hierarchy. Every error says what is wrong, where, and how to fix it.

They become ``invoke.Exit(message, code)`` only at the task boundary (see ``dome_tasks.cli``).
"""

from __future__ import annotations

import difflib
import signal
from collections.abc import Iterable
from typing import Any


class DomeError(Exception):
    """Base class: a user-facing error with an optional location and remedy."""

    exit_code = 2
    #: The ledger records written for the failed step's plan before this error propagated
    #: (``Session.execute`` sets them: what the record now says, e.g. a version that went live).
    recorded: tuple[Any, ...] = ()

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


class JustError(DomeError):
    """A problem running or reading just."""


class JustNotFound(JustError, ToolMissingError):
    """just is not installed."""


class JustfileError(JustError):
    """just rejected a justfile."""


class CommandFailed(DomeError):
    """An external command (wrangler, just, a build) exited non-zero."""

    exit_code = 1

    def __init__(self, message: str, *, returncode: int = 1, **kwargs: str | None):
        super().__init__(message, **kwargs)
        self.returncode = returncode


class Interrupted(DomeError):
    """SIGINT or SIGTERM stopped the run; the external command running then was stopped with it.

    ``signum`` is the signal; the task exits ``128 + signum`` (130 for Ctrl-C, 143 for SIGTERM).
    ``command`` is what was running (None when the signal came between commands).
    """

    def __init__(self, signum: int, *, command: str | None = None):
        name = _signal_name(signum)
        what = f" while running `{command}`" if command else ""
        super().__init__(
            f"interrupted by {name}{what}: stopped it and started nothing further",
            hint="what finished before the interrupt stays done; check `invoke status` and run "
            "the task again",
        )
        self.signum = signum
        self.command = command
        self.exit_code = 128 + signum


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class Refused(DomeError):
    """The tool refuses to act (e.g. production without confirmation)."""

    exit_code = 1


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """Return ``"did you mean 'x'?"`` for the closest candidate, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
