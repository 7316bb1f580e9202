"""Plans are lists of steps: plain data that the dry run prints, the runner executes and logs read.

A :class:`Step` holds one action: run a :class:`Command` (an argv tuple, never a shell string),
write a file (:class:`WriteFile`), check a worker's health (:class:`Verify`), append a ledger
record (:class:`WriteRecord`), or call a named in-process function (:class:`Call`, for local
process management). A lifecycle operation decides a :class:`Plan`: its steps, plus the steps
that record a failure when one of them fails.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dome_tasks.manifest.model import WorkerConfig


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
    """Write a rendered config; with ``service_dir``, link that folder's ``.dev.vars`` and
    ``.env`` files beside it when it is written (:mod:`dome_tasks.render.companions`)."""

    path: Path
    text: str = field(repr=False)
    service_dir: Path | None = None


@dataclass(frozen=True)
class Call:
    """An in-process action. ``func(**kwargs)`` runs it; ``name`` is what logs and dry runs show."""

    name: str
    func: Callable[..., Any] = field(compare=False, repr=False)
    kwargs: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Verify:
    """Check a worker after a change: GET its health URL (200), then its smoke commands.

    ``subdomain`` is the configured workers.dev subdomain; ``learned_subdomain`` the one an earlier
    deploy reported (used after the targets this run's deploy reports). ``required=False``: no
    health URL means "skipped, with a note" instead of an error.
    """

    config: WorkerConfig
    url: str | None = None  # the public health URL, when known before the run
    subdomain: str | None = None
    learned_subdomain: str | None = None
    smoke: bool = True
    required: bool = False

    def display(self) -> str:
        smoke = " (then the smoke commands)" if self.smoke and self.config.smoke else ""
        return f"GET {self.url or 'the health URL wrangler reports'} must answer 200{smoke}"


@dataclass(frozen=True)
class WriteRecord:
    """Append one ledger record of ``kind``. ``outcome=None``: success, or unhealthy when the
    plan's verification failed. ``fields`` may hold placeholders (``<new-version>`` …) that the
    act phase fills from what earlier steps learned; version, verification, duration, commit and
    actor are filled there too. ``unchecked``: why the plan has no health check before this
    record (``health_path: null``, ``--no-verify``), so that a dry run says so."""

    kind: str
    outcome: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    unchecked: str | None = None

    def display(self) -> str:
        if self.outcome:
            outcome = f" {self.outcome}"
        elif self.unchecked:  # never a health result the run cannot know
            outcome = ", no health check"
        else:
            outcome = ", success or unhealthy as the health check finds"
        fields = dict(self.fields)
        extra = {k: v for k, v in (fields.pop("extra", None) or {}).items() if k not in _WHERE}
        fields["extra"] = extra or None
        shown = [f"{k}={v}" for k, v in fields.items() if v is not None and k != "worker"]
        if self.unchecked and not self.outcome:
            shown.insert(0, self.unchecked)
        return f"ledger: {self.kind}{outcome}" + (f" ({', '.join(shown)})" if shown else "")


#: Where a deploy serves (filled in when the record is written): not shown in dry runs.
_WHERE = ("urls", "workers_dev")

Action = Command | WriteFile | Call | Verify | WriteRecord


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
        if isinstance(action, (Verify, WriteRecord)):
            return action.display()
        return f"{action.name}"


@dataclass(frozen=True)
class Plan:
    """What an operation decided: ``steps`` in order; ``on_failure`` runs (recording the failure)
    when one of them fails, before the failure propagates. ``on_unactivated`` runs when a
    ``wrangler deploy`` uploaded its version but failed to activate it (the version to give the
    traffic to, never a second upload); the plan then goes on."""

    steps: tuple[Step, ...]
    on_failure: tuple[Step, ...] = ()
    on_unactivated: tuple[Step, ...] = ()
