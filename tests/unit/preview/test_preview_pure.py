"""The pure parts of previews: the derived environment, the teardown decision, the seed check
(the secrets decision and the dotenv reader: tests/unit/secrets/test_secrets_pure.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dome_tasks.adopt.resources import Inventory
from dome_tasks.errors import ManifestError, UsageError
from dome_tasks.manifest.loader import load, loads
from dome_tasks.preview.derive import parse_number, preview_manifest
from dome_tasks.preview.down import decide_down
from dome_tasks.preview.record import Owned, PreviewRecord
from tests.helpers import SAMPLE


@pytest.fixture(scope="module")
def sample():
    return load(SAMPLE / "dome.yaml")


def test_a_preview_binds_only_its_own_workers_and_resources(sample) -> None:
    preview = preview_manifest(sample, "stg", 7)
    silo = preview.resolve("silo", "pr-7")
    api = preview.resolve("dome-api", "pr-7")
    assert (silo.name, silo.routes, silo.workers_dev) == ("silo-pr-7", (), True)
    assert silo.d1_databases[0].database_name == "silo-db-pr-7"
    assert silo.d1_databases[0].database_id is None  # looked up by name once created
    assert silo.r2_buckets[0].bucket_name == "silo-objects-pr-7"
    assert silo.queue_producers[0].queue == "silo-events-pr-7"
    assert preview.resolve("constellation", "pr-7").queue_consumers[0].queue == "silo-events-pr-7"
    assert [b.worker for b in api.services] == ["constellation-pr-7", "silo-pr-7"]
    assert api.kv_namespaces[0].title == "dome-api-cache-pr-7" and api.kv_namespaces[0].id is None
    assert silo.secrets == ("SILO_API_KEY",) and dict(silo.vars)["LOG_LEVEL"] == "info"
    assert "pr-7" not in sample.environments  # the manifest itself is unchanged


def test_a_preview_name_that_is_too_long_or_taken_is_refused(sample) -> None:
    with pytest.raises(UsageError, match="pull request number"):
        parse_number("seven")
    assert parse_number("#42") == parse_number("pr-42") == 42
    with pytest.raises(UsageError, match="runs under `wrangler dev`"):
        preview_manifest(sample, "local", 7)


def test_preview_down_deletes_only_what_it_created_with_the_same_id() -> None:
    record = PreviewRecord(7, "staging", None, "t", "t", workers={"silo": "silo-pr-7"},
                           resources=(Owned("d1", "silo-db-pr-7", "aaa"),
                                      Owned("r2", "silo-objects-pr-7", "silo-objects-pr-7"),
                                      Owned("kv", "cache-pr-7", "k1")))
    inventory = Inventory()
    inventory.items["d1"]["silo-db-pr-7"] = "bbb"  # re-created by someone else since
    inventory.items["r2"]["silo-objects-pr-7"] = "silo-objects-pr-7"
    teardown = decide_down(record, {"silo-pr-7": True}, inventory, wrangler="wrangler",
                           root=Path("/repo"))
    assert [s.action.argv[1:] for s in teardown.steps] == [
        ("delete", "silo-pr-7", "--force"), ("r2", "bucket", "delete", "silo-objects-pr-7")]
    assert "someone else's" in teardown.kept[0]  # and the KV namespace is already gone


def test_a_seed_names_a_d1_binding_and_an_existing_file() -> None:
    text = (SAMPLE / "dome.yaml").read_text() + (
        "previews:\n  seed:\n    silo: {DB: services/silo/seed.sql, DBX: a.sql}\n")
    with pytest.raises(ManifestError) as error:
        loads(text, SAMPLE / "dome.yaml")
    assert "previews.seed.silo.DB: seed file 'services/silo/seed.sql' not found" in str(error.value)
    assert "'DBX' is not a D1 binding of silo (its D1 bindings: DB); did you mean 'DB'?" in str(
        error.value)
