"""The record store: the one small interface every keeper of ledger records offers.

As Helm's storage drivers (one ``Driver`` interface, memory, Secret and SQL drivers, one
``Storage`` above them), dome-tasks keeps its records behind one interface and one policy:

* :class:`RecordStore` is what a driver does: ``put`` records (append-only: a record never
  changes, and one id is one record) and ``list`` the records of an environment (or of one
  service in it, or all), with the entries that could not be read (:class:`LedgerRead`);
* the drivers: :class:`MemoryStore` (here: in memory, for tests),
  :class:`~dome_tasks.lifecycle.ledger.Ledger` (the local JSON Lines file, and its queue of
  records not yet pushed, :class:`~dome_tasks.lifecycle.history.Outbox`) and
  :class:`~dome_tasks.lifecycle.account_store.AccountStore` (the account's ``dome-state`` D1,
  which also holds the account locks);
* :class:`SharedStore` is a store every machine sees: it may hold a record back while this run
  holds the lock of its scope, to write it with the lock's release (one transaction);
* the one policy above them is :class:`~dome_tasks.lifecycle.history.History` (a local cache,
  an outbox and the shared store of each environment): ``Session.ledger`` is always one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dome_tasks.lifecycle.ledger import LedgerRead, LedgerRecord, select

__all__ = ["MemoryStore", "Queue", "RecordStore", "SharedStore"]


class RecordStore(Protocol):
    """Where ledger records are kept."""

    def put(self, records: Sequence[LedgerRecord]) -> None:
        """Keep ``records`` (a store that merges by id keeps a record it has once)."""
        ...

    def list(self, environment: str | None = None, service: str | None = None) -> LedgerRead:
        """The records of *environment* (and *service* in it; None: all), oldest first, and
        the entries that could not be read."""
        ...


class Queue(RecordStore, Protocol):
    """The records written here that the shared store does not have yet (the outbox)."""

    def remove(self, ids: Iterable[str]) -> None:
        """Drop the records with these ids (pushed); the rest stays queued."""
        ...


class SharedStore(RecordStore, Protocol):
    """A store every machine sees alike (an account's). The history tells it how to warn
    (``note``) and hears which held-back records a lock's release wrote (``written``)."""

    note: Callable[[str], None]
    written: Callable[[Sequence[LedgerRecord]], None]

    def defer(self, scope: str, record: LedgerRecord) -> bool:
        """Keep *record* for the release of *scope*'s lock; False when that lock is not held."""
        ...


def _ignore(_: object) -> None:
    return None


@dataclass
class MemoryStore:
    """Records in memory, as the account's store keeps them: each id once (the first put
    wins), listed by time; with the hold-back of a lock's records (:meth:`hold_back`,
    :meth:`release`). Any of the three roles: cache, outbox or shared store."""

    kept: list[LedgerRecord] = field(default_factory=list)
    path: Path = Path("(memory)")  # what messages call it
    note: Callable[[str], None] = _ignore
    written: Callable[[Sequence[LedgerRecord]], None] = _ignore
    _held: dict[str, list[LedgerRecord]] = field(default_factory=dict, repr=False)

    def put(self, records: Sequence[LedgerRecord]) -> None:
        known = {r.id for r in self.kept}
        for record in records:
            if record.id not in known:
                known.add(record.id)
                self.kept.append(record)

    def list(self, environment: str | None = None, service: str | None = None) -> LedgerRead:
        ordered = sorted(self.kept, key=lambda r: (r.time, r.id))
        return LedgerRead(tuple(select(ordered, service=service, environment=environment)))

    def remove(self, ids: Iterable[str]) -> None:
        done = set(ids)
        self.kept = [r for r in self.kept if r.id not in done]

    def hold_back(self, scope: str) -> None:
        """From now on, records of *scope* wait for :meth:`release` (as a lock's do)."""
        self._held.setdefault(scope, [])

    def defer(self, scope: str, record: LedgerRecord) -> bool:
        if scope not in self._held:
            return False
        self._held[scope].append(record)
        return True

    def release(self, scope: str) -> None:
        """Write the records held back for *scope* and say so (``written``)."""
        records = self._held.pop(scope, [])
        self.put(records)
        if records:
            self.written(records)
