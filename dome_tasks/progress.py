"""Watching multi-service work: each service's state while it runs, and a summary at the end.

A :class:`Board` follows the services of one run. On a terminal it shows a live table (one row
per service: waiting, building, uploading, verifying … with the time it has taken; ``rich``,
imported only then) and prints each service's finished block of output above it. Elsewhere (CI,
pipes) it prints plain lines. At the end, :meth:`Board.summary` prints what is now live: service,
environment, result (deployed, skipped, failed, not run …), version, URL, health and duration, as
a table, as text, or as JSON (``--json``). ``NO_COLOR`` turns colour off.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from dome_tasks.plan.steps import Step

__all__ = ["STATES", "Board", "Outcome"]

#: What a running service is doing, by the event of the step it runs.
STATES = {
    "build": "building",
    "render": "rendering",
    "deploy": "uploading",
    "upload": "uploading",
    "migrate": "migrating",
    "verify": "verifying",
    "status": "reading",
    "rollback": "rolling back",
    "record": "recording",
}
#: The results that count as a failure (the summary, a preview's comment).
FAILED_RESULTS = ("failed", "interrupted", "unhealthy", "rolled back")
_STYLE = {"deployed": "green", "skipped": "cyan", "migrated": "green", "failed": "red",
          "interrupted": "red",
          "unhealthy": "red", "rolled back": "yellow", "not run": "dim"}


@dataclass
class Outcome:
    """How one service ended: one row of the summary."""

    service: str
    environment: str
    result: str  # deployed | skipped | migrated | failed | interrupted | unhealthy | rolled back
    #              | not run
    worker: str | None = None
    version: str | None = None
    url: str | None = None
    health: str | None = None  # healthy | unhealthy | None: not checked
    duration_ms: int | None = None
    note: str | None = None  # why it was skipped, what failed
    urls: list[str] = field(default_factory=list)  # every URL it serves at (``url``: the first)

    def __post_init__(self) -> None:
        if self.url and not self.urls:
            self.urls = [self.url]

    @property
    def failed(self) -> bool:
        return self.result in FAILED_RESULTS

    def row(self) -> list[str]:
        seconds = "" if self.duration_ms is None else f"{self.duration_ms / 1000:.1f}s"
        version = (self.version or "")[:8]
        return [self.service, self.environment, self.result, version, self.url or "",
                self.health or "-", seconds]


_COLUMNS = ["service", "environment", "result", "version", "url", "health", "duration"]


@dataclass
class _Row:
    state: str = "waiting"
    started: float | None = None
    ended: float | None = None


@dataclass
class Board:
    """The state of each service of one run (see the module docstring).

    ``live``: show the live table (only on a terminal, for more than one service); ``fmt``:
    ``text`` or ``json`` for the summary. Thread-safe: lanes of a wave report concurrently.
    """

    out: TextIO = field(default_factory=lambda: sys.stdout)
    services: Sequence[str] = ()
    environment: str = ""
    live: bool = False
    fmt: str = "text"
    title: str = "deploy"
    #: A dry run's steps as ``--json`` lists them (None: not kept).
    planned: list[dict[str, Any]] | None = None
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    _rows: dict[str, _Row] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _live: Any = None
    _console: Any = None
    _started: float = field(default_factory=time.monotonic)

    @classmethod
    def open(
        cls,
        services: Sequence[str],
        environment: str,
        *,
        out: TextIO | None = None,
        fmt: str = "text",
        title: str = "deploy",
    ) -> Board:
        """A board for *services*; live only on a terminal (and not with ``TERM=dumb``)."""
        stream = out or sys.stdout
        live = len(services) > 1 and _is_terminal(stream)
        return cls(stream, tuple(services), environment, live=live, fmt=fmt, title=title)

    # --- while it runs ----------------------------------------------------------------------

    def __enter__(self) -> Board:  # noqa: PYI034 - a dataclass nobody subclasses
        for name in self.services:
            self._rows.setdefault(name, _Row())
        if self.live:
            from rich.console import Console
            from rich.live import Live

            self._console = Console(file=self.out, highlight=False)
            self._live = Live(
                get_renderable=self._table, console=self._console, refresh_per_second=8,
                transient=True, redirect_stdout=False, redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def step(self, step: Step) -> None:
        """A service's step starts: show what it is doing (a dry run keeps it)."""
        if self.planned is not None:
            with self._lock:
                self.planned.append(step_json(step))
        if step.service is not None:
            self.state(step.service, STATES.get(step.event, step.event))

    def state(self, service: str, state: str) -> None:
        with self._lock:
            row = self._rows.setdefault(service, _Row())
            row.state = state
            if row.started is None:
                row.started = time.monotonic()

    def done(self, outcome: Outcome) -> None:
        """A service ended (``duration_ms`` is filled in from the board's clock when missing)."""
        with self._lock:
            row = self._rows.setdefault(outcome.service, _Row())
            row.state, row.ended = outcome.result, time.monotonic()
            if outcome.duration_ms is None and row.started is not None:
                outcome.duration_ms = int((row.ended - row.started) * 1000)
            self.outcomes[outcome.service] = outcome

    def not_run(self, services: Iterable[str], why: str) -> None:
        for service in services:
            if service not in self.outcomes:
                self.done(Outcome(service, self.environment, "not run", note=why))

    def block(self, service: str, text: str) -> None:
        """Print a finished service's output in one piece (above the live table)."""
        if not text:
            return
        outcome = self.outcomes.get(service)
        head = f"── {service}" + (f": {outcome.result}" if outcome else "") + " ──"
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(head, style="bold"), soft_wrap=True)
            self._console.print(Text.from_ansi(text.rstrip("\n")), soft_wrap=True)
        else:
            self.out.write(f"{head}\n{text if text.endswith(chr(10)) else text + chr(10)}")
            self.out.flush()

    def say(self, line: str) -> None:
        """A line of the run's own (a wave starting), above the live table."""
        if self._console is not None:
            from rich.text import Text

            self._console.print(Text(line), soft_wrap=True)
        else:
            print(line, file=self.out, flush=True)

    # --- at the end -------------------------------------------------------------------------

    def ordered(self) -> list[Outcome]:
        known = [self.outcomes[s] for s in self.services if s in self.outcomes]
        return known + [o for s, o in self.outcomes.items() if s not in self.services]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.ordered():
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return counts

    def headline(self) -> str:
        seconds = time.monotonic() - self._started
        counts = ", ".join(f"{n} {result}" for result, n in self.counts().items())
        where = f" to {self.environment}" if self.environment else ""
        return f"{self.title}{where}: {counts or 'nothing to do'} ({seconds:.1f}s)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "environment": self.environment,
            "ok": not any(o.failed for o in self.outcomes.values()),
            "counts": self.counts(),
            "duration_ms": int((time.monotonic() - self._started) * 1000),
            "services": [{k: v for k, v in asdict(o).items()} for o in self.ordered()],
        }

    def summary(self, stream: TextIO | None = None) -> None:
        """Print the summary: JSON with ``fmt="json"``, a table on a terminal, else text."""
        out = stream or self.out
        if self.fmt == "json":
            print(json.dumps(self.to_dict(), indent=2), file=out, flush=True)
            return
        outcomes = self.ordered()
        if not outcomes:
            return
        if _is_terminal(out):
            width = shutil.get_terminal_size().columns
            table = plain_table(self.headline(), outcomes)
            if max(len(line) for line in table.splitlines()) > width:
                print(list_form(self.headline(), outcomes), file=out, flush=True)
                return
            from rich.console import Console
            from rich.table import Table

            rich_table = Table(title=self.headline(), title_justify="left", show_edge=False,
                               box=None, padding=(0, 1))
            for column in _COLUMNS:  # it fits: no cell wraps (a URL is never broken)
                rich_table.add_column(column, no_wrap=True)
            for outcome in outcomes:
                style = _STYLE.get(outcome.result, "")
                cells = outcome.row()
                cells[2] = f"[{style}]{cells[2]}[/]" if style else cells[2]
                rich_table.add_row(*cells)
            Console(file=out, highlight=False, width=width).print(rich_table)
            for outcome in outcomes:
                if outcome.note:
                    print(f"  {outcome.service}: {outcome.note}", file=out)
            return
        print(plain_table(self.headline(), outcomes), file=out, flush=True)

    # --- the live table ---------------------------------------------------------------------

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(show_header=False, show_edge=False, box=None, padding=(0, 2))
        now = time.monotonic()
        with self._lock:
            rows = [(name, self._rows[name]) for name in self._rows]
        for name, row in rows:
            if row.started is None:
                elapsed = ""
            else:
                elapsed = f"{((row.ended or now) - row.started):.1f}s"
            style = _STYLE.get(row.state, "yellow" if row.started else "dim")
            table.add_row(name, f"[{style}]{row.state}[/]", elapsed)
        return table


def step_json(step: Step) -> dict[str, Any]:
    """One step as ``--json`` shows it: what the dry run prints, as data."""
    return {"event": step.event, "service": step.service, "environment": step.environment,
            "description": step.description, "display": step.display()}


def plain_table(headline: str, outcomes: Sequence[Outcome]) -> str:
    """The summary as aligned text columns (no colour), then one line per note."""
    rows = [_COLUMNS, *(o.row() for o in outcomes)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = [headline]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    lines += [f"  {o.service}: {o.note}" for o in outcomes if o.note]
    return "\n".join(lines)


def list_form(headline: str, outcomes: Sequence[Outcome]) -> str:
    """The summary for a narrow terminal: one line per service, each URL whole on its own line."""
    lines = [headline]
    for o in outcomes:
        cells = [c for c in o.row() if c not in ("", "-")]
        url = o.url or ""
        lines.append("  " + "  ".join(c for c in cells if c != url))
        lines += [f"    {u}" for u in (o.urls or ([url] if url else []))]
        if o.note:
            lines.append(f"    {o.note}")
    return "\n".join(lines)


def _is_terminal(stream: TextIO) -> bool:
    if os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
