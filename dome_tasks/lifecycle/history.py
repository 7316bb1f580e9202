"""The shared deploy history: the one policy above the record stores, so every machine sees
the same history.

Like Helm keeps a release's history in the cluster it deploys to, dome-tasks keeps each
environment's history in the Cloudflare account that serves it: the ``dome_history`` table of
the account's ``dome-state`` D1 database (:mod:`dome_tasks.lifecycle.account_store`), which
also holds the account locks. D1 is strongly consistent: what one machine wrote, the next
lock holder reads.

:class:`History` is the one policy above the drivers of
:mod:`dome_tasks.lifecycle.record_store`, as Helm's ``Storage`` above its ``Driver``; a
``Session.ledger`` is always one:

* the local ``.dome/ledger.jsonl`` (:class:`~dome_tasks.lifecycle.ledger.Ledger`) is a
  read-through cache: reads merge the shared records with it (by record id; the shared record
  wins) and append shared records the machine had not seen, so ``history`` still answers
  offline. Writes go to both;
* when Cloudflare cannot be reached the record is kept locally, queued in the :class:`Outbox`
  (``<ledger>.unsynced``), and pushed on the next run (:meth:`History.sync`);
* a record written while this run holds its scope's account lock goes with the lock's release
  (one D1 transaction); it waits in the outbox meanwhile, so a killed run loses nothing.

Credentials are wrangler's (an API token, a global key, or ``wrangler login``; see
:mod:`dome_tasks.cloudflare.credentials`); without any, the history is this machine's only.
With the shared history off (``dome.history: false``, or a dry run) it is the local ledger
alone (:meth:`History.local`), read as written. A rehearsal (:meth:`History.for_rehearsal`)
writes only to the emulator's account: never to the real ledger, never to the real account.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks._atomic import exclusive, write_atomic
from dome_tasks._background import in_background
from dome_tasks.cloudflare.api import ApiFailure
from dome_tasks.cloudflare.credentials import find_credentials, wrangler_near
from dome_tasks.lifecycle.account_store import known_path, stores_for
from dome_tasks.lifecycle.ledger import Ledger, LedgerError, LedgerRead, LedgerRecord, select

if TYPE_CHECKING:
    from dome_tasks.lifecycle.record_store import Queue, RecordStore, SharedStore
    from dome_tasks.manifest.loader import Manifest

__all__ = ["History", "Outbox"]

# What a store call can raise: the API failed, or answered in a shape we did not expect.
_STORE_ERRORS = (ApiFailure, KeyError, TypeError, ValueError, AttributeError)


# --- the queue of records not yet pushed ----------------------------------------------------


class Outbox(Ledger):
    """Records kept locally because Cloudflare could not be reached: a ledger file of its own
    (``<ledger>.unsynced``, the same locked appends), whose records leave once pushed."""

    def list(self, environment: str | None = None, service: str | None = None) -> LedgerRead:
        """The queued records, each once (one queued twice is pushed once); a torn line is
        skipped (its record is still in the ledger itself)."""
        found = {r.id: r for r in super().list(environment, service).records}
        return LedgerRead(tuple(found.values()))

    def remove(self, ids: Iterable[str]) -> None:
        """Drop the records with these ids (the rest stays queued)."""
        done = set(ids)
        with exclusive(self.lock_path):
            left = [r for r in self.list().records if r.id not in done]
            if not left:
                self.path.unlink(missing_ok=True)
                return
            write_atomic(self.path, "".join(r.to_json() + "\n" for r in left))


# --- the policy: local cache + outbox + the shared store of each environment ------------------


class History:
    """The records of a manifest's environments: written and read through the local cache, the
    outbox and the shared store of each environment's account (``append``, ``read``,
    ``records``, as a ledger).

    ``stores`` maps each environment to its account's store (None: no shared history for it;
    empty: the cache alone, read as written). ``cache`` is the local ledger (None in
    rehearsals); ``outbox`` queues what a store could not take. Warnings go to ``warn`` once
    each.
    """

    def __init__(
        self,
        cache: RecordStore | None,
        stores: Mapping[str, SharedStore | None],
        *,
        outbox: Queue | None = None,
        warn: Callable[[str], None] | None = None,
        off_reason: str | None = None,
    ) -> None:
        self.cache = cache
        self.stores = dict(stores)
        self.outbox = outbox
        self._warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
        self._warned: set[str] = set()
        self._off_reason = off_reason
        # (store, environment, service) -> its records; a Future while a prefetch runs
        self._listed: dict[tuple[int, str | None, str | None],
                           list[LedgerRecord] | Future[Any]] = {}
        self._synced = False
        for store in self.stores.values():
            if store is not None:
                store.note = self._note
                store.written = self._written

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def open(cls, manifest: Manifest, ledger_path: Path | str, *, shared: bool) -> History:
        """The history a task reads and writes: shared (:meth:`for_manifest`), else the local
        ledger alone (:meth:`local`)."""
        return cls.for_manifest(manifest, ledger_path) if shared else cls.local(ledger_path)

    @classmethod
    def local(cls, ledger_path: Path | str) -> History:
        """The local ledger alone (the shared history is off, or a dry run)."""
        return cls(Ledger(ledger_path), {})

    @classmethod
    def for_manifest(
        cls,
        manifest: Manifest,
        ledger_path: Path | str,
        environ: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
        warn: Callable[[str], None] | None = None,
    ) -> History:
        """The history of ``manifest``'s remote environments, cached in ``ledger_path``."""
        env = os.environ if environ is None else environ
        path = Path(ledger_path)
        credentials = find_credentials(env, wrangler=wrangler_near(manifest.root))
        stores, reason = stores_for(manifest, env, credentials, timeout=timeout,
                                    known=known_path(path.parent))
        return cls(Ledger(path), stores, outbox=Outbox(path.with_name(path.name + ".unsynced")),
                   warn=warn, off_reason=reason)

    @classmethod
    def for_rehearsal(
        cls,
        manifest: Manifest,
        emulator_environ: Mapping[str, str],
        *,
        warn: Callable[[str], None] | None = None,
    ) -> History:
        """A rehearsal's history: the emulator's account only (no local file, no real account)."""
        stores, reason = stores_for(manifest, emulator_environ,
                                    find_credentials(emulator_environ))
        if any(store is not None and not store.api.is_loopback for store in stores.values()):
            raise ValueError("a rehearsal history must point at the emulator (127.0.0.1)")
        return cls(None, stores, warn=warn, off_reason=reason)

    # -- reads and writes -------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """Where the records are, as messages name it: the cache's path."""
        path = getattr(self.cache, "path", None)
        return path if path is not None else Path("(rehearsal: the emulator's D1)")

    @property
    def unsynced(self) -> list[LedgerRecord]:
        """Records written here that Cloudflare does not have yet."""
        return list(self.outbox.list().records) if self.outbox is not None else []

    def append(self, record: LedgerRecord) -> LedgerRecord:
        """Write ``record`` to the cache, then to the shared store (queued when unreachable)."""
        if self.cache is not None:
            self.cache.put([record])
        self.sync()
        store = self.stores.get(record.environment)
        for (store_id, environment, service) in list(self._listed):
            if (store is not None and store_id == id(store)
                    and environment in (None, record.environment)
                    and service in (None, record.service)):
                try:
                    self._list(store, environment, service).append(record)
                except _STORE_ERRORS:
                    pass  # the prefetch failed: the next read lists again
        if store is None:
            if self._off_reason and self.cache is not None:
                self._note(f"history: kept in {self.path} only ({self._off_reason})")
            return record
        if store.defer(f"{record.environment}/{record.worker}", record):
            if self.outbox is not None:  # kept locally until the lock's release writes it
                self.outbox.put([record])
            return record
        try:
            store.put([record])
        except _STORE_ERRORS as error:
            if self.outbox is None:
                self._note(f"history: could not record in the shared history: {_reason(error)}")
                return record
            self.outbox.put([record])
            self._note(f"history: Cloudflare D1 unreachable ({_reason(error)}); the record is kept "
                       f"in {self.path} and will be pushed on the next run")
        return record

    def read(self) -> LedgerRead:
        """Every record of the manifest's environments, oldest first (shared ones win)."""
        return self._read(None, None)

    def records(self, service: str | None = None, environment: str | None = None
                ) -> tuple[LedgerRecord, ...]:
        return tuple(select(self._read(service, environment).records, service=service,
                            environment=environment))

    def prefetch(self, environment: str) -> None:
        """Start listing *environment*'s shared records on a daemon thread, so that the first
        read of them (``records(…, environment)``) waits for less: reads beside the task's
        other work. Records appended meanwhile are added to what it finds."""
        for store, scope, _ in self._sources(None, environment):
            key = (id(store), *scope)
            if key not in self._listed:
                self._listed[key] = in_background(store.list, *scope, name="dome-history")

    # -- sync and merge --------------------------------------------------------------------------

    def sync(self) -> int:
        """Push the queued records (once per object); returns how many were pushed."""
        if self._synced or self.outbox is None:
            return 0
        self._synced = True
        pushed: list[str] = []
        by_store: dict[int, tuple[SharedStore, list[LedgerRecord]]] = {}
        for record in self.outbox.list().records:
            store = self.stores.get(record.environment)
            if store is not None:
                by_store.setdefault(id(store), (store, []))[1].append(record)
        for store, records in by_store.values():
            try:
                store.put(records)
            except _STORE_ERRORS as error:
                self._note(f"history: {len(records)} record(s) still not pushed to Cloudflare D1 "
                           f"({_reason(error)}); trying again on the next run")
                continue
            pushed += [r.id for r in records]
        if pushed:
            self.outbox.remove(pushed)
            self._note(f"history: pushed {len(pushed)} record(s) kept locally while Cloudflare "
                       "was unreachable")
        return len(pushed)

    def _read(self, service: str | None, environment: str | None) -> LedgerRead:
        self.sync()
        local = self.cache.list() if self.cache is not None else LedgerRead(())
        if not self.stores:  # the cache alone: read as written
            return local
        merged: dict[str, LedgerRecord] = {r.id: r for r in local.records}  # later lines win
        problems = list(local.problems)
        shared: list[LedgerRecord] = []
        for store, scope, wanted in self._sources(service, environment):
            try:
                found = self._list(store, *scope)
            except _STORE_ERRORS as error:
                self._note(f"history: the shared history is unreachable ({_reason(error)}); "
                           f"showing what {self.path} holds")
                continue
            shared += [r for r in found if r.environment in wanted]
        new = [r for r in shared if merged.get(r.id) != r]
        merged.update({r.id: r for r in shared})
        if new and self.cache is not None:
            try:
                self.cache.put(new)
            except (OSError, LedgerError):
                pass  # a read-only cache still reads
        records = sorted(merged.values(), key=lambda r: (r.moment, r.id))
        return LedgerRead(tuple(records), tuple(problems))

    def _sources(self, service: str | None, environment: str | None
                 ) -> list[tuple[SharedStore, tuple[str | None, str | None], set[str]]]:
        """(store, (environment, service) to list, environments wanted) for a query."""
        if environment is not None:
            store = self.stores.get(environment)
            return [(store, (environment, service), {environment})] if store else []
        grouped: dict[int, tuple[SharedStore, set[str]]] = {}
        for name, store in self.stores.items():
            if store is not None:
                grouped.setdefault(id(store), (store, set()))[1].add(name)
        return [(store, (None, None), names) for store, names in grouped.values()]

    def _list(self, store: SharedStore, environment: str | None, service: str | None
              ) -> list[LedgerRecord]:
        key = (id(store), environment, service)
        known = self._listed.get(key)
        if isinstance(known, list):
            return known
        try:
            read: LedgerRead = (store.list(environment, service) if known is None
                                else known.result())
        except BaseException:
            self._listed.pop(key, None)  # a failed prefetch: the next read tries again
            raise
        for problem in read.problems:
            self._note(f"history: unreadable shared record {problem.text}: {problem.error}")
        records = self._listed[key] = list(read.records)
        return records

    def _written(self, records: Sequence[LedgerRecord]) -> None:
        """A lock's release wrote *records* to the shared store: no longer pending locally."""
        if self.outbox is not None:
            self.outbox.remove([r.id for r in records])

    def _note(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)


def _reason(error: Exception) -> str:
    if isinstance(error, ApiFailure):
        return error.message
    return f"unexpected answer: {type(error).__name__}: {error}"
