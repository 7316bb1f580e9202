"""Every wrangler key: set per service, per environment, in defaults or an override; merged by
the same layering; checked against the pinned wrangler's JSON schema with the manifest's own
file:line; rendered into the config wrangler reads.

Services written with the ``problems``/``load_yaml`` fixtures start on line 10 (see conftest).
"""

from __future__ import annotations

import gzip
import json
import logging
import sys
from pathlib import Path

from dome_tasks.manifest import wrangler_schema
from dome_tasks.render.config import config_path, render_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[3]


def rendered(manifest, service: str, environment: str) -> dict:
    config = manifest.resolve(service, environment)
    out = config_path(manifest.root, config.environment, config.service)
    return tomllib.loads(render_config(config, manifest_path=manifest.path, out_path=out))


# -- keys of real configs, accepted and rendered -------------------------------------------------


def test_keys_of_real_configs_reach_the_rendered_config(load_yaml, tmp_path):
    (tmp_path / "services/silo/public").mkdir(parents=True)
    m = load_yaml(
        """\
        silo:
          observability: {enabled: true, head_sampling_rate: 0.1}
          triggers: {crons: ["*/5 * * * *"]}
          assets: {directory: public, binding: ASSETS, not_found_handling: single-page-application}
          dev: {port: 9999, local_protocol: http}
          limits: {cpu_ms: 50}
          placement: {mode: smart}
          keep_vars: true
          queues:
            consumers:
              - {queue: jobs, max_batch_size: 10, max_batch_timeout: 5, max_retries: 3,
                 max_concurrency: 4, retry_delay: 30, dead_letter_queue: jobs-dlq}
          hyperdrive:
            PG: {id: "0123456789abcdef0123456789abcdef", localConnectionString: "postgres://x",
                 shared: true}
        """
    )
    doc = rendered(m, "silo", "staging")
    assert doc["observability"] == {"enabled": True, "head_sampling_rate": 0.1}
    assert doc["triggers"] == {"crons": ["*/5 * * * *"]}
    assert doc["dev"] == {"port": 9999, "local_protocol": "http"}
    assert doc["limits"] == {"cpu_ms": 50}
    assert doc["placement"] == {"mode": "smart"}
    assert doc["keep_vars"] is True
    assert doc["queues"]["consumers"] == [
        {"queue": "jobs-staging", "max_batch_size": 10, "max_batch_timeout": 5, "max_retries": 3,
         "dead_letter_queue": "jobs-dlq-staging", "max_concurrency": 4, "retry_delay": 30}
    ]
    assert doc["hyperdrive"] == [
        {"binding": "PG", "id": "0123456789abcdef0123456789abcdef",
         "localConnectionString": "postgres://x"}
    ]
    # paths wrangler reads relative to the config file are rebased to the rendered file
    out = config_path(m.root, "staging", "silo")
    assert (out.parent / doc["assets"]["directory"]).resolve() == tmp_path / "services/silo/public"
    assert doc["assets"]["binding"] == "ASSETS"


def test_wrangler_keys_merge_by_the_same_layering(load_yaml):
    m = load_yaml(
        """\
        version: 1
        defaults:
          compatibility_date: "2025-01-01"
          main: src/index.js
          account_id: "0123456789abcdef0123456789abcdef"
          workers_dev: false
          limits: {cpu_ms: 50}
          triggers: {crons: ["0 * * * *"]}
        environments:
          development: {suffix: "-dev"}
          staging: {suffix: "-staging", account_id: "11111111111111111111111111111111"}
          production: {suffix: ""}
        services:
          silo:
            observability: {head_sampling_rate: 0.5}
            environments:
              development:
                workers_dev: null
                triggers: null
                limits: {subrequests: 20}
              production:
                triggers: {crons: ["0 0 * * *"]}
        """,
        full=True,
    )
    dev, staging, prod = (m.resolve("silo", e) for e in ("development", "staging", "production"))
    assert dev.workers_dev is None and "workers_dev" not in rendered(m, "silo", "development")
    assert "triggers" not in dev.extra  # null in a later layer unsets it
    assert dev.extra["limits"] == {"cpu_ms": 50, "subrequests": 20}  # mappings merge by key
    assert prod.extra["triggers"] == {"crons": ["0 0 * * *"]}  # lists are replaced
    assert staging.extra["triggers"] == {"crons": ["0 * * * *"]}
    # account_id: defaults, then the environment's own
    assert (dev.account_id, staging.account_id) == (
        "0123456789abcdef0123456789abcdef", "11111111111111111111111111111111"
    )
    # only what the manifest says: no `enabled` is invented
    assert rendered(m, "silo", "staging")["observability"] == {"head_sampling_rate": 0.5}


def test_health_path_null_means_no_health_check(load_yaml):
    m = load_yaml("silo: {health_path: null}\napi: {}\n")
    assert m.resolve("silo", "staging").health_path is None
    assert m.resolve("api", "staging").health_path == "/health"


def test_binding_fields_dome_does_not_model_pass_through(load_yaml):
    m = load_yaml(
        """\
        silo:
          r2_buckets: {BUCKET: {bucket_name: objects, jurisdiction: eu}}
          kv_namespaces: {CACHE: {id: "0123456789abcdef0123456789abcdef", shared: true,
                                  preview_id: "0123456789abcdef0123456789abcdee"}}
          services: {API: {service: api, props: {tenant: a}}}
        api: {}
        """
    )
    doc = rendered(m, "silo", "production")
    assert doc["r2_buckets"] == [{"binding": "BUCKET", "bucket_name": "objects",
                                  "jurisdiction": "eu"}]
    assert doc["kv_namespaces"] == [{"binding": "CACHE", "id": "0123456789abcdef0123456789abcdef",
                                     "preview_id": "0123456789abcdef0123456789abcdee"}]
    assert doc["services"] == [{"binding": "API", "service": "api", "props": {"tenant": "a"}}]


def test_legacy_keys_are_accepted_with_a_warning_and_dropped(load_yaml, caplog):
    caplog.set_level(logging.WARNING, logger="dome_tasks.manifest")
    m = load_yaml(
        """\
        silo:
          miniflare: {kv_persist: true}
          services: {API: {service: api, environment: production}}
        api: {}
        """
    )
    assert m.warnings == (
        "dome.yaml:11: services.silo.miniflare: wrangler 4 ignores [miniflare] (and warns about "
        "it), so dome drops it; put wrangler dev settings under dev: {...}",
        "dome.yaml:12: services.silo.services.API.environment: the legacy 'environment' key is "
        "ignored: dome binds the worker of the same environment; remove it",
    )
    assert [r.getMessage() for r in caplog.records] == list(m.warnings)
    doc = rendered(m, "silo", "staging")
    assert "miniflare" not in doc
    assert doc["services"] == [{"binding": "API", "service": "api-staging"}]


# -- checked against wrangler's schema, reported at the manifest's lines -------------------------


def test_wrong_values_of_wrangler_keys_name_the_manifest_line(problems):
    text = """\
    silo:
      triggers: {crons: "*/5 * * * *"}
      observability: {head_sampling_rate: high}
      dev: {local_protocol: gopher}
      environments:
        staging:
          limits: {cpu_ms: fifty}
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.triggers.crons: expected a list, got a string "
        "('*/5 * * * *')",
        "dome.yaml:12: services.silo.observability.head_sampling_rate: expected a number, got a "
        "string ('high')",
        "dome.yaml:13: services.silo.dev.local_protocol: a string ('gopher') is not one of: "
        "http, https",
        "dome.yaml:16: services.silo.environments.staging.limits.cpu_ms: expected a number, got "
        "a string ('fifty')",
    ]


def test_unknown_keys_get_did_you_mean_from_wrangler_and_dome(problems):
    text = """\
    silo:
      trigers: {crons: []}
      d1_databases:
        DB: {database_name: silo-db, databse_id: "00000000-0000-4000-8000-000000000001"}
      assets: {directroy: public}
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.trigers: unknown key; did you mean 'triggers'?",
        "dome.yaml:13: services.silo.d1_databases.DB.databse_id: unknown key; did you mean "
        "'database_id'?",
        "dome.yaml:14: services.silo.assets.directroy: unknown key; did you mean 'directory'?",
    ]


def test_keys_dome_writes_itself_are_refused_with_what_to_write(problems):
    text = """\
    silo:
      name: silo-worker
      env: {staging: {vars: {A: b}}}
      route: example.com/*
      migrations: [{tag: v1}]
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.name: a worker's name is the service name plus the "
        "environment's suffix; where one differs, put it under "
        "services.<service>.environments.<env>.name",
        "dome.yaml:12: services.silo.env: write what differs per environment under "
        "services.<service>.environments.<env>",
        "dome.yaml:13: services.silo.route: write it as a list: routes: [...]",
        "dome.yaml:14: services.silo.migrations: write Durable Object migrations as "
        "durable_object_migrations: [...]",
    ]


def test_without_the_workspace_schema_the_shipped_one_still_checks(problems, monkeypatch):
    # dome.schema.json (with the bundled copy of wrangler's schema) ships in the package
    monkeypatch.setattr("dome_tasks.manifest.loader.load_schema", lambda start: None)
    assert problems("silo: {triggers: {crons: 5}, trigers: 1}\n") == [
        "dome.yaml:10: services.silo.triggers.crons: expected a list, got an integer (5)",
        "dome.yaml:10: services.silo.trigers: unknown key; did you mean 'triggers'?",
    ]


def test_the_workspace_wrangler_schema_is_used(load_yaml):
    m = load_yaml("silo: {}\n")
    # tmp_path has no node_modules: the wrangler on PATH or the bundled copy answers
    assert m.wrangler_schema is not None


def test_the_bundled_schema_is_the_pinned_wranglers():
    pinned = json.loads((REPO / "node_modules/wrangler/config-schema.json").read_text())
    bundled = json.loads(gzip.decompress(wrangler_schema.BUNDLED.read_bytes()))
    version = json.loads((REPO / "node_modules/wrangler/package.json").read_text())["version"]
    assert bundled.pop("x-dome-wrangler-version") == f"wrangler {version}"
    assert bundled == pinned, "run scripts/bundle-wrangler-schema after bumping wrangler"


def test_schema_of_the_project_wrangler_is_found_next_to_it():
    found = wrangler_schema.find_schema(REPO / "sample")
    assert found == (REPO / "node_modules/wrangler/config-schema.json").resolve()


def test_json_vars_like_wrangler(load_yaml):
    m = load_yaml('silo:\n  vars: {LIMITS: {max: 5, tiers: [a, b]}, HOSTS: ["a.example.com"]}\n')
    doc = rendered(m, "silo", "staging")
    assert doc["vars"] == {"LIMITS": {"max": 5, "tiers": ["a", "b"]}, "HOSTS": ["a.example.com"]}


def test_a_wrangler_table_may_be_completed_by_another_layer(load_yaml, problems):
    m = load_yaml("silo:\n  site: {bucket: public}\n  environments:\n"
                  "    staging: {site: {include: ['*.html']}}\n")
    assert m.resolve("silo", "staging").extra["site"] == {"bucket": "public",
                                                           "include": ["*.html"]}
    assert problems("silo:\n  environments:\n    staging: {site: {include: ['*.html']}}\n") == [
        "dome.yaml:12: services.silo.environments.staging.site: missing required key 'bucket'"]
