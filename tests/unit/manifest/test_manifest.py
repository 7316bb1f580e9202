"""Manifest loading: the sample, merge order, naming per environment, the public API."""

from __future__ import annotations

from pathlib import Path

import pytest

from dome_tasks.errors import UsageError
from dome_tasks.manifest.loader import load
from dome_tasks.manifest.model import LocalSettings, ServiceBinding

SAMPLE = Path(__file__).resolve().parents[3] / "sample" / "dome.yaml"


@pytest.fixture(scope="module")
def sample():
    return load(SAMPLE)


# -- the sample ---------------------------------------------------------------------------


def test_sample_services_and_environments(sample):
    assert sample.services == ("silo", "constellation", "dome-api")
    assert list(sample.environments) == ["development", "staging", "production", "local"]
    assert sample.path == SAMPLE
    assert sample.root == SAMPLE.parent
    assert sample.templates_dir is None


def test_sample_silo_staging(sample):
    silo = sample.resolve("silo", "staging")
    assert silo.name == "silo-staging"
    assert silo.service_dir == SAMPLE.parent / "services" / "silo"
    assert [(d.binding, d.database_name, d.database_id, d.migrations_dir)
            for d in silo.d1_databases] == [
        ("DB", "silo-db-staging", "00000000-0000-4000-8000-0000000000a1", "migrations")
    ]
    assert [r.bucket_name for r in silo.r2_buckets] == ["silo-objects-staging"]
    producers = [(q.binding, q.queue) for q in silo.queue_producers]
    assert producers == [("EVENTS", "silo-events-staging")]
    assert silo.secrets == ("SILO_API_KEY",)
    assert silo.vars == (("LOG_LEVEL", "info"), ("SERVICE_NAME", "silo"))
    assert silo.observability is True
    assert silo.health_path == "/health"
    assert silo.account_id == "0123456789abcdef0123456789abcdef"


def test_sample_dome_api_staging_binds_staging_workers(sample):
    api = sample.resolve("dome-api", "stg")
    assert api.services == (
        ServiceBinding("CONSTELLATION", "constellation", "constellation-staging"),
        ServiceBinding("SILO", "silo", "silo-staging"),
    )
    assert [k.id for k in api.kv_namespaces] == ["000000000000000000000000000005a1"]
    assert api.dependencies == ("constellation", "silo")


def test_sample_production_has_no_suffix(sample):
    api = sample.resolve("dome-api", "prod")
    assert api.name == "dome-api"
    assert [b.worker for b in api.services] == ["constellation", "silo"]
    assert sample.environment("prod").protected


def test_sample_development_vars_and_consumers(sample):
    constellation = sample.resolve("constellation", "dev")
    assert constellation.name == "constellation-dev"
    assert dict(constellation.vars)["LOG_LEVEL"] == "debug"
    # lists replace: the override's consumer list is used as written (it repeats the batch size)
    assert [(c.queue, c.max_batch_size) for c in constellation.queue_consumers] == [
        ("silo-events-dev", 10)
    ]


def test_sample_local(sample):
    local = sample.environment("local")
    assert local.is_local and local.suffix == "-local"
    assert local.local == LocalSettings(8787, 8799, ".dome/local")
    assert sample.resolve("constellation", "local").services[0].worker == "silo-local"


def test_sample_order_waves_dependencies(sample):
    assert sample.deploy_order() == ["silo", "constellation", "dome-api"]
    assert sample.deploy_order(["dome-api", "silo"]) == ["silo", "dome-api"]
    assert sample.deploy_order("dome-api") == ["dome-api"]
    assert sample.waves() == [["silo"], ["constellation"], ["dome-api"]]
    assert sample.waves(["dome-api", "silo"]) == [["silo"], ["dome-api"]]
    assert sample.dependencies("dome-api") == ("constellation", "silo")
    assert sample.dependencies("silo") == ()
    assert sample.dependents("silo") == ("constellation", "dome-api")
    assert sample.dependents("constellation") == ("dome-api",)
    assert sample.dependents("silo", transitive=True) == ("constellation", "dome-api")


def test_sample_service(sample):
    silo = sample.service("silo")
    assert silo.name == "silo"
    assert silo.directory == SAMPLE.parent / "services" / "silo"


def test_manifest_is_immutable(sample):
    with pytest.raises(AttributeError):
        sample.services = ()  # type: ignore[misc]
    with pytest.raises(TypeError):
        sample.environments["x"] = sample.environments["local"]  # type: ignore[index]


# -- lookups --------------------------------------------------------------------------------


def test_unknown_environment_is_a_usage_error(sample):
    with pytest.raises(UsageError) as caught:
        sample.environment("stagin")
    assert caught.value.message == "unknown environment 'stagin'; did you mean 'staging'?"
    assert caught.value.hint == (
        "valid environments: development (dev), staging (stg), production (prod), local"
    )


def test_unknown_environment_without_near_miss(sample):
    with pytest.raises(UsageError) as caught:
        sample.environment("qa")
    assert caught.value.message == "unknown environment 'qa'"


def test_unknown_service_is_a_usage_error(sample):
    with pytest.raises(UsageError) as caught:
        sample.resolve("sillo", "staging")
    assert caught.value.message == "unknown service 'sillo'; did you mean 'silo'?"
    assert caught.value.hint == "services in dome.yaml: silo, constellation, dome-api"
    with pytest.raises(UsageError, match="unknown service 'nope'"):
        sample.deploy_order(["silo", "nope"])


def test_only_in_a_service_deploys_where_it_is_listed(load_yaml):
    m = load_yaml("""\
    silo: {}
    reference-test:
      only_in: [production, local]
    """)
    assert m.services_in("staging") == ("silo",)
    assert m.services_in("production") == ("silo", "reference-test")
    assert m.deploys("reference-test", "prod") and not m.deploys("reference-test", "stg")
    with pytest.raises(UsageError) as caught:
        m.resolve("reference-test", "staging")
    assert caught.value.message == "reference-test does not deploy to staging"
    assert "only_in" in caught.value.hint


# -- merge order ----------------------------------------------------------------------------

MERGE = """\
version: 1
defaults:
  compatibility_date: "2025-01-01"
  compatibility_flags: [nodejs_compat]
  main: src/index.js
  workers_dev: false
  vars: {LEVEL: defaults, FROM_DEFAULTS: d, SHARED: defaults}
environments:
  development: {suffix: "-dev", vars: {LEVEL: environment}, workers_dev: true}
  staging: {suffix: "-staging", vars: {LEVEL: environment}}
  production: {suffix: ""}
services:
  api:
    compatibility_flags: [streams_enable_constructors]
    vars: {LEVEL: service, FROM_SERVICE: s}
    routes: [api.example.com/*]
    d1_databases:
      DB: {database_name: api-db, database_id: "00000000-0000-4000-8000-000000000001",
           migrations_dir: migrations}
    environments:
      development:
        routes: [api-dev.example.com/*]
        d1_databases:
          DB: {database_name: api-db-dev, database_id: "00000000-0000-4000-8000-000000000003"}
      staging:
        vars: {LEVEL: override, FROM_OVERRIDE: o}
        workers_dev: true
        routes: [{pattern: staging.example.com/*, zone_name: example.com}]
        d1_databases:
          DB: {database_name: api-db-staging, database_id: "00000000-0000-4000-8000-000000000002"}
"""


def test_merge_order_each_level_wins_over_the_previous(load_yaml):
    m = load_yaml(MERGE, full=True)
    assert dict(m.resolve("api", "production").vars)["LEVEL"] == "service"
    assert dict(m.resolve("api", "development").vars)["LEVEL"] == "environment"
    assert dict(m.resolve("api", "staging").vars)["LEVEL"] == "override"
    assert dict(m.resolve("api", "local").vars)["LEVEL"] == "service"


def test_merge_mappings_merge_by_key(load_yaml):
    staging = load_yaml(MERGE, full=True).resolve("api", "staging")
    assert staging.vars == (
        ("LEVEL", "override"),
        ("FROM_DEFAULTS", "d"),
        ("SHARED", "defaults"),
        ("FROM_SERVICE", "s"),
        ("FROM_OVERRIDE", "o"),
    )
    db = staging.d1_databases[0]
    assert (db.database_name, db.migrations_dir) == ("api-db-staging", "migrations")


def test_merge_lists_replace(load_yaml):
    m = load_yaml(MERGE, full=True)
    assert m.resolve("api", "production").compatibility_flags == ("streams_enable_constructors",)
    assert [r.pattern for r in m.resolve("api", "production").routes] == ["api.example.com/*"]
    staging_routes = m.resolve("api", "staging").routes
    assert [(r.pattern, r.zone_name) for r in staging_routes] == [
        ("staging.example.com/*", "example.com")
    ]


def test_merge_workers_dev_defaults_environment_override(load_yaml):
    m = load_yaml(MERGE, full=True)
    assert m.resolve("api", "production").workers_dev is False  # defaults
    assert m.resolve("api", "development").workers_dev is True  # environment
    assert m.resolve("api", "staging").workers_dev is True  # service override


# -- naming per environment --------------------------------------------------------------


def test_names_per_environment_and_aliases(load_yaml):
    m = load_yaml("silo: {}\napi: {services: {SILO: silo}}\n")
    assert [m.resolve("api", e).name for e in ("dev", "stg", "prod", "local")] == [
        "api-dev", "api-staging", "api", "api-local"
    ]
    assert [m.resolve("api", e).services[0].worker for e in ("development", "staging")] == [
        "silo-dev", "silo-staging"
    ]
    assert m.environment("dev") is m.environment("development")


def test_worker_name_of_63_characters_including_suffix_is_accepted(load_yaml):
    name = "s" * (63 - len("-staging"))
    assert len(load_yaml(f"{name}: {{}}\n").resolve(name, "staging").name) == 63


def test_conventional_aliases_when_none_are_declared(load_yaml):
    m = load_yaml(
        """\
        version: 1
        environments:
          development: {suffix: "-dev"}
          staging: {suffix: "-staging", aliases: []}
          production: {suffix: ""}
        services: {}
        """,
        full=True,
    )
    assert m.environment("dev").name == "development"
    assert m.environment("prod").name == "production"
    assert m.environment("staging").aliases == ()  # declared: no alias added
    with pytest.raises(UsageError):
        m.environment("stg")


def test_default_local_environment_is_added(load_yaml):
    m = load_yaml("silo: {}\n")
    local = m.environment("local")
    assert (local.kind, local.suffix, local.local) == (
        "local", "-local", LocalSettings(8787, 8799, ".dome/local")
    )
    assert m.resolve("silo", "local").workers_dev is None


def test_declared_local_environment_is_kept(load_yaml):
    m = load_yaml(
        """\
        version: 1
        defaults: {compatibility_date: "2025-01-01", main: src/index.js}
        environments:
          production: {suffix: ""}
          local: {ports: "9000", state_dir: .state}
        services:
          silo: {}
        """,
        full=True,
    )
    assert list(m.environments) == ["production", "local"]
    assert m.environment("local").local == LocalSettings(9000, 9000, ".state")
    assert m.resolve("silo", "local").name == "silo-local"


# -- every value kind ------------------------------------------------------------------------

FULL = """\
version: 1
templates: my-templates
defaults:
  compatibility_date: 2025-02-03
  main: src/index.js
  health_path: null
environments:
  production: {suffix: "", account_id: "0123456789abcdef0123456789abcdef"}
services:
  host: {}
  api:
    path: workers/api
    build: "npm run build -- --mode 'prod env'"
    smoke: ["curl -f http://x/health", [node, smoke.js]]
    health_url: https://api.example.com/health
    observability: {enabled: true}
    secrets: [TOKEN]
    vars: {N: 3, F: 1.5, B: true, S: "x"}
    depends_on: [host]
    services:
      HOST: {service: host, entrypoint: Admin}
    vectorize:
      INDEX: {index_name: embeddings}
    ai: {binding: AI}
    durable_objects:
      ROOM: {class_name: Room}
      REMOTE: {class_name: Counter, service: host}
    durable_object_migrations:
      - {tag: v1, new_sqlite_classes: [Room]}
    queues:
      producers: {JOBS: {queue: jobs}}
      consumers:
        - {queue: jobs, max_batch_size: 5, max_batch_timeout: 2, max_retries: 3,
           dead_letter_queue: jobs-dlq}
"""


def test_every_value_kind(load_yaml):
    m = load_yaml(FULL, full=True)
    api = m.resolve("api", "production")
    assert m.templates_dir == m.root / "my-templates"
    assert api.compatibility_date == "2025-02-03"  # an unquoted date stays the written text
    assert api.service_dir == m.root / "workers" / "api"
    assert api.build == ("npm", "run", "build", "--", "--mode", "prod env")
    assert api.smoke == (("curl", "-f", "http://x/health"), ("node", "smoke.js"))
    assert api.health_path is None
    assert api.health_url == "https://api.example.com/health"
    assert api.secrets == ("TOKEN",)
    assert api.vars == (("N", 3), ("F", 1.5), ("B", True), ("S", "x"))
    assert api.services[0] == ServiceBinding("HOST", "host", "host", "Admin")
    assert [(v.binding, v.index_name) for v in api.vectorize] == [("INDEX", "embeddings")]
    assert api.ai_binding == "AI"
    assert [(d.binding, d.class_name, d.script_name) for d in api.durable_objects] == [
        ("ROOM", "Room", None), ("REMOTE", "Counter", "host")
    ]
    assert api.durable_object_migrations[0].new_sqlite_classes == ("Room",)
    consumer = api.queue_consumers[0]
    assert (consumer.max_batch_size, consumer.max_retries, consumer.dead_letter_queue) == (
        5, 3, "jobs-dlq"
    )
    assert api.depends_on == ("host",)
    assert m.deploy_order() == ["host", "api"]
    assert m.resolve("api", "local").durable_objects[1].script_name == "host-local"


def test_anchors_work_inside_known_keys(load_yaml):
    m = load_yaml(
        """\
        version: 1
        defaults:
          compatibility_date: "2025-01-01"
          main: src/index.js
          vars: &vars {A: "1", B: "2"}
        environments:
          production: {suffix: ""}
        services:
          one:
            vars:
              <<: *vars
              B: "3"
        """,
        full=True,
    )
    assert m.resolve("one", "production").vars == (("A", "1"), ("B", "3"))
