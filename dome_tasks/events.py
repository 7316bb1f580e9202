"""Structured log events for the tool itself: one event per step, plus a per-run summary.

An event has a name (``deploy``, ``verify``, ``rollback`` …), the service and environment, how
long it took (``duration_ms``), its outcome and any extra fields. It is written as one line of
text or one JSON object per line (``--log-format json``). Every string goes through a
:class:`Redactor` first: a secret value registered with it never reaches a log line.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from dome_tasks._time import utc_now
from dome_tasks.errors import Interrupted

__all__ = [
    "FORMATS",
    "MASK",
    "Event",
    "EventLog",
    "Redactor",
    "RunSummary",
    "Span",
    "unmaskable",
]

FORMATS = ("text", "json")
MASK = "***"
# Fields whose values are secret whatever they hold.
_SECRET_FIELDS = frozenset({"secret_value", "password", "token", "api_token", "api_key", "stdin"})
# Environment variables whose values are credentials: registered by Redactor.from_environ().
CREDENTIAL_VARIABLES = ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CF_API_TOKEN", "CF_API_KEY",
                        "GITHUB_TOKEN")
# Shorter values would mask pieces of unrelated words: explicit secrets (the value given to
# `secret put`) need 4 characters, credentials read from the environment 6. Values shorter than
# ANYWHERE_LENGTH are masked only as whole tokens (not inside a longer word).
MIN_SECRET_LENGTH = 4
MIN_CREDENTIAL_LENGTH = 6
ANYWHERE_LENGTH = 8
# Credentials that are words would mask ordinary text: a token set to one of these is ignored.
COMMON_WORDS = frozenset(
    {
        "admin", "changeme", "default", "development", "dummy", "example", "false", "local",
        "none", "null", "password", "production", "secret", "staging", "test", "testing",
        "token", "true", "undefined",
    }
)
_ANSI = re.compile(r"(\x1b\[[0-9;]*[A-Za-z])")
_WORD = "A-Za-z0-9_"


class Redactor:
    """Replaces registered secret values with ``***`` in text and in the values of nested data.

    Short values are masked only where they stand as a whole token; values too short to mask
    safely (or credentials that are common words) are not registered at all: masking them
    would mangle unrelated output. ANSI colour codes count as token boundaries.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._login: Path | None = None  # wrangler login's file, followed (see add_credentials)
        self._login_stamp: int | None = None
        for secret in secrets:
            self.add(secret)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        redactor = cls()
        redactor.add_credentials(os.environ if environ is None else environ)
        return redactor

    def add_credentials(self, environ: Mapping[str, str]) -> None:
        """Register the credentials found under ``environ``: the variables' values (API tokens,
        keys) and the token ``wrangler login`` stored. When no variable is set (so wrangler uses
        that login) the file is followed: a token renewed during the run is masked from then on."""
        from dome_tasks.cloudflare.credentials import login_file

        for name in CREDENTIAL_VARIABLES:
            self.add(environ.get(name), explicit=False)
        self._login = login_file(environ)
        self._follow_login()
        if any(environ.get(name) for name in CREDENTIAL_VARIABLES):
            self._login = None  # wrangler uses the variables: its login file will not change

    def _follow_login(self) -> None:
        from dome_tasks.cloudflare.credentials import read_login

        try:
            stamp = os.stat(self._login).st_mtime_ns  # type: ignore[arg-type]
        except OSError:
            return
        if stamp != self._login_stamp:
            self._login_stamp = stamp
            login = read_login(self._login)  # type: ignore[arg-type]
            if login is not None:
                self.add(login.token, explicit=False)

    def add(self, secret: str | None, *, explicit: bool = True,
            ordinary: Iterable[str] = ()) -> None:
        """Register a value (and its stripped form: wrangler strips one trailing newline; and
        each line of a multi-line value, since output is masked line by line).

        ``explicit``: the user gave it as a secret (masked from 4 characters); otherwise it is
        a credential read from the environment (from 6 characters). Never a common word nor
        one of the ``ordinary`` words (service, environment, worker names): masking those
        would hide ordinary output (:func:`unmaskable` says why, for a warning).
        """
        if not secret:
            return
        words = {w.lower() for w in ordinary}
        forms = {secret, secret.strip(), *(line.strip() for line in secret.splitlines())}
        self._secrets.update(v for v in forms
                             if _maskable(v, explicit) and v.lower() not in words)
        if not self._secrets:
            return
        ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial leaks
        self._pattern = re.compile("|".join(_expression(s) for s in ordered))

    def __bool__(self) -> bool:
        if self._login is not None:
            self._follow_login()
        return bool(self._secrets)

    def text(self, value: str) -> str:
        if self._login is not None and value:
            self._follow_login()
        if self._pattern is None or not value:
            return value
        if "\x1b" not in value:
            return self._pattern.sub(MASK, value)
        parts = _ANSI.split(value)  # odd items are colour codes
        return "".join(p if i % 2 else self._pattern.sub(MASK, p) for i, p in enumerate(parts))

    __call__ = text

    def data(self, value: Any) -> Any:
        """Redact the strings inside dicts, lists and tuples (never the keys); mask the values
        of fields named like secrets. Structure is kept, so JSON built from it stays valid."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                k: (MASK if str(k).lower() in _SECRET_FIELDS and v else self.data(v))
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def _maskable(value: str, explicit: bool) -> bool:
    shortest = MIN_SECRET_LENGTH if explicit else MIN_CREDENTIAL_LENGTH
    return len(value) >= shortest and value.lower() not in COMMON_WORDS


def unmaskable(value: str, ordinary: Iterable[str] = ()) -> str | None:
    """Why a secret's value (or a line of it) cannot be masked in output, else None."""
    for part in {value.strip(), *(line.strip() for line in value.splitlines())} - {""}:
        if len(part) < MIN_SECRET_LENGTH:
            return f"shorter than {MIN_SECRET_LENGTH} characters"
        if part.lower() in COMMON_WORDS or part.lower() in {w.lower() for w in ordinary}:
            return f"an ordinary word ({part!r})"
    return None


def _expression(secret: str) -> str:
    escaped = re.escape(secret)
    if len(secret) >= ANYWHERE_LENGTH:
        return escaped
    return rf"(?<![{_WORD}]){escaped}(?![{_WORD}])"


@dataclass(frozen=True)
class Event:
    event: str
    time: str
    service: str | None = None
    environment: str | None = None
    duration_ms: int | None = None
    outcome: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"time": self.time, "event": self.event}
        for key in ("service", "environment", "duration_ms", "outcome"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        data.update({k: v for k, v in self.fields.items() if k not in data})
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str, separators=(",", ":"))

    def to_text(self) -> str:
        where = self.service or ""
        if self.environment:
            where = f"{where}@{self.environment}" if where else f"@{self.environment}"
        parts = [f"[dome] {self.event}"]
        if where:
            parts.append(where)
        if self.outcome:
            parts.append(self.outcome)
        if self.duration_ms is not None:
            parts.append(f"({self.duration_ms / 1000:.2f}s)")
        extras = " ".join(f"{k}={_text_value(v)}" for k, v in self.fields.items())
        return " ".join(parts) + (f"  {extras}" if extras else "")


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value)
    return json.dumps(value, default=str, separators=(",", ":"))


@dataclass
class Span:
    """What a timed block reports: set ``outcome`` and add ``fields`` before it ends."""

    event: str
    service: str | None
    environment: str | None
    fields: dict[str, Any]
    outcome: str | None = None


@dataclass(frozen=True)
class RunSummary:
    """Counters (``event.outcome`` → n) and timings (event → count/total/max ms) for one run."""

    counters: Mapping[str, int]
    timings: Mapping[str, Mapping[str, int]]
    total_ms: int
    failures: int

    def to_fields(self) -> dict[str, Any]:
        return {
            "counters": dict(self.counters),
            "timings": {k: dict(v) for k, v in self.timings.items()},
            "failures": self.failures,
        }


def _is_interrupt(error: BaseException) -> bool:
    return isinstance(error, (Interrupted, KeyboardInterrupt))


class EventLog:
    """Writes events to ``stream`` (stderr by default) and keeps them for the run summary."""

    def __init__(
        self,
        stream: TextIO | None = None,
        fmt: str = "text",
        *,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], str] = utc_now,
        quiet: bool = False,
    ) -> None:
        if fmt not in FORMATS:
            from dome_tasks.errors import UsageError

            raise UsageError(f"unknown log format {fmt!r}", hint="use --log-format text or json")
        self.stream = stream
        self.fmt = fmt
        self.redactor = redactor if redactor is not None else Redactor.from_environ()
        self.clock = clock
        self.now = now
        self.quiet = quiet
        self.events: list[Event] = []
        self._started = clock()

    def routed(self, stream: TextIO | None) -> EventLog:
        """This log with its text lines going to *stream* (JSON lines stay where they go); the
        events are shared, so the run summary still counts them all."""
        if self.fmt != "text":
            return self
        twin = copy.copy(self)
        twin.stream = stream
        return twin

    def emit(
        self,
        event: str,
        *,
        service: str | None = None,
        environment: str | None = None,
        duration_ms: int | None = None,
        outcome: str | None = None,
        **fields: Any,
    ) -> Event:
        """Record and write one event (all strings redacted)."""
        redact = self.redactor.text
        item = Event(
            event=redact(event),
            time=self.now(),
            service=redact(service) if service else service,
            environment=redact(environment) if environment else environment,
            duration_ms=duration_ms,
            outcome=outcome,
            fields=self.redactor.data(dict(fields)),
        )
        self.events.append(item)
        if not self.quiet:
            # Values are redacted above; the serialized line is not (a short secret must
            # never rewrite a JSON key or structure).
            line = item.to_json() if self.fmt == "json" else item.to_text()
            stream = self.stream or sys.stderr
            if isinstance(stream, EventLines):  # already an event: straight to the real stream
                stream = stream.target
            print(line, file=stream, flush=True)
        return item

    @contextmanager
    def span(
        self,
        event: str,
        *,
        service: str | None = None,
        environment: str | None = None,
        **fields: Any,
    ) -> Iterator[Span]:
        """Time a block; emits on exit with ``outcome`` (``failure`` if the block raised)."""
        span = Span(event, service, environment, dict(fields))
        started = self.clock()
        try:
            yield span
        except BaseException as error:
            if span.outcome in (None, "success"):
                span.outcome = "interrupted" if _is_interrupt(error) else "failure"
            span.fields.setdefault("error", str(error).splitlines()[0] if str(error) else type(error).__name__)
            raise
        finally:
            self.emit(
                event,
                service=service,
                environment=environment,
                duration_ms=int(round((self.clock() - started) * 1000)),
                outcome=span.outcome or "success",
                **span.fields,
            )

    def summary(self) -> RunSummary:
        counters: Counter[str] = Counter()
        timings: dict[str, dict[str, int]] = {}
        failures = 0
        for item in self.events:
            if item.event == "run":
                continue
            counters[f"{item.event}.{item.outcome or 'info'}"] += 1
            if item.outcome in ("failure", "unhealthy", "interrupted"):
                failures += 1
            if item.duration_ms is not None:
                timing = timings.setdefault(item.event, {"count": 0, "total_ms": 0, "max_ms": 0})
                timing["count"] += 1
                timing["total_ms"] += item.duration_ms
                timing["max_ms"] = max(timing["max_ms"], item.duration_ms)
        total = int(round((self.clock() - self._started) * 1000))
        return RunSummary(dict(sorted(counters.items())), timings, total, failures)

    def emit_summary(self, **fields: Any) -> Event:
        """The closing ``run`` event: counters and timings of everything emitted so far. Written
        only as JSON (``--log-format json``); text output ends with the progress summary."""
        summary = self.summary()
        quiet, self.quiet = self.quiet, self.quiet or self.fmt == "text"
        try:
            return self._emit_summary(summary, fields)
        finally:
            self.quiet = quiet

    def _emit_summary(self, summary: RunSummary, fields: dict[str, Any]) -> Event:
        return self.emit(
            "run",
            duration_ms=summary.total_ms,
            outcome="failure" if summary.failures else "success",
            **summary.to_fields(),
            **fields,
        )


class EventLines(io.TextIOBase):
    """A text stream that writes each line given to it as one JSON event on *target*:
    ``{"time", "event": "output", "stream", "line"}`` (``--log-format json``: what commands and
    just print, and any other text, never breaks the one-event-per-line stream)."""

    def __init__(self, target: TextIO, stream: str = "stderr") -> None:
        super().__init__()
        self.target, self.stream, self._partial = target, stream, ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self.event("output", stream=self.stream, line=line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            left, self._partial = self._partial, ""
        if left:
            self.event("output", stream=self.stream, line=left)
        self.target.flush()

    def event(self, name: str, **fields: Any) -> None:
        """Write one event (blank lines are dropped)."""
        if fields.get("line", "x") == "":
            return
        record = {"time": utc_now(), "event": name, **fields}
        self.target.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
        self.target.flush()


@contextmanager
def stderr_as_events(enabled: bool) -> Iterator[EventLines | None]:
    """With *enabled*: every line written to ``sys.stderr`` inside the block is one event."""
    if not enabled:
        yield None
        return
    from contextlib import redirect_stderr

    lines = EventLines(sys.stderr)
    try:
        with redirect_stderr(lines):  # type: ignore[type-var]
            yield lines
    finally:
        lines.flush()
