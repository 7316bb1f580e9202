"""The shared history in Cloudflare KV, through the emulator: two machines (two ledger folders)
see one history; the local ledger is a read-through cache; unreachable means queued and pushed
on the next run; rehearsals never touch the real ledger."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.lifecycle.history import (
    METADATA_LIMIT,
    NAMESPACE_TITLE,
    History,
    metadata_summary,
    record_key,
)
from dome_tasks.lifecycle.ledger import Ledger, LedgerRecord, last_healthy_version
from dome_tasks.manifest.loader import Manifest, load
from dome_tasks.testing.emulator import Emulator
from tests.conftest import SAMPLE


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


def test_a_record_written_on_machine_a_shows_in_history_on_machine_b(machines, emulator) -> None:
    a, b = machines("ci-runner"), machines("laptop")
    written = a.history().append(deploy("v-ci", actor="github:alice"))

    seen = b.history().records("silo", "staging")
    assert [(r.id, r.version_id, r.actor) for r in seen] == [(written.id, "v-ci", "github:alice")]
    assert seen[0] == written  # exactly the same record, field for field
    # B's local ledger now caches it (read-through): it shows even when Cloudflare is away
    assert [r.id for r in Ledger(b.ledger_path).read().records] == [written.id]
    emulator.faults.add(path="/storage/kv", times=None, status=503)
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


def test_one_namespace_per_account_one_key_per_record_with_the_record_as_metadata(
        machines, emulator) -> None:
    a = machines("a")
    first = a.history().append(deploy("v1"))
    second = a.history().append(deploy("v1", environment="production",
                                       time="2026-03-04T11:00:00.000Z"))
    (namespace,) = emulator.state.kv.values()
    assert namespace.title == NAMESPACE_TITLE
    assert kv_calls(emulator, "POST", "$") == 1  # created on the first write only
    assert namespace.names() == [
        f"production/silo/2026-03-04T11:00:00.000Z-deploy-{second.id}",
        f"staging/silo/2026-03-04T10:00:00.000Z-deploy-{first.id}",
    ]
    entry = namespace.entries[record_key(first)]
    assert json.loads(entry.value) == json.loads(first.to_json())
    assert entry.metadata == json.loads(first.to_json())
    emulator.clear_requests()
    assert len(machines("b").history().read().records) == 2
    assert kv_calls(emulator, "GET", "/[^/]+/values/") == 0  # listing alone gave the history


def test_a_long_record_has_partial_metadata_and_is_read_whole(machines, emulator) -> None:
    long = deploy("v9", reason="health: FAILED " + "x" * 3000, extra={"targets": ["https://a"] * 50})
    summary = metadata_summary(long)
    assert summary["partial"] is True and summary["version_id"] == "v9"
    assert len(json.dumps(summary, separators=(",", ":")).encode()) <= METADATA_LIMIT
    machines("a").history().append(long)
    emulator.clear_requests()
    (seen,) = machines("b").history().records("silo", "staging")
    assert seen == long
    assert kv_calls(emulator, "GET", "/[^/]+/values/") == 1


def test_listing_follows_the_cursor_past_one_page(machines, emulator) -> None:
    a = machines("a")
    history = a.history()
    store = history.stores["staging"]
    records = [deploy(f"v{n}", time=f"2026-03-04T10:{n // 60:02d}:{n % 60:02d}.000Z")
               for n in range(1203)]
    store.put(records)
    emulator.clear_requests()
    seen = machines("b").history().records("silo", "staging")
    assert [r.id for r in seen] == [r.id for r in records]
    assert kv_calls(emulator, "GET", "/[^/]+/keys") == 2


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
    emulator.faults.add(path="/bulk$", method="PUT", status=500, times=None)
    record = a.history().append(deploy("v-offline"))
    assert [r.id for r in Ledger(a.ledger_path).read().records] == [record.id]
    assert [r.id for r in a.history().unsynced] == [record.id]
    assert any("will be pushed on the next run" in w for w in a.warnings)
    assert machines("b").history().records("silo", "staging") == ()

    emulator.faults.clear()
    a.warnings.clear()
    next_run = a.history()
    next_run.records("silo", "staging")  # any use of the history pushes the queue first
    assert a.warnings == ["history: pushed 1 record(s) kept locally while Cloudflare was unreachable"]
    assert next_run.unsynced == []
    assert [r.id for r in machines("b").history().records("silo", "staging")] == [record.id]


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
    assert len(next(iter(emulator.state.kv.values())).entries) == 1
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
    emulator.faults.add(path="/storage/kv/namespaces$", method="GET", status=200, times=None,
                        body={"success": True, "errors": [], "result": "not a list"})
    record = a.history().append(deploy("v1"))  # never raises: the deploy it records happened
    assert [r.id for r in a.history().unsynced] == [record.id]
    assert any("unexpected answer: AttributeError" in w for w in a.warnings)
