"""The intent of each (service, environment): every binding in every environment, each
environment's own resources, service bindings within one environment, and every guess said."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dome_tasks.adopt.intent import NOT_INHERITED, Adoption, compute
from dome_tasks.adopt.read import AdoptError, find_configs, read
from dome_tasks.adopt.write import manifest_data
from tests.adopt.adopt_helpers import FIXTURES
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def adoption() -> Adoption:
    root = FIXTURES / "monorepo"
    return compute([read(p) for p in find_configs(root)], root)


def by(items: list[dict[str, Any]], key: str = "binding") -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def guesses_about(adoption: Adoption, service: str, env: str | None = None) -> list[str]:
    return [g.text for g in adoption.guesses
            if g.service == service and (env is None or g.environment == env)]


def test_the_keys_wrangler_does_not_inherit_are_the_pinned_schemas() -> None:
    schema = json.loads((ROOT / "node_modules/wrangler/config-schema.json").read_text())
    properties = schema["definitions"]["RawEnvironment"]["properties"]
    said = {key for key, spec in properties.items()
            if "not automatically inherited" in (spec.get("description") or "").lower()}
    # durable_objects: its description moved away in wrangler 4.164 (it is still not inherited)
    assert said | {"durable_objects"} == NOT_INHERITED


def test_environments_dev_staging_production_with_learned_suffixes(adoption: Adoption) -> None:
    envs = {e.name: (e.suffix, e.aliases) for e in adoption.environments}
    assert envs == {"development": ("-dev", ("dev",)), "staging": ("-staging", ("stg",)),
                    "production": ("", ("prod",))}
    assert [s.name for s in adoption.services] == ["web", "constellation", "dome-api", "silo", "cron"]
    assert len(adoption.intents) == 12  # web is production only: nothing is invented for it


def test_staging_gets_every_binding_its_own_resources_and_keeps_what_its_block_declares(
    adoption: Adoption,
) -> None:
    staging = adoption.intents["silo", "staging"]
    assert staging["name"] == "silo-staging"
    assert by(staging["d1_databases"])["DB"] == {  # the env block's own database, as written
        "binding": "DB", "database_name": "silo-db-staging",
        "database_id": "00000000-0000-4000-8000-000000000003"}
    assert by(staging["kv_namespaces"])["CACHE"] == {"binding": "CACHE",
                                                     "title": "silo-cache-staging"}
    assert by(staging["r2_buckets"])["BUCKET"]["bucket_name"] == "silo-objects-staging"
    assert staging["queues"]["producers"] == [{"binding": "JOBS", "queue": "silo-jobs-staging"}]
    assert staging["vars"] == {"LOG_LEVEL": "info", "API_VERSION": 2}
    assert "routes" not in staging  # production's custom domain stays in production
    assert staging["observability"] == {"enabled": True, "head_sampling_rate": 0.1}
    assert staging["dev"] == {"port": 8801, "local_protocol": "http"}
    said = guesses_about(adoption, "silo", "staging")
    assert any(t.startswith("KV CACHE: added from the top level") and "silo-cache-staging" in t
               for t in said)
    assert any("routes not carried over" in t for t in said)
    assert not any(t.startswith("D1 DB") for t in said)  # declared by the block: no guess


def test_production_is_the_top_level_as_written(adoption: Adoption) -> None:
    production = adoption.intents["silo", "production"]
    assert production["name"] == "silo"
    assert by(production["d1_databases"])["DB"]["database_id"] == (
        "00000000-0000-4000-8000-000000000001")
    assert by(production["kv_namespaces"])["CACHE"] == {
        "binding": "CACHE", "id": "0123456789abcdef0123456789abcd01"}
    assert production["routes"] == [{"pattern": "silo.example.com", "custom_domain": True}]
    assert guesses_about(adoption, "silo", "production") == []


def test_service_bindings_and_queues_stay_within_the_environment(adoption: Adoption) -> None:
    dev = adoption.intents["constellation", "development"]
    assert dev["services"] == [{"binding": "SILO", "service": "silo-dev"}]  # legacy key dropped
    assert dev["queues"]["consumers"] == [{
        "queue": "silo-jobs-dev", "max_batch_size": 10, "max_batch_timeout": 5,
        "max_retries": 3, "max_concurrency": 2, "dead_letter_queue": "silo-jobs-dlq-dev"}]
    assert dev["vectorize"] == [{"binding": "INDEX", "index_name": "constellation-index-dev"}]
    assert dev["ai"] == {"binding": "AI"} and dev["triggers"] == {"crons": ["*/15 * * * *"]}
    said = guesses_about(adoption, "constellation", "development")
    assert 'service binding SILO: the legacy `environment = "production"` key is dropped' in said
    assert any("stray `binding` key" in g.text for g in adoption.guesses)
    api = adoption.intents["dome-api", "staging"]
    assert by(api["services"]) == {
        "SILO": {"binding": "SILO", "service": "silo-staging"},
        "CONSTELLATION": {"binding": "CONSTELLATION", "service": "constellation-staging",
                          "entrypoint": "Search"}}
    assert api["routes"] == [{"pattern": "api-staging.example.com/*", "zone_name": "example.com"}]
    assert [b["name"] for b in api["durable_objects"]["bindings"]] == ["SESSIONS", "COUNTER"]
    assert [m["tag"] for m in api["migrations"]] == ["v1", "v2"]


def test_a_worker_without_env_blocks_is_not_invented_elsewhere(adoption: Adoption) -> None:
    assert ("web", "staging") not in adoption.intents
    assert not adoption.deploys("web", "staging") and adoption.deploys("web", "production")
    web = adoption.intents["web", "production"]
    assert web["name"] == "web"
    assert web["assets"] == {"directory": "./public", "binding": "ASSETS"}
    said = guesses_about(adoption, "web", "staging")
    assert said == ["no [env.*] block for staging: not deployed there (only_in); to deploy it, "
                    "add staging to services.web.only_in"]


def test_an_env_prod_block_is_production_and_the_top_level_only_its_base(adoption: Adoption) -> None:
    cron = adoption.intents["cron", "production"]
    assert cron["name"] == "cron" and cron["vars"] == {"MODE": "live"}
    assert cron["services"] == [{"binding": "SILO", "service": "silo"}]
    assert cron["triggers"] == {"crons": ["0 3 * * *"]}
    assert adoption.service("cron").blocks["production"] == "prod"


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def compute_tree(root: Path) -> Adoption:
    return compute([read(p) for p in find_configs(root)], root)


def test_an_env_block_declaring_productions_database_shares_it_on_purpose(tmp_path: Path) -> None:
    write(tmp_path, "services/a/wrangler.toml", """
name = "a"
[[d1_databases]]
binding = "DB"
database_name = "a-db"
database_id = "00000000-0000-4000-8000-00000000000a"
[env.staging]
[[env.staging.d1_databases]]
binding = "DB"
database_name = "a-db"
database_id = "00000000-0000-4000-8000-00000000000A"
""")
    adoption = compute_tree(tmp_path)
    (db,) = adoption.intents["a", "staging"]["d1_databases"]
    assert db["shared"] is True
    assert any("kept shared" in t for t in guesses_about(adoption, "a", "staging"))


def test_the_suffix_most_workers_use_wins_and_the_others_keep_their_names(tmp_path: Path) -> None:
    for name, staging in (("a", "a-stg"), ("b", "b-stg"), ("c", "c-staging")):
        write(tmp_path, f"services/{name}/wrangler.toml",
              f'name = "{name}"\n[env.staging]\nname = "{staging}"\n')
    adoption = compute_tree(tmp_path)
    assert adoption.environment("staging").suffix == "-stg"
    # worker names above all: c keeps the worker wrangler deploys today
    assert adoption.intents["c", "staging"]["name"] == "c-staging"
    assert manifest_data(adoption)["services"]["c"]["environments"]["staging"]["name"] == (
        "c-staging")


def test_a_binding_to_a_worker_outside_the_monorepo_is_kept_and_said(tmp_path: Path) -> None:
    write(tmp_path, "services/a/wrangler.toml",
          'name = "a"\nservices = [{ binding = "AUTH", service = "auth-worker" }]\n')
    adoption = compute_tree(tmp_path)
    assert adoption.intents["a", "production"]["services"] == [
        {"binding": "AUTH", "service": "auth-worker"}]
    assert any("'auth-worker' is not an imported worker" in t
               for t in guesses_about(adoption, "a"))


def test_two_configs_with_one_worker_name_are_both_kept_and_said(tmp_path: Path) -> None:
    write(tmp_path, "services/a/wrangler.toml", 'name = "same"\n')
    write(tmp_path, "services/b/wrangler.toml", 'name = "same"\n')
    adoption = compute_tree(tmp_path)
    assert [s.name for s in adoption.services] == ["same", "b"]
    assert adoption.intents["b", "production"]["name"] == "same"  # as wrangler deploys it
    assert any("worker 'same' is deployed by another config too: this one is the service 'b'"
               in g.text for g in adoption.guesses)


def test_nothing_to_import_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(AdoptError, match="no wrangler config") as caught:
        compute_tree(tmp_path)
    assert "root of the monorepo" in str(caught.value)


def test_single_bindings_hyperdrive_and_keys_wrangler_ignores(adoption: Adoption) -> None:
    dev = adoption.intents["constellation", "development"]
    assert dev["browser"] == {"binding": "BROWSER"}
    assert dev["version_metadata"] == {"binding": "VERSION"}
    staging = adoption.intents["cron", "staging"]
    assert staging["hyperdrive"] == [{"binding": "WAREHOUSE", "shared": True,
                                      "id": "0123456789abcdef0123456789abcdef"}]
    assert "shared" not in adoption.intents["cron", "production"]["hyperdrive"][0]
    assert "miniflare" not in adoption.intents["cron", "production"]
    assert any("[miniflare] is dropped: wrangler 4 ignores it" in g.text
               for g in adoption.guesses)
