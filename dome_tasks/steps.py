"""Plans are lists of steps: plain data that the dry run prints, the runner executes and logs read.

A :class:`Step` holds one action: run a :class:`Command` (an argv tuple, never a shell string),
write a file (:class:`WriteFile`), or call a named in-process function (:class:`Call`, for health
checks, local process management and ledger records).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union


@dataclass(frozen=True)
class Command:
    """An external command. ``stdin`` is fed to the process and is never printed or logged."""

    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    stdin: str | None = field(default=None, repr=False)
    retry_safe: bool = False  # repeating it after a failure cannot do harm
    wrangler: bool = False  # run with the hermetic wrangler environment and an output file

    def display(self) -> str:
        """The command line as a user could paste it (quoted once, here)."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class WriteFile:
    path: Path
    text: str = field(repr=False)


@dataclass(frozen=True)
class Call:
    """An in-process action. ``func(**kwargs)`` runs it; ``name`` is what logs and dry runs show."""

    name: str
    func: Callable[..., Any] = field(compare=False, repr=False)
    kwargs: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


Action = Union[Command, WriteFile, Call]


@dataclass(frozen=True)
class Step:
    """One unit of work in a plan, tagged for logs, the ledger and dry runs."""

    event: str  # build | render | deploy | migrate | verify | start | stop | record | …
    description: str
    action: Action
    service: str | None = None
    environment: str | None = None

    def display(self) -> str:
        """One line for ``plan`` and dry runs."""
        action = self.action
        if isinstance(action, Command):
            where = f"  (in {action.cwd})" if action.cwd else ""
            return f"$ {action.display()}{where}"
        if isinstance(action, WriteFile):
            return f"write {action.path}"
        return f"{action.name}"
