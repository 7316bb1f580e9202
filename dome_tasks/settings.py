"""The ``dome:`` block of invoke's configuration, read once per task into a typed :class:`Settings`.

Every key is declared by :func:`declared` (the collection passes it to ``ns.configure``), so each
is reachable from invoke.yaml and from ``INVOKE_DOME_<KEY>``. Precedence: the task's flag, then
invoke's configuration (invoke.yaml, ``INVOKE_DOME_*``), then the deprecated ``DOME_<KEY>``
environment variable (read with a note), then the default. An invalid value is one
:class:`~dome_tasks.errors.UsageError` naming the key, where it came from and the valid values.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks.errors import UsageError

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest.loader import Manifest

__all__ = ["LOG_FORMATS", "Settings", "declared", "load_manifest"]

LOG_FORMATS = ("text", "json")
DEFAULT_VERIFY_DEADLINE = 30.0
DEFAULT_COMMAND_TIMEOUT = 600.0  # seconds one wrangler run may take
#: Keys of the ``dome:`` block with the value ``ns.configure`` declares. ``None`` and ``""`` mean
#: "not set": invoke then hands ``INVOKE_DOME_*`` values over as text, which we validate here
#: (a typed default would make invoke cast them itself and crash with a traceback).
DECLARED: Mapping[str, Any] = {
    "manifest": "dome.yaml",
    "log_format": "",
    "ledger": "",
    "yes": None,
    "verify_deadline": None,
    "workers_subdomain": "",
    "health_base_url": "",
    "justfile": "",  # set by namespace(): the justfile the bridge reads (doctor checks it)
    "prefix": "dome",  # set by namespace(): where dome's tasks live beside a user's recipes
    "history": None,  # share the deploy history through Cloudflare KV (default on)
    "no_wait": None,  # refuse instead of queueing behind another deploy/migration
    "lock_timeout": None,  # seconds to queue behind another deploy/migration (default: no limit)
    "command_timeout": None,  # seconds one wrangler run may take (default 600)
}
#: Keys whose old ``DOME_<KEY>`` variable is still read, with a deprecation note.
LEGACY = ("log_format", "verify_deadline", "workers_subdomain", "health_base_url")
#: The task flag that sets each key (named in error messages).
FLAGS = {
    "log_format": "--log-format",
    "yes": "--yes",
    "verify_deadline": "--deadline",
    "workers_subdomain": "--subdomain",
    "health_base_url": "--base-url",
    "no_wait": "--no-wait",
}
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")


def declared(
    manifest: str | Path = "dome.yaml", justfile: str | Path | None = None, prefix: str = "dome"
) -> dict[str, Any]:
    """The ``dome`` block for ``ns.configure``: every key, with the namespace's own paths."""
    return {**DECLARED, "manifest": str(manifest), "justfile": str(justfile or ""), "prefix": prefix}


@dataclass(frozen=True)
class Settings:
    """The ``dome:`` settings of one task run, validated (see the module docstring)."""

    manifest: Path
    log_format: str = "text"  # text | json
    ledger: Path | None = None  # default: <manifest root>/.dome/ledger.jsonl
    assume_yes: bool = False  # dome.yes: confirm protected environments without asking
    verify_deadline: float = DEFAULT_VERIFY_DEADLINE  # seconds the health check may retry
    workers_subdomain: str | None = None  # <sub>.workers.dev of the account
    health_base_url: str | None = None  # send health checks here, keeping the real Host
    justfile: Path | None = None  # the justfile beside the manifest, when there is one
    prefix: str = "dome"  # dome's tasks are also reachable as <prefix>.<task>
    shared_history: bool = True  # dome.history: the history lives in Cloudflare KV too
    no_wait: bool = False  # dome.no_wait: refuse at once when a deploy/migration lock is held
    lock_timeout: float | None = None  # dome.lock_timeout: None waits as long as it takes
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT  # dome.command_timeout (seconds)

    @classmethod
    def read(
        cls,
        c: Context,
        *,
        log_format: str | None = None,
        yes: bool = False,
        verify_deadline: float | str | None = None,
        workers_subdomain: str | None = None,
        health_base_url: str | None = None,
        no_wait: bool = False,
        environ: Mapping[str, str] | None = None,
        notes: TextIO | None = None,
    ) -> Settings:
        """Read the settings once: flags (empty = not given) beat configuration beats default."""
        source = _Source(c, os.environ if environ is None else environ, notes or sys.stderr)
        flags = {
            "log_format": log_format,
            "verify_deadline": verify_deadline,
            "workers_subdomain": workers_subdomain,
            "health_base_url": health_base_url,
            "no_wait": True if no_wait else None,
        }
        value = {key: source.value(key, flags.get(key)) for key in DECLARED}
        ledger = value["ledger"][1]
        return cls(
            manifest=Path(_text(value["manifest"]) or DECLARED["manifest"]),
            log_format=_log_format(value["log_format"]),
            ledger=Path(str(ledger)) if ledger else None,
            assume_yes=bool(yes) or _boolean(value["yes"]),
            verify_deadline=_seconds(value["verify_deadline"]),
            workers_subdomain=_subdomain(value["workers_subdomain"]),
            health_base_url=_base_url(value["health_base_url"]),
            justfile=Path(str(value["justfile"][1])) if value["justfile"][1] else None,
            prefix=_text(value["prefix"]) or "dome",
            shared_history=_boolean(value["history"], default=True),
            no_wait=_boolean(value["no_wait"]),
            lock_timeout=_seconds(value["lock_timeout"], default=None),
            command_timeout=_seconds(value["command_timeout"], default=DEFAULT_COMMAND_TIMEOUT),
        )

    @classmethod
    def from_context(cls, c: Context) -> Settings:
        """The settings without task flags (for tasks that take none)."""
        return cls.read(c)

    def ledger_path(self, root: Path) -> Path:
        """Where the ledger lives: ``dome.ledger``, else ``<root>/.dome/ledger.jsonl``."""
        return self.ledger or Path(root) / ".dome" / "ledger.jsonl"


Given = tuple[str, Any]  # (where the value came from, the value)


class _Source:
    """Where a task run's settings come from: its flags, invoke's config, the environment."""

    def __init__(self, c: Context, environ: Mapping[str, str], notes: TextIO) -> None:
        self.c = c
        self.environ = environ
        self.notes = notes

    def value(self, key: str, flag: Any) -> Given:
        """The flag, else the configured value, else the legacy variable; ``(where, value)``."""
        if flag not in (None, ""):
            return FLAGS.get(key, f"--{key.replace('_', '-')}"), flag
        dome = self.c.config.get("dome", {}) or {}
        configured = dome.get(key)
        if configured not in (None, ""):
            return self._where(key, configured), configured
        legacy = f"DOME_{key.upper()}"
        if key in LEGACY and self.environ.get(legacy):
            print(
                f"note: {legacy} is deprecated; set INVOKE_DOME_{key.upper()} "
                f"(or dome.{key} in invoke.yaml) instead",
                file=self.notes,
            )
            return legacy, self.environ[legacy]
        return f"dome.{key}", DECLARED[key]

    def _where(self, key: str, value: Any) -> str:
        variable = f"INVOKE_DOME_{key.upper()}"
        if self.environ.get(variable) == str(value):
            return variable
        return f"dome.{key} (invoke configuration)"


def _text(given: Given) -> str:
    return "" if given[1] is None else str(given[1])


def _invalid(given: Given, what: str, valid: str) -> UsageError:
    where, value = given
    return UsageError(f"{where}={value!r} is not {what}", hint=f"valid values: {valid}")


def _log_format(given: Given) -> str:
    text = _text(given).strip().lower() or "text"
    if text not in LOG_FORMATS:
        raise _invalid(given, "a log format", " or ".join(LOG_FORMATS))
    return text


def _boolean(given: Given, *, default: bool = False) -> bool:
    value = given[1]
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise _invalid(given, "a yes/no value", "1, true, yes, on or 0, false, no, off")


def _seconds(given: Given, *, default: float | None = DEFAULT_VERIFY_DEADLINE) -> float | None:
    value = given[1]
    if value in (None, ""):
        return default
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise _invalid(given, "a number of seconds", "a positive number, e.g. 30 or 1.5")
    return seconds


def _subdomain(given: Given) -> str | None:
    text = _text(given).strip().lower().removesuffix(".workers.dev")
    if not text:
        return None
    if not all(part and part.replace("-", "").isalnum() for part in text.split(".")):
        raise _invalid(
            given,
            "a workers.dev subdomain",
            "your account's subdomain, e.g. my-team (for my-team.workers.dev)",
        )
    return text


def _base_url(given: Given) -> str | None:
    from dome_tasks.manifest.urls import url_problem

    text = _text(given).strip()
    if not text:
        return None
    problem = url_problem(text)
    if problem:
        raise UsageError(f"{given[0]}: {problem}", hint="e.g. http://127.0.0.1:8788")
    return text.rstrip("/")


def load_manifest(settings: Settings | Context) -> Manifest:
    """Load and validate the manifest named by the settings (imports lazily: keeps --list fast)."""
    from dome_tasks.manifest.editor_schema import refresh
    from dome_tasks.manifest.loader import load

    if not isinstance(settings, Settings):
        settings = Settings.read(settings)
    manifest = load(settings.manifest)
    refresh(manifest.root)  # the copy editors read follows an upgrade of dome-tasks
    return manifest
