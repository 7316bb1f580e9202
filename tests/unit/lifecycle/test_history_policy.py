"""The history's policy (cache, outbox, shared store) on the memory driver: no disk, no account.

What a user notices: a record is never lost when the account is unreachable, it reaches every
machine on the next run, and ``history`` shows each record once, the shared one winning."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dome_tasks.cloudflare.api import ApiFailure
from dome_tasks.lifecycle.history import History, Outbox
from dome_tasks.lifecycle.ledger import LedgerError, LedgerRead, LedgerRecord
from dome_tasks.lifecycle.record_store import MemoryStore


@dataclass
class Flaky(MemoryStore):
    """A memory store that answers like an unreachable account while ``down``."""

    down: bool = False

    def put(self, records: Sequence[LedgerRecord]) -> None:
        if self.down:
            raise ApiFailure("HTTP 503: Service Unavailable", status=503, transient=True)
        super().put(records)

    def list(self, environment: str | None = None, service: str | None = None) -> LedgerRead:
        if self.down:
            raise ApiFailure("HTTP 503: Service Unavailable", status=503, transient=True)
        return super().list(environment, service)


def deploy(version: str, *, time: str = "2026-03-04T10:00:00.000Z", environment: str = "staging",
           **kw) -> LedgerRecord:
    return LedgerRecord(kind="deploy", service="silo", environment=environment, outcome="success",
                        worker=f"silo-{environment}", version_id=version, time=time, **kw)


class Machine:
    """One machine's cache and outbox over the one shared store (both environments' account)."""

    def __init__(self, shared: MemoryStore) -> None:
        self.shared = shared
        self.cache = MemoryStore(path=Path("cache.jsonl"))
        self.outbox = MemoryStore()
        self.warnings: list[str] = []

    def history(self) -> History:
        """A fresh History, as the next run on this machine opens it."""
        return History(self.cache, {"staging": self.shared, "production": self.shared},
                       outbox=self.outbox, warn=self.warnings.append)


def ids(records: Sequence[LedgerRecord]) -> list[str]:
    return [r.id for r in records]


def test_a_record_written_while_the_account_is_down_is_kept_and_queued() -> None:
    machine = Machine(Flaky(down=True))
    record = machine.history().append(deploy("v1"))
    assert ids(machine.cache.kept) == [record.id]
    assert ids(machine.history().unsynced) == [record.id]
    assert machine.shared.kept == []
    assert machine.warnings == [
        ("history: Cloudflare D1 unreachable (HTTP 503: Service Unavailable); the record is kept "
         "in cache.jsonl and will be pushed on the next run")]


def test_the_next_run_pushes_the_queue_before_anything_else_once() -> None:
    shared = Flaky(down=True)
    machine = Machine(shared)
    queued = machine.history().append(deploy("v1"))
    shared.down = False
    machine.warnings.clear()
    run = machine.history()
    seen = run.records("silo", "staging")
    assert ids(shared.kept) == [queued.id] and ids(seen) == [queued.id]
    assert run.unsynced == []
    assert machine.warnings == [
        "history: pushed 1 record(s) kept locally while Cloudflare was unreachable"]
    assert run.sync() == 0  # once per run


def test_a_queue_the_account_still_refuses_stays_queued() -> None:
    shared = Flaky(down=True)
    machine = Machine(shared)
    queued = machine.history().append(deploy("v1"))
    assert machine.history().sync() == 0
    assert ids(machine.outbox.kept) == [queued.id]
    assert any("1 record(s) still not pushed" in w for w in machine.warnings)


def test_reads_merge_the_cache_and_the_shared_store_each_record_once() -> None:
    shared = MemoryStore()
    laptop, ci = Machine(shared), Machine(shared)
    local_only = deploy("v0", time="2026-03-01T00:00:00.000Z")
    laptop.cache.put([local_only])
    both = laptop.history().append(deploy("v1", time="2026-03-02T00:00:00.000Z"))
    from_ci = ci.history().append(deploy("v2", time="2026-03-03T00:00:00.000Z"))
    seen = laptop.history().records("silo", "staging")
    assert ids(seen) == [local_only.id, both.id, from_ci.id]  # oldest first, no duplicate
    assert ids(laptop.cache.kept) == [local_only.id, both.id, from_ci.id]  # now cached
    assert ids(laptop.history().records("silo", "staging")) == ids(seen)


def test_the_shared_record_wins_over_the_cached_one() -> None:
    shared = MemoryStore()
    machine = Machine(shared)
    record = deploy("v1")
    shared.put([record])
    stale = LedgerRecord.from_dict({**json.loads(record.to_json()), "outcome": "failure"})
    machine.cache.put([stale])
    (seen,) = machine.history().records("silo", "staging")
    assert (seen.id, seen.outcome) == (record.id, "success")


def test_an_unreachable_account_shows_what_the_cache_holds_and_says_so_once() -> None:
    shared = MemoryStore()
    machine = Machine(shared)
    record = machine.history().append(deploy("v1"))
    offline = History(machine.cache, {"staging": Flaky(down=True)}, warn=machine.warnings.append)
    assert ids(offline.records("silo", "staging")) == [record.id]
    assert ids(offline.read().records) == [record.id]
    assert machine.warnings == [("history: the shared history is unreachable (HTTP 503: Service "
                                 "Unavailable); showing what cache.jsonl holds")]


def test_a_record_under_a_held_lock_waits_for_the_release_and_leaves_the_queue_then() -> None:
    shared = MemoryStore()
    machine = Machine(shared)
    history = machine.history()
    shared.hold_back("staging/silo-staging")
    record = history.append(deploy("v1"))
    assert shared.kept == [] and ids(machine.outbox.kept) == [record.id]  # safe if killed now
    shared.release("staging/silo-staging")
    assert ids(shared.kept) == [record.id]
    assert machine.outbox.kept == []


def test_without_a_shared_store_the_record_stays_local_and_says_why_once() -> None:
    cache, warnings = MemoryStore(path=Path("cache.jsonl")), []
    history = History(cache, {"staging": None}, outbox=MemoryStore(), warn=warnings.append,
                      off_reason="no account id")
    history.append(deploy("v1"))
    history.append(deploy("v2", time="2026-03-05T10:00:00.000Z"))
    assert [r.version_id for r in history.records("silo", "staging")] == ["v1", "v2"]
    assert history.unsynced == []  # nowhere to push it: not queued
    assert warnings == ["history: kept in cache.jsonl only (no account id)"]


def test_a_local_history_reads_the_ledger_as_written(tmp_path: Path) -> None:
    history = History.local(tmp_path / "ledger.jsonl")
    later = history.append(deploy("v2", time="2026-03-05T10:00:00.000Z"))
    earlier = history.append(deploy("v1", time="2026-03-04T10:00:00.000Z"))
    assert ids(history.read().records) == [later.id, earlier.id]  # the file's order
    assert history.unsynced == [] and history.stores == {}


def test_a_prefetched_listing_includes_what_was_written_meanwhile() -> None:
    shared = MemoryStore()
    machine = Machine(shared)
    first = machine.history().append(deploy("v1"))
    history = machine.history()
    history.prefetch("staging")
    second = history.append(deploy("v2", time="2026-03-05T10:00:00.000Z"))
    assert ids(history.records(None, "staging")) == [first.id, second.id]


def test_a_cache_that_cannot_be_written_still_reads(tmp_path: Path) -> None:
    class ReadOnly(MemoryStore):
        def put(self, records: Sequence[LedgerRecord]) -> None:
            raise LedgerError("cannot append to the ledger: read-only file system")

    shared = MemoryStore()
    record = deploy("v1")
    shared.put([record])
    history = History(ReadOnly(), {"staging": shared})
    assert ids(history.records("silo", "staging")) == [record.id]


def test_the_file_outbox_pushes_each_queued_record_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "ledger.jsonl.unsynced")
    record = deploy("v1")
    outbox.put([record])
    outbox.put([record])  # queued twice (a retry): pushed once
    other = deploy("v2")
    outbox.put([other])
    assert ids(outbox.list().records) == [record.id, other.id]
    outbox.remove([record.id])
    assert ids(outbox.list().records) == [other.id]
    outbox.remove([other.id])
    assert not outbox.path.exists()
