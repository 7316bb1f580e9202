"""The shared history in the account's D1 (``dome-state``), through the emulator: two machines
(two ledger folders) see one history; the local ledger is a read-through cache; unreachable
means queued and pushed on the next run; rehearsals never touch the real ledger; the history
earlier versions kept in Workers KV is carried over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.cloudflare.api import CloudflareApi
from dome_tasks.lifecycle.account_store import DATABASE_NAME
from dome_tasks.lifecycle.history import History
from dome_tasks.lifecycle.kv_history import NAMESPACE_TITLE, KvStore
from dome_tasks.lifecycle.ledger import Ledger, LedgerRecord, last_healthy_version
from dome_tasks.manifest.loader import Manifest, load
from dome_tasks.testing.emulator import Emulator
from tests.helpers import SAMPLE


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load(SAMPLE / "dome.yaml")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


class Machine:
    """One machine: its own ledger folder and its own warnings, the same Cloudflare account."""

    def __init__(self, root: Path, manifest: Manifest, environ: dict[str, str]) -> None:
        self.root = root
        self.manifest = manifest
        self.environ = environ
        self.warnings: list[str] = []

    @property
    def ledger_path(self) -> Path:
        return self.root / ".dome" / "ledger.jsonl"

    def history(self) -> History:
        """A fresh History, as a new run of a command on this machine would open it."""
        return History.for_manifest(self.manifest, self.ledger_path, self.environ,
                                    warn=self.warnings.append)


@pytest.fixture
def machines(tmp_path: Path, manifest: Manifest, emulator: Emulator):
    def make(name: str, **environ: str) -> Machine:
        home = {"HOME": str(tmp_path / name / "home"), "XDG_CONFIG_HOME": ""}  # no wrangler login
        return Machine(tmp_path / name, manifest, {**emulator.env(), **home, **environ})

    return make


def deploy(version: str, *, environment: str = "staging", service: str = "silo",
           time: str = "2026-03-04T10:00:00.000Z", verified: bool | None = True, **kw) -> LedgerRecord:
    return LedgerRecord(kind="deploy", service=service, environment=environment, outcome="success",
                  version_id=version, verified=verified, time=time, **kw)


def kv_calls(emulator: Emulator, method: str, fragment: str) -> int:
    return len(emulator.requests_matching(method, "/storage/kv/namespaces" + fragment))


def d1_calls(emulator: Emulator, method: str, fragment: str) -> int:
    return len(emulator.requests_matching(method, "/d1/database" + fragment))


def rows(emulator: Emulator) -> list[dict]:
    database = emulator.state.d1_by_name(DATABASE_NAME)
    return database.rows("SELECT id, environment, service, record FROM dome_history ORDER BY time")


def test_a_record_written_on_machine_a_shows_in_history_on_machine_b(machines, emulator) -> None:
    a, b = machines("ci-runner"), machines("laptop")
    written = a.history().append(deploy("v-ci", actor="github:alice"))

    seen = b.history().records("silo", "staging")
    assert [(r.id, r.version_id, r.actor) for r in seen] == [(written.id, "v-ci", "github:alice")]
    assert seen[0] == written  # exactly the same record, field for field
    # B's local ledger now caches it (read-through): it shows even when Cloudflare is away
    assert [r.id for r in Ledger(b.ledger_path).read().records] == [written.id]
    emulator.faults.add(path="/d1/database", times=None, status=503)
    offline = b.history()
    assert [r.id for r in offline.records("silo", "staging")] == [written.id]
    assert any("unreachable" in w and str(b.ledger_path) in w for w in b.warnings)


def test_the_rollback_default_target_on_a_laptop_sees_ci_deploys(machines) -> None:
    ci, laptop = machines("ci"), machines("laptop")
    laptop.history().append(deploy("v1", time="2026-03-01T09:00:00.000Z"))
    ci.history().append(deploy("v2", time="2026-03-02T09:00:00.000Z"))
    ci.history().append(deploy("v3", time="2026-03-03T09:00:00.000Z", verified=False))
    records = laptop.history().records("silo", "staging")
    assert [r.version_id for r in records] == ["v1", "v2", "v3"]  # oldest first, both machines
    assert last_healthy_version(records, "silo", "staging", exclude={"v3"}) == "v2"


def test_one_database_per_account_one_row_per_record_listed_in_one_query(
        machines, emulator) -> None:
    a = machines("a")
    first = a.history().append(deploy("v1"))
    second = a.history().append(deploy("v1", environment="production",
                                       time="2026-03-04T11:00:00.000Z"))
    assert [db.name for db in emulator.state.d1.values()] == [DATABASE_NAME]
    assert d1_calls(emulator, "POST", "$") == 1  # created on the first write only
    assert [(r["id"], r["environment"]) for r in rows(emulator)] == [
        (first.id, "staging"), (second.id, "production")]
    assert json.loads(rows(emulator)[0]["record"]) == json.loads(first.to_json())
    emulator.clear_requests()
    assert len(machines("b").history().read().records) == 2
    assert d1_calls(emulator, "POST", "/[^/]+/query$") == 2  # the schema, then one page


def test_a_prefetched_history_lists_what_a_plain_read_does_and_what_was_written_meanwhile(
        machines, emulator) -> None:
    a = machines("a")
    a.history().append(deploy("v1"))
    emulator.faults.add(method="POST", path=r"/query$", body_matches="FROM dome_history",
                        delay=0.5)
    history = a.history()
    history.prefetch("staging")  # the listing runs while the run goes on …
    written = history.append(deploy("v2", time="2026-03-04T11:00:00.000Z"))  # … and writes
    assert [r.version_id for r in history.records(None, "staging")] == ["v1", "v2"]
    assert written in history.records("silo", "staging")
    assert [r.version_id for r in machines("b").history().records("silo", "staging")] == [
        "v1", "v2"]


def test_a_second_run_remembers_the_database_beside_its_ledger(machines, emulator) -> None:
    a = machines("a")
    a.history().append(deploy("v1"))
    emulator.clear_requests()
    assert [r.version_id for r in a.history().records("silo", "staging")] == ["v1"]
    assert d1_calls(emulator, "GET", "$") == 0  # not looked up by name again
    assert d1_calls(emulator, "POST", "/[^/]+/query$") == 1  # no schema: one page
    assert (a.root / ".dome" / "cache" / f"{DATABASE_NAME}.json").is_file()


def test_a_long_record_is_kept_whole(machines) -> None:
    long = deploy("v9", reason="health: FAILED " + "x" * 3000, extra={"targets": ["https://a"] * 50})
    machines("a").history().append(long)
    (seen,) = machines("b").history().records("silo", "staging")
    assert seen == long


def test_listing_reads_page_after_page(machines, emulator) -> None:
    store = machines("a").history().stores["staging"]
    records = [deploy(f"v{n}", time=f"2026-03-04T10:{n // 60:02d}:{n % 60:02d}.000Z")
               for n in range(1203)]
    store.put(records)
    emulator.clear_requests()
    seen = machines("b").history().records("silo", "staging")
    assert [r.id for r in seen] == [r.id for r in records]
    assert d1_calls(emulator, "POST", "/[^/]+/query$") == 1 + 3  # the schema, 3 pages of 500


def test_the_shared_record_wins_over_the_cache(machines) -> None:
    a, b = machines("a"), machines("b")
    shared = a.history().append(deploy("v1"))
    stale = LedgerRecord.from_dict({**json.loads(shared.to_json()), "outcome": "failure"})
    Ledger(b.ledger_path).append(stale)
    local_only = Ledger(b.ledger_path).append(deploy("v0", time="2026-03-01T00:00:00.000Z"))
    seen = b.history().records("silo", "staging")
    assert [(r.id, r.outcome) for r in seen] == [(local_only.id, "success"), (shared.id, "success")]


def test_unreachable_cloudflare_keeps_the_record_and_pushes_it_on_the_next_run(
        machines, emulator) -> None:
    a = machines("a")
    a.history().append(deploy("v-first", time="2026-03-04T09:00:00.000Z"))  # the database exists
    emulator.faults.add(path="/query$", method="POST", status=500, times=None)
    record = a.history().append(deploy("v-offline"))
    assert [r.id for r in Ledger(a.ledger_path).read().records][-1] == record.id
    assert [r.id for r in a.history().unsynced] == [record.id]
    assert any("will be pushed on the next run" in w for w in a.warnings)
    elsewhere = machines("b").history().records("silo", "staging")
    assert "v-offline" not in [r.version_id for r in elsewhere]

    emulator.faults.clear()
    a.warnings.clear()
    next_run = a.history()
    next_run.records("silo", "staging")  # any use of the history pushes the queue first
    assert a.warnings == ["history: pushed 1 record(s) kept locally while Cloudflare was unreachable"]
    assert next_run.unsynced == []
    assert [r.version_id for r in machines("b").history().records("silo", "staging")] == [
        "v-first", "v-offline"]


def test_no_token_means_this_machine_only_and_says_so(machines) -> None:
    a = machines("a", CLOUDFLARE_API_TOKEN="")
    history = a.history()
    history.append(deploy("v1"))
    assert [r.version_id for r in history.records("silo", "staging")] == ["v1"]
    assert len(a.warnings) == 1 and "no Cloudflare credentials" in a.warnings[0]
    assert history.unsynced == []  # not queued: there is nowhere to push it


def test_a_rehearsal_writes_only_to_the_emulator(tmp_path, manifest, emulator) -> None:
    rehearsal = History.for_rehearsal(manifest, emulator.env())
    rehearsal.append(deploy("v-rehearsed"))
    assert [r.version_id for r in rehearsal.records("silo", "staging")] == ["v-rehearsed"]
    assert rehearsal.cache is None and not (tmp_path / ".dome").exists()
    assert len(rows(emulator)) == 1
    with pytest.raises(ValueError, match="must point at the emulator"):
        History.for_rehearsal(manifest, {**emulator.env(),
                                         "CLOUDFLARE_API_BASE_URL": "https://api.cloudflare.com/client/v4"})


def test_environments_of_one_account_share_one_store(machines) -> None:
    history = machines("a").history()
    stores = {name: id(store) for name, store in history.stores.items()}
    assert set(stores) == {"development", "staging", "production"}  # local has none
    assert len(set(stores.values())) == 1


def test_a_nonsense_answer_is_treated_like_an_unreachable_store(machines, emulator) -> None:
    a = machines("a")
    emulator.faults.add(path="/d1/database$", method="GET", status=200, times=None,
                        body={"success": True, "errors": [], "result": "not a list"})
    record = a.history().append(deploy("v1"))  # never raises: the deploy it records happened
    assert [r.id for r in a.history().unsynced] == [record.id]
    assert any("unexpected answer: AttributeError" in w for w in a.warnings)


def legacy_kv(emulator: Emulator, *records: LedgerRecord) -> None:
    """What an earlier dome-tasks left in the account: the history in Workers KV."""
    KvStore(CloudflareApi.from_environ(emulator.env())).put(list(records))


def test_the_kv_history_is_carried_over_into_d1_once(machines, emulator) -> None:
    old = [deploy("v-kv-1", time="2026-03-01T09:00:00.000Z"),
           deploy("v-kv-2", time="2026-03-02T09:00:00.000Z", environment="production")]
    legacy_kv(emulator, *old)
    a = machines("a")
    new = a.history().append(deploy("v-d1", time="2026-03-03T09:00:00.000Z"))
    assert sorted(r["id"] for r in rows(emulator)) == sorted([old[0].id, old[1].id, new.id])
    assert a.warnings == [f"history: carried 2 record(s) over from Workers KV ({NAMESPACE_TITLE}) "
                          f"into D1 ({DATABASE_NAME}); the KV namespace is no longer written"]
    emulator.clear_requests()
    b = machines("b")
    seen = b.history().records("silo", "staging")
    assert [r.version_id for r in seen] == ["v-kv-1", "v-d1"]
    assert kv_calls(emulator, "GET", "") == 0 and b.warnings == []  # carried over once only
    assert [len(ns.entries) for ns in emulator.state.kv.values()] == [2]  # KV left as it was


def test_before_the_database_exists_reads_list_kv_and_create_nothing(machines, emulator) -> None:
    legacy_kv(emulator, deploy("v-kv"))
    seen = machines("laptop").history().records("silo", "staging")
    assert [r.version_id for r in seen] == ["v-kv"]
    assert emulator.state.d1 == {} and d1_calls(emulator, "POST", "$") == 0
