"""Structured log events for the tool itself: one event per step, plus a per-run summary.

An event has a name (``deploy``, ``verify``, ``rollback`` …), the service and environment, how
long it took (``duration_ms``), its outcome and any extra fields. It is written as one line of
text or one JSON object per line (``--log-format json``). Every string goes through a
:class:`Redactor` first: a secret value registered with it never reaches a log line.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from dome_tasks.ledger import utc_now

__all__ = [
    "FORMATS",
    "MASK",
    "Event",
    "EventLog",
    "Redactor",
    "RunSummary",
    "Span",
]

FORMATS = ("text", "json")
MASK = "***"
# Fields whose values are secret whatever they hold.
_SECRET_FIELDS = frozenset({"secret_value", "password", "token", "api_token", "api_key", "stdin"})
# Environment variables whose values are credentials: registered by Redactor.from_environ().
CREDENTIAL_VARIABLES = ("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY", "CF_API_TOKEN", "CF_API_KEY")


class Redactor:
    """Replaces every registered secret value with ``***`` in text and nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        env = os.environ if environ is None else environ
        return cls(env[name] for name in CREDENTIAL_VARIABLES if env.get(name))

    def add(self, secret: str | None) -> None:
        """Register a value (and its stripped form: wrangler strips one trailing newline)."""
        if not secret:
            return
        for value in {secret, secret.strip()}:
            if value:
                self._secrets.add(value)
        ordered = sorted(self._secrets, key=len, reverse=True)  # longest first: no partial leaks
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def text(self, value: str) -> str:
        if self._pattern is None or not value:
            return value
        return self._pattern.sub(MASK, value)

    __call__ = text

    def data(self, value: Any) -> Any:
        """Redact strings inside dicts, lists and tuples; mask fields named like secrets."""
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
        clean = self.redactor.data(dict(fields))
        item = Event(
            event=self.redactor.text(event),
            time=self.now(),
            service=service,
            environment=environment,
            duration_ms=duration_ms,
            outcome=outcome,
            fields=clean,
        )
        self.events.append(item)
        if not self.quiet:
            line = item.to_json() if self.fmt == "json" else item.to_text()
            stream = self.stream or sys.stderr
            print(self.redactor.text(line), file=stream, flush=True)
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
            span.outcome = span.outcome if span.outcome not in (None, "success") else "failure"
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
            if item.outcome in ("failure", "unhealthy"):
                failures += 1
            if item.duration_ms is not None:
                timing = timings.setdefault(item.event, {"count": 0, "total_ms": 0, "max_ms": 0})
                timing["count"] += 1
                timing["total_ms"] += item.duration_ms
                timing["max_ms"] = max(timing["max_ms"], item.duration_ms)
        total = int(round((self.clock() - self._started) * 1000))
        return RunSummary(dict(sorted(counters.items())), timings, total, failures)

    def emit_summary(self, **fields: Any) -> Event:
        """The closing ``run`` event: counters and timings of everything emitted so far."""
        summary = self.summary()
        return self.emit(
            "run",
            duration_ms=summary.total_ms,
            outcome="failure" if summary.failures else "success",
            **summary.to_fields(),
            **fields,
        )
