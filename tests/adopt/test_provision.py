"""`invoke provision ENV` through the real wrangler against the emulator: it lists first,
creates only what is missing (named by the environment's convention), records the ids, and a
second run creates nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dome_tasks.adopt.resources import Inventory, Need, decide
from dome_tasks.testing.emulator import Emulator
from tests.adopt.adopt_helpers import invoke

pytestmark = pytest.mark.integration

STAGING_DB = "00000000-0000-4000-8000-000000000003"
STAGING_KV = "0123456789abcdef0123456789abcd03"


def creates(emulator: Emulator) -> list[str]:
    """The create calls the account saw (method and path)."""
    return [f"{r.method} {r.path.split('/', 3)[-1]}" for r in emulator.requests
            if r.method == "POST" and not r.path.endswith(("/query", "/raw"))]


@pytest.fixture
def imported(redeclared: Path) -> Path:
    done = invoke(redeclared, "import")
    assert done.returncode == 0, done.stdout + done.stderr
    return redeclared


@pytest.fixture
def account(emulator: Emulator) -> Emulator:
    """Staging's declared database and namespace exist; production's Vectorize index too."""
    emulator.state.add_d1("silo-db-staging", STAGING_DB)
    emulator.state.add_kv("silo-cache-staging", STAGING_KV)
    emulator.state.add_vectorize("api-index", 32, "euclidean")
    return emulator


def test_dry_run_reads_what_exists_and_only_shows_the_creates(imported, account, guard) -> None:
    done = invoke(imported, "provision", "staging", "--dry-run", emulator=account, guard=guard)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "wrangler r2 bucket create silo-objects-staging" in out
    assert "wrangler queues create silo-jobs-staging" in out
    assert "wrangler vectorize create api-index-staging --dimensions 32 --metric euclidean" in out
    assert f"exists       D1 database      silo-db-staging                  {STAGING_DB}" in out
    assert "staging: 3 to create, 2 exist (dry run: nothing was created)" in out
    assert creates(account) == []
    assert not (imported / ".dome" / "resources.json").exists()


def test_provision_creates_what_is_missing_once_and_records_ids(imported, account, guard) -> None:
    first = invoke(imported, "provision", "stg", emulator=account, guard=guard)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "staging: created 3, 2 already existed" in first.stdout
    state = account.state
    assert "silo-objects-staging" in state.buckets
    assert state.queue_by_name("silo-jobs-staging")
    index = state.vectorize["api-index-staging"]
    assert (index.dimensions, index.metric) == (32, "euclidean")  # copied from production's
    lock = json.loads((imported / ".dome" / "resources.json").read_text())
    ids = lock["accounts"][state.account_id]
    assert ids["d1"] == {"silo-db-staging": STAGING_DB}
    assert ids["queue"]["silo-jobs-staging"] == state.queue_by_name("silo-jobs-staging").queue_id
    account.clear_requests()
    again = invoke(imported, "provision", "staging", emulator=account, guard=guard)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "staging: created 0, 5 already existed" in again.stdout
    assert creates(account) == []


def test_an_id_that_does_not_exist_stops_everything(imported, emulator, guard) -> None:
    emulator.state.add_d1("silo-db-staging", STAGING_DB)  # but no KV namespace with that id
    done = invoke(imported, "provision", "staging", emulator=emulator, guard=guard)
    assert done.returncode == 1
    assert f"KV namespace id {STAGING_KV} (silo.CACHE) does not exist in the account" in done.stdout
    assert "nothing was created" in done.stderr and "Traceback" not in done.stderr
    assert creates(emulator) == []


def test_a_deploy_after_provision_binds_what_provision_created(imported, account, guard) -> None:
    """provision creates the missing queues; the deploy then creates nothing of its own (the
    pinned wrangler would otherwise create a missing queue itself, outside dome's record)."""
    def queues() -> set[str]:
        return {q.queue_name for q in account.state.queues.values()}

    assert "silo-jobs-staging" not in queues()
    assert invoke(imported, "provision", "staging", emulator=account, guard=guard).returncode == 0
    provisioned = queues()
    assert "silo-jobs-staging" in provisioned
    after = invoke(imported, "deploy-env", "all", "staging", "--no-verify",
                   emulator=account, guard=guard)
    assert after.returncode == 0, after.stdout + after.stderr
    assert queues() == provisioned and "Creating new Queue" not in after.stdout
    api = account.state.worker("api-staging").current_version()
    assert api.binding("INDEX")["index_name"] == "api-index-staging"
    assert account.state.worker("silo-staging").current_version().binding("DB")["id"] == STAGING_DB


def test_local_has_nothing_to_provision(imported) -> None:
    done = invoke(imported, "provision", "local")
    assert done.returncode != 0
    assert "runs under `wrangler dev` with its own local state" in done.stderr


def test_decisions_by_name_and_by_id() -> None:
    inventory = Inventory()
    inventory.items["d1"] = {"a-db": "11111111-0000-4000-8000-000000000000"}
    named = Need("d1", "a-db", None, None, ("a.DB",))
    assert decide(named, inventory).action == "exists"
    wrong_id = Need("d1", "a-db", "22222222-0000-4000-8000-000000000000", None, ("a.DB",))
    assert "has id 11111111" in (decide(wrong_id, inventory).problem or "")
    assert decide(Need("d1", "b-db", None, None, ("b.DB",)), inventory).action == "create"
    upper = Need("d1", "a-db", "11111111-0000-4000-8000-000000000000".upper(), None, ())
    assert decide(upper, inventory).action == "exists"  # ids compare in any case


def test_the_corpus_development_resources_are_created_by_name(corpus, emulator, guard) -> None:
    assert invoke(corpus, "import").returncode == 0
    emulator.state.add_vectorize("constellation-index", 768, "cosine")
    done = invoke(corpus, "provision", "dev", emulator=emulator, guard=guard)
    assert done.returncode == 0, done.stdout + done.stderr
    state = emulator.state
    assert state.d1_by_name("silo-db-dev")
    assert {ns.title for ns in state.kv.values()} == {"silo-cache-dev"}
    assert "silo-objects-dev" in state.buckets
    assert {q.queue_name for q in state.queues.values()} == {"silo-jobs-dev", "silo-jobs-dlq-dev"}
    assert "constellation-index-dev" in state.vectorize
    lock = json.loads((corpus / ".dome" / "resources.json").read_text())
    assert lock["accounts"][state.account_id]["d1"]["silo-db-dev"] == (
        state.d1_by_name("silo-db-dev").uuid)


def test_ids_left_to_a_lookup_come_from_what_provision_recorded(tmp_path: Path) -> None:
    from dataclasses import replace

    from dome_tasks.adopt.resources import ResourceLock, with_ids
    from dome_tasks.manifest.model import D1Database, WorkerConfig

    lock = ResourceLock.load(tmp_path)
    lock.record("acc", "d1", "a-db-staging", "11111111-0000-4000-8000-000000000000")
    lock.save()
    config = WorkerConfig(service="a", environment="staging", name="a-staging",
                          service_dir=tmp_path, main="x.js", compatibility_date="2025-01-01",
                          account_id="acc",
                          d1_databases=(
                              D1Database("DB", "a-db-staging", ""),
                              D1Database("OLD", "a-db-old", "22222222-0000-4000-8000-000000000000"),
                          ))
    filled = with_ids(config, ResourceLock.load(tmp_path))
    assert [d.database_id for d in filled.d1_databases] == [
        "11111111-0000-4000-8000-000000000000", "22222222-0000-4000-8000-000000000000"]
    other_account = replace(config, account_id="other")
    assert with_ids(other_account, ResourceLock.load(tmp_path)) is other_account
