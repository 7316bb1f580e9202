"""One deploy at a time across every machine: a lock row in the account's ``dome-state`` D1.

The machine lock (:mod:`dome_tasks.lifecycle.lock`) serializes the runs of one machine; this
one serializes a laptop and CI, or two CI runners. A scope (``staging/silo-staging``, or
``staging/migrations``) has at most one row in ``dome_locks``: who holds it (host, user, pid,
command, the CI run's URL), since when, and until when (``expires``, by D1's own clock, so no
machine's clock matters).

* **Acquire** is one statement, atomic in D1: insert the row when the scope is free; or replace
  the row of a holder known to be gone, compare-and-set on its token (its lock expired, or it
  ran on this host and its process is no longer running). Nothing else can take it.
* **Held**: a thread renews the expiry every ``renew_every`` seconds (default ``ttl`` / 4), so a
  long deploy keeps its lock and a killed one loses it ``ttl`` seconds (2 minutes) later.
* **Released** at the end of the ``with`` block, however it ends (an error, Ctrl-C, SIGTERM):
  the row is deleted when it is still ours, in the same request (one D1 batch, one transaction)
  that writes the history records of the scope made while it was held, so that the next holder
  lists them and a deploy ends with one round trip after wrangler.
* **Busy**: the second run waits (polling), printing once who it waits for; with
  ``wait=False`` it refuses at once with :class:`~dome_tasks.lifecycle.lock.LockBusy` naming
  the holder.
* **Unreachable** (no answer, no D1 permission): the run goes on under the machine lock alone
  and says so; the lock never blocks a deploy because the API is down.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, TextIO

from dome_tasks.cloudflare.api import ApiFailure
from dome_tasks.lifecycle.account_store import NOW, AccountStore
from dome_tasks.lifecycle.lock import LockBusy, command_line, process_started
from dome_tasks.process import interruptible

__all__ = ["AccountLocks", "LockHolder", "ci_run_url"]

TTL = 120.0  # seconds a lock lives without being renewed

_ACQUIRE = f"""
INSERT INTO dome_locks (scope, token, holder, since, expires)
VALUES (?1, ?2, ?3, {NOW}, {NOW} + CAST(?4 AS REAL))
ON CONFLICT (scope) DO UPDATE SET token = excluded.token, holder = excluded.holder,
  since = excluded.since, expires = excluded.expires
WHERE dome_locks.token = ?5 AND (dome_locks.expires <= {NOW} OR ?6 = 'gone')
RETURNING token
"""
_HOLDER = f"SELECT token, holder, since, expires, {NOW} AS now FROM dome_locks WHERE scope = ?1"
_RENEW = (f"UPDATE dome_locks SET expires = {NOW} + CAST(?3 AS REAL) "
          "WHERE scope = ?1 AND token = ?2 RETURNING expires")
_RELEASE = "DELETE FROM dome_locks WHERE scope = ?1 AND token = ?2"


def ci_run_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The page of the CI run this is (GitHub Actions), else None."""
    env = os.environ if environ is None else environ
    parts = [env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    return f"{parts[0].rstrip('/')}/{parts[1]}/actions/runs/{parts[2]}"  # type: ignore[union-attr]


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LockHolder:
    """Who holds an account lock (the JSON of its row's ``holder``), and the row's times."""

    host: str
    user: str
    pid: int
    command: str
    started: float | None = None  # the process's start time: tells a reused pid apart
    ci: str | None = None  # the CI run's URL
    since: float = 0.0  # D1's clock (seconds since the epoch)
    expires: float = 0.0

    @classmethod
    def me(cls, command: str | None = None) -> LockHolder:
        from dome_tasks.lifecycle.ledger import actor

        return cls(socket.gethostname(), actor(), os.getpid(),
                   command if command is not None else command_line(),
                   process_started(os.getpid()), ci_run_url())

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LockHolder:
        try:
            data = json.loads(row["holder"])
            return cls(str(data.get("host", "?")), str(data.get("user", "?")),
                       int(data.get("pid", 0)), str(data.get("command", "?")),
                       data.get("started"), data.get("ci"),
                       float(row["since"]), float(row["expires"]))
        except (ValueError, TypeError, KeyError):
            return cls("?", "?", 0, "?", since=float(row.get("since") or 0),
                       expires=float(row.get("expires") or 0))

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if k not in ("since", "expires")}
        return json.dumps(data, separators=(",", ":"))

    def gone(self) -> bool:
        """Its process ran on this host and no longer runs (a killed run: no need to wait for
        the expiry). A holder on another host is never judged here."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        started = process_started(self.pid)
        return started is None or (self.started is not None and abs(started - self.started) > 1.0)

    def describe(self) -> str:
        run = f"{self.ci}, " if self.ci else ""
        return (f"{self.user} on {self.host} ({run}pid {self.pid}, `{self.command}`) "
                f"since {_clock(self.since)}")


@dataclass
class _Held:
    token: str
    depth: int = 1
    stop: threading.Event = field(default_factory=threading.Event)
    renewer: threading.Thread | None = None


@dataclass
class AccountLocks:
    """The account locks of one store. ``wait``, ``timeout`` and ``out`` as for the machine's
    :class:`~dome_tasks.lifecycle.lock.Locks`; ``ttl`` and ``renew_every`` in seconds."""

    store: AccountStore
    wait: bool = True
    timeout: float | None = None
    out: TextIO | None = None
    command: str | None = None
    ttl: float = TTL
    renew_every: float | None = None
    poll: float = 0.5
    poll_max: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _held: dict[str, _Held] = field(default_factory=dict, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def hold(self, scope: str, *, what: str | None = None,
             cancel: threading.Event | None = None) -> Iterator[None]:
        """Hold ``scope`` for the ``with`` block (re-entrant in this process); a wait for it ends
        with :class:`~dome_tasks.errors.Interrupted` once ``cancel`` is set."""
        what = what or scope
        with self._guard:
            held = self._held.get(scope)
            if held is not None:
                held.depth += 1
        if held is not None:
            try:
                yield
            finally:
                with self._guard:
                    held.depth -= 1
            return
        token = self._acquire(scope, what, cancel)
        if token is None:  # unreachable: the machine lock alone holds
            yield
            return
        held = _Held(token)
        self.store.hold_back(scope)  # its records go with the release (one request)
        held.renewer = threading.Thread(target=self._renew, args=(scope, what, held),
                                        name="dome-lock-renew", daemon=True)
        with self._guard:
            self._held[scope] = held
        held.renewer.start()
        try:
            yield
        finally:
            self._release(scope, what, held)

    # -- acquire ---------------------------------------------------------------------------------

    def _acquire(self, scope: str, what: str, cancel: threading.Event | None = None) -> str | None:
        me = LockHolder.me(self.command)
        token = uuid.uuid4().hex
        started = self.clock()
        announced: LockHolder | None = None
        delay = self.poll
        with interruptible(cancel) as pause:
            stale, gone = "", ""
            while True:
                try:
                    if self._try(scope, token, me, stale, gone):
                        return token
                    row = self._row(scope)
                except ApiFailure as error:
                    self._say(f"lock {what}: the account lock cannot be reached ({error.message}); "
                              "going on under this machine's lock only: another machine may change "
                              f"{what} meanwhile" + (f" ({error.hint})" if error.hint else ""))
                    return None
                if row is None:
                    stale, gone = "", ""
                    continue  # released meanwhile: try again at once
                holder = LockHolder.from_row(row)
                now = float(row["now"])
                if holder.expires <= now or holder.gone():
                    why = (f"whose lock expired at {_clock(holder.expires)}"
                           if holder.expires <= now else "which is no longer running")
                    self._say(f"lock {what}: taking over from {holder.describe()}, {why}")
                    stale, gone = str(row["token"]), "gone" if holder.expires > now else ""
                    continue
                stale, gone = "", ""
                self._busy(what, holder, started, announced)
                announced = holder
                pause(delay)
                delay = min(delay * 1.5, self.poll_max)

    def _try(self, scope: str, token: str, me: LockHolder, stale: str, gone: str) -> bool:
        rows = self.store.query(_ACQUIRE, (scope, token, me.to_json(), self.ttl, stale, gone))
        return bool(rows) and rows[0].get("token") == token

    def _row(self, scope: str) -> dict[str, Any] | None:
        rows = self.store.query(_HOLDER, (scope,))
        return rows[0] if rows else None

    def _busy(self, what: str, holder: LockHolder, started: float,
              announced: LockHolder | None) -> None:
        """Refuse (no waiting, or waited too long), or say once whom we wait for."""
        if not self.wait:
            raise LockBusy(f"{what} is locked by {holder.describe()}",
                           hint="wait for it to finish, or run again without --no-wait to "
                                "queue behind it")
        if self.timeout is not None and self.clock() - started >= self.timeout:
            raise LockBusy(f"{what} is still locked by {holder.describe()} after "
                           f"{self.timeout:g}s", hint="try again later")
        if announced is None or (announced.pid, announced.host, announced.since) != (
                holder.pid, holder.host, holder.since):
            self._say(f"lock {what}: waiting for {holder.describe()} to finish (its lock expires "
                      f"at {_clock(holder.expires)} unless renewed)")

    # -- held ------------------------------------------------------------------------------------

    def _renew(self, scope: str, what: str, held: _Held) -> None:
        every = self.renew_every if self.renew_every is not None else self.ttl / 4
        while not held.stop.wait(every):
            try:
                rows = self.store.query(_RENEW, (scope, held.token, self.ttl))
            except ApiFailure:
                continue  # tried again at the next beat; the lock lives ttl seconds meanwhile
            if not rows:
                self._say(f"warning: lock {what}: lost (it expired while this run could not "
                          "renew it); another run may now change it too")
                return

    def _release(self, scope: str, what: str, held: _Held) -> None:
        with self._guard:
            self._held.pop(scope, None)
        held.stop.set()
        if held.renewer is not None:
            held.renewer.join(timeout=5)
        try:
            self.store.release(scope, _RELEASE, (scope, held.token))
        except ApiFailure as error:
            self._say(f"lock {what}: could not release the account lock ({error.message}); it "
                      f"expires by itself within {self.ttl:g}s; the records of this run are "
                      "kept locally and pushed on the next run")

    def _say(self, message: str) -> None:
        print(message, file=self.out or sys.stderr, flush=True)
