"""Every validation rule: the exact message (file:line: key.path: what; did you mean …).

Services written with the ``problems`` fixture start on line 10 of dome.yaml (see conftest).
"""

from __future__ import annotations

import textwrap

import pytest

from dome_tasks.errors import ManifestError
from dome_tasks.manifest.loader import load

# Like conftest.HEAD (services start on line 10) but with production only, so that a
# resource written once is not "shared with production" by another environment.
PRODUCTION_ONLY = """\
version: 1
defaults:
  compatibility_date: "2025-01-01"
  main: src/index.js
environments:
  production: {suffix: "", aliases: [prod], protected: true}


services:
"""

# -- reading and parsing ---------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError) as caught:
        load(tmp_path / "nope.yaml")
    assert caught.value.message == f"{tmp_path / 'nope.yaml'}: manifest not found"


def test_malformed_yaml_has_line_and_column(problems, load_yaml):
    with pytest.raises(ManifestError) as caught:
        load_yaml("silo: [a\nx: 1\n")
    assert caught.value.message == (
        "dome.yaml:11:4: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence started on line 10)"
    )


def test_tab_indentation(load_yaml):
    with pytest.raises(ManifestError) as caught:
        load_yaml("version: 1\n\tservices: {}\n", full=True)
    assert caught.value.message.startswith("dome.yaml:2:1: invalid YAML: found a tab character")


def test_empty_file(load_yaml):
    with pytest.raises(ManifestError) as caught:
        load_yaml("# nothing\n", full=True)
    assert caught.value.message == "dome.yaml:1: the manifest is empty"


def test_root_must_be_a_mapping(problems):
    assert problems("- a\n", full=True) == ["dome.yaml:1: expected a mapping, got a list"]


def test_duplicate_key(problems):
    assert problems("silo:\n  vars: {A: a}\n  vars: {B: b}\n") == [
        "dome.yaml:12: services.silo.vars: duplicate key (first defined on line 11)"
    ]


def test_unsupported_tag(problems):
    assert problems("silo:\n  main: !include x.js\n") == [
        "dome.yaml:11: services.silo.main: unsupported YAML tag '!include'; write a plain value"
    ]


# -- unknown keys, types, required keys ------------------------------------------------------


def test_unknown_key_with_did_you_mean(problems):
    assert problems("silo:\n  d1_databses: {}\n") == [
        "dome.yaml:11: services.silo.d1_databses: unknown key; did you mean 'd1_databases'?"
    ]


def test_unknown_key_without_near_miss(problems):
    assert problems("silo:\n  colour: blue\n") == [
        "dome.yaml:11: services.silo.colour: unknown key"
    ]


def test_unknown_key_at_every_level(problems):
    text = """\
    version: 1
    defautls: {}
    environments:
      production: {suffix: "", acount_id: x}
    services:
      silo:
        main: src/index.js
        compatibility_date: "2025-01-01"
        queues: {producers: {Q: {queue: q, batch: 1}}}
        environments:
          production:
            pth: x
    """
    assert problems(text, full=True) == [
        "dome.yaml:2: defautls: unknown key; did you mean 'defaults'?",
        "dome.yaml:4: environments.production.acount_id: unknown key; did you mean 'account_id'?",
        "dome.yaml:9: services.silo.queues.producers.Q.batch: unknown key",
        "dome.yaml:12: services.silo.environments.production.pth: unknown key",
    ]


def test_wrong_types(problems):
    text = """\
    silo:
      main: [src/index.js]
      workers_dev: "yes"
      vars: {X: null, Y: [1, {a: null}]}
      secrets: API_KEY
      routes: [{pattern: a.example.com/*, custom_domain: 1}]
      build: {run: make}
      queues:
        consumers:
          - {queue: q, max_batch_size: "10"}
      services: {A: 3}
    """
    text = PRODUCTION_ONLY + textwrap.indent(textwrap.dedent(text), "  ")
    assert problems(text, full=True) == [
        "dome.yaml:11: services.silo.main: expected a string, got a list",
        "dome.yaml:12: services.silo.workers_dev: expected a boolean (true or false), "
        "got a string ('yes')",
        "dome.yaml:13: services.silo.vars.X: expected a string, number, boolean or JSON value, "
        "got null",
        "dome.yaml:13: services.silo.vars.Y: null cannot be written in TOML; leave the key out "
        "or use a string",
        "dome.yaml:14: services.silo.secrets: expected a list of secret names, or wrangler's "
        "[secrets] table, got a string ('API_KEY')",
        "dome.yaml:15: services.silo.routes[0].custom_domain: expected a boolean (true or false), "
        "got an integer (1)",
        "dome.yaml:16: services.silo.build.run: unknown key",  # not a key of wrangler's [build]
        "dome.yaml:19: services.silo.queues.consumers[0].max_batch_size: expected an integer, "
        "got a string ('10')",
        "dome.yaml:20: services.silo.services.A: expected a service name or a mapping "
        "{service or worker, entrypoint}, got an integer (3)",
    ]


def test_unparseable_build_command(problems):
    assert problems("silo:\n  build: \"npm run 'x\"\n") == [
        "dome.yaml:11: services.silo.build: cannot be split into arguments: No closing quotation"
    ]


def test_missing_top_level_keys(problems):
    assert problems("defaults: {}\n", full=True) == [
        "dome.yaml:1: missing required key 'version'",
        "dome.yaml:1: missing required key 'environments'",
        "dome.yaml:1: missing required key 'services'",
    ]


def test_unsupported_version(problems):
    text = "version: 2\nenvironments: {}\nservices: {}\n"
    assert problems(text, full=True) == [
        "dome.yaml:1: version: unsupported version 2; this dome-tasks reads version 1"
    ]


def test_missing_keys_in_list_items(problems):
    text = """\
    silo:
      routes: [{zone_name: example.com}]
      queues: {consumers: [{max_retries: 1}]}
      durable_object_migrations: [{new_classes: [Room]}]
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.routes[0]: missing required key 'pattern'",
        "dome.yaml:12: services.silo.queues.consumers[0]: missing required key 'queue'",
        "dome.yaml:13: services.silo.durable_object_migrations[0]: missing required key 'tag'",
    ]


def test_missing_compatibility_date_after_merge(problems):
    text = """\
    version: 1
    environments:
      production: {suffix: ""}
    services:
      silo: {}
    """
    assert problems(text, full=True) == [  # main is optional, as for wrangler
        "dome.yaml:5: services.silo: missing required key 'compatibility_date'",
    ]


def test_a_worker_without_main_loads_and_renders_without_one(load_yaml, tmp_path):
    """An assets-only worker (or a stub): wrangler accepts a config without `main`."""
    from dome_tasks.manifest.shape import wrangler_config

    (tmp_path / "services" / "site" / "public").mkdir(parents=True)
    manifest = load_yaml("""\
    version: 1
    defaults: {compatibility_date: "2025-01-01"}
    environments:
      production: {suffix: ""}
    services:
      site:
        assets: {directory: public}
    """, full=True, files=False)
    config = manifest.resolve("site", "production")
    assert config.main is None
    doc = wrangler_config(config, lambda p: p)
    assert "main" not in doc and doc["assets"] == {"directory": "public"}


def test_missing_binding_key_names_the_environments_lacking_it(problems):
    text = """\
    silo:
      r2_buckets:
        BUCKET: {jurisdiction: eu}
      environments:
        production:
          r2_buckets: {BUCKET: {bucket_name: silo-objects}}
        staging:
          r2_buckets: {BUCKET: {bucket_name: silo-objects-staging}}
    """
    assert problems(text) == [
        "dome.yaml:12: services.silo.r2_buckets.BUCKET: missing required key 'bucket_name' "
        "(in development, local)"
    ]


def test_missing_binding_key_everywhere(problems):
    text = """\
    silo:
      kv_namespaces: {CACHE: {}}
      queues: {producers: {JOBS: {}}}
      durable_objects: {ROOM: {service: silo}}
      d1_databases: {DB: {migrations_dir: migrations}}
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.kv_namespaces.CACHE: missing required key 'id' (or "
        "'title', to look it up by name)",
        "dome.yaml:12: services.silo.queues.producers.JOBS: missing required key 'queue'",
        "dome.yaml:13: services.silo.durable_objects.ROOM: missing required key 'class_name'",
        "dome.yaml:14: services.silo.d1_databases.DB: missing required key 'database_name'",
    ]


def test_missing_suffix(problems):
    text = """\
    version: 1
    defaults: {compatibility_date: "2025-01-01", main: src/index.js}
    environments:
      staging: {aliases: [stg]}
    services: {}
    """
    assert problems(text, full=True) == [
        "dome.yaml:4: environments.staging: missing required key 'suffix' (use \"\" for no suffix)"
    ]


def test_local_only_keys_and_ports(problems):
    text = """\
    version: 1
    environments:
      production: {suffix: "", ports: 8787}
      laptop: {suffix: "-laptop", kind: local, ports: "9000-8000"}
      box: {suffix: "-box", kind: cloud}
    services: {}
    """
    assert problems(text, full=True) == [
        "dome.yaml:3: environments.production.ports: only allowed in an environment with "
        "kind: local",
        "dome.yaml:4: environments.laptop.ports: '9000-8000' is not a port range within 1-65535 "
        "(first <= last)",
        "dome.yaml:5: environments.box.kind: a string ('cloud') is not one of: remote, local",
    ]


# -- references -------------------------------------------------------------------------------


def test_service_binding_to_unknown_service(problems):
    text = """\
    silo: {}
    api:
      services:
        SILO: sillo
        OTHER: {service: nothing}
      durable_objects:
        ROOM: {class_name: Room, service: silos}
      depends_on: [slio]
    """
    assert problems(text) == [
        "dome.yaml:13: services.api.services.SILO: unknown service 'sillo'; did you mean 'silo'?",
        "dome.yaml:14: services.api.services.OTHER.service: unknown service 'nothing'",
        "dome.yaml:16: services.api.durable_objects.ROOM.service: unknown service 'silos'; "
        "did you mean 'silo'?",
        "dome.yaml:17: services.api.depends_on[0]: unknown service 'slio'; did you mean 'silo'?",
    ]


def test_a_service_that_depends_on_itself(problems):
    text = """\
    silo:
      depends_on: [silo]
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.depends_on[0]: 'silo' cannot depend on itself; "
        "remove this entry",
    ]


def test_override_for_unknown_environment(problems):
    text = """\
    silo:
      environments:
        stagin: {}
        prod: {}
        qa: {}
    """
    assert problems(text) == [
        "dome.yaml:12: services.silo.environments.stagin: unknown environment 'stagin'; "
        "did you mean 'staging'?",
        "dome.yaml:13: services.silo.environments.prod: 'prod' is an alias; use the environment "
        "name 'production'",
        "dome.yaml:14: services.silo.environments.qa: unknown environment 'qa'",
    ]


def test_only_in_names_environments_and_keeps_bindings_inside_them(problems):
    text = """\
    silo:
      only_in: [production, stagin, dev]
      environments:
        development: {vars: {A: "1"}}
    api:
      services: {SILO: silo}
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.only_in[1]: unknown environment 'stagin'; "
        "did you mean 'staging'?",
        "dome.yaml:11: services.silo.only_in[2]: 'dev' is an alias; use the environment name "
        "'development'",
        "dome.yaml:13: services.silo.environments.development: silo does not deploy to "
        "development (its only_in: production, stagin, dev): add development there, or remove "
        "this override",
        "dome.yaml:15: services.api.services.SILO: 'silo' does not deploy to development, "
        "staging, local (services.silo.only_in): add them to its only_in, or bind it only in "
        "the environments where it deploys",
    ]


# -- duplicate binding names --------------------------------------------------------------------


def test_duplicate_binding_names_across_kinds(problems):
    text = """\
    silo: {}
    api:
      vars: {DB: x}
      secrets: [CACHE, TOKEN, TOKEN]
      services: {SILO: silo}
      d1_databases:
        DB: {database_name: api, database_id: "00000000-0000-4000-8000-000000000001"}
      kv_namespaces:
        CACHE: {id: "0123456789abcdef0123456789abcdef"}
      r2_buckets: {SILO: {bucket_name: api-bucket}}
      vectorize: {INDEX: {index_name: idx}}
      queues: {producers: {INDEX: {queue: jobs}}}
      ai: {binding: AI}
      durable_objects: {AI: {class_name: Room}}
    """
    text = PRODUCTION_ONLY + textwrap.indent(textwrap.dedent(text), "  ")
    assert problems(text, full=True) == [
        "dome.yaml:13: services.api.secrets[2]: binding name 'TOKEN' is already used by "
        "services.api.secrets[1] (line 13)",
        "dome.yaml:16: services.api.d1_databases.DB: binding name 'DB' is already used by "
        "services.api.vars.DB (line 12)",
        "dome.yaml:18: services.api.kv_namespaces.CACHE: binding name 'CACHE' is already used by "
        "services.api.secrets[0] (line 13)",
        "dome.yaml:19: services.api.r2_buckets.SILO: binding name 'SILO' is already used by "
        "services.api.services.SILO (line 14)",
        "dome.yaml:21: services.api.queues.producers.INDEX: binding name 'INDEX' is already used "
        "by services.api.vectorize.INDEX (line 20)",
        "dome.yaml:23: services.api.durable_objects.AI: binding name 'AI' is already used by "
        "services.api.ai.binding (line 22)",
    ]


def test_duplicate_binding_name_from_environment_vars(problems):
    text = """\
    version: 1
    defaults: {compatibility_date: "2025-01-01", main: src/index.js}
    environments:
      staging: {suffix: "-staging", vars: {TOKEN: x}}
    services:
      silo: {secrets: [TOKEN]}
    """
    assert problems(text, full=True) == [
        "dome.yaml:6: services.silo.secrets[0]: binding name 'TOKEN' is already used by "
        "environments.staging.vars.TOKEN (line 4)"
    ]


# -- names Cloudflare would refuse ----------------------------------------------------------


def test_invalid_worker_name(problems):
    assert problems("Silo_API: {}\n-silo: {}\n") == [  # wrangler's rule ('capgo_api' is fine)
        "dome.yaml:10: services.Silo_API: 'Silo_API' is not a valid worker name: use lowercase "
        "letters a-z, digits, '_' and '-', not starting with a dash",
        "dome.yaml:11: services.-silo: '-silo' is not a valid worker name: use lowercase "
        "letters a-z, digits, '_' and '-', not starting with a dash",
    ]


def test_worker_name_limit_includes_the_suffix(problems):
    name = "s" * (64 - len("-staging"))  # 56 characters: fine in production, too long in staging
    assert problems(f"{name}: {{}}\n") == [
        f"dome.yaml:10: services.{name}: worker name '{name}-staging' is 64 characters long; "
        "Cloudflare allows at most 63 including the suffix '-staging' (environment staging)"
    ]


def test_worker_name_over_63_without_suffix(problems):
    name = "s" * 64
    assert problems(f"{name}: {{}}\n") == [
        f"dome.yaml:10: services.{name}: worker name '{name}' is 64 characters long; "
        "Cloudflare allows at most 63"
    ]


def test_invalid_binding_names(problems):
    text = """\
    silo:
      vars: {my-var: x, class: y}
      secrets: [1TOKEN]
      kv_namespaces: {"CACHE STORE": {id: "0123456789abcdef0123456789abcdef"}}
    """
    rule = ("is not a valid binding name: it must be a JavaScript identifier (letters, digits, "
            "_ and $, not starting with a digit, not a reserved word)")
    assert problems(text) == [
        f"dome.yaml:11: services.silo.vars.my-var: 'my-var' {rule}",
        f"dome.yaml:11: services.silo.vars.class: 'class' {rule}",
        f"dome.yaml:12: services.silo.secrets[0]: '1TOKEN' {rule}",
        f"dome.yaml:13: services.silo.kv_namespaces.CACHE STORE: 'CACHE STORE' {rule}",
    ]


def test_invalid_resource_ids_and_names(problems):
    text = """\
    silo:
      compatibility_date: "2025-13-01"
      d1_databases: {DB: {database_name: "silo db"}}
      r2_buckets: {A: {bucket_name: ab}, B: {bucket_name: Silo-Objects}}
      kv_namespaces: {}
      vectorize: {INDEX: {index_name: 1-index}}
      queues: {producers: {Q: {queue: "-jobs"}}}
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.compatibility_date: '2025-13-01' is not a valid "
        "compatibility date: expected YYYY-MM-DD",
        "dome.yaml:12: services.silo.d1_databases.DB.database_name: 'silo db' is not a valid D1 "
        "database name: use letters, digits, '-' and '_' (at most 64 characters)",
        "dome.yaml:13: services.silo.r2_buckets.A.bucket_name: 'ab' is not a valid R2 bucket "
        "name: 3-63 characters, lowercase letters, digits and dashes, starting and ending with "
        "a letter or digit",
        "dome.yaml:13: services.silo.r2_buckets.B.bucket_name: 'Silo-Objects' is not a valid R2 "
        "bucket name: 3-63 characters, lowercase letters, digits and dashes, starting and ending "
        "with a letter or digit",
        "dome.yaml:15: services.silo.vectorize.INDEX.index_name: '1-index' is not a valid "
        "Vectorize index name: at most 32 characters, lowercase letters, digits and dashes, "
        "starting with a letter",
        "dome.yaml:16: services.silo.queues.producers.Q.queue: '-jobs' is not a valid queue name: "
        "at most 63 characters, lowercase letters, digits and dashes, not starting or ending "
        "with a dash",
    ]


def test_invalid_account_id_and_environment_names(problems):
    text = """\
    version: 1
    environments:
      Staging: {suffix: "-staging"}
      production: {suffix: "", account_id: "acc1", aliases: [Prod]}
      dev: {suffix: "_dev"}
    services: {}
    """
    assert problems(text, full=True) == [
        "dome.yaml:3: environments.Staging: 'Staging' is not a valid environment name: use "
        "lowercase letters, digits, '-' and '_', starting with a letter",
        "dome.yaml:4: environments.production.aliases[0]: 'Prod' is not a valid environment "
        "name: use lowercase letters, digits, '-' and '_', starting with a letter",
        "dome.yaml:5: environments.dev.suffix: '_dev' is not a valid suffix: use lowercase "
        "letters a-z, digits and dashes",
    ]


def test_a_malformed_id_is_a_warning_as_wrangler_reads_it(load_yaml):
    m = load_yaml(PRODUCTION_ONLY + """\
      silo:
        d1_databases: {DB: {database_name: silo-db, database_id: "1234"}}
        kv_namespaces: {CACHE: {id: DEV_KV}}
    """, full=True)
    assert m.warnings == (
        "dome.yaml:11: services.silo.d1_databases.DB.database_id: '1234' is not a valid D1 "
        "database id: expected a UUID such as '00000000-0000-4000-8000-000000000000'; wrangler "
        "reads it, but a deploy with it fails until it is replaced",
        "dome.yaml:12: services.silo.kv_namespaces.CACHE.id: 'DEV_KV' is not a valid KV namespace "
        "id: expected 32 hexadecimal characters; wrangler reads it, but a deploy with it fails "
        "until it is replaced",
    )
    assert dict((k.binding, k.id) for k in m.resolve("silo", "production").kv_namespaces) == {
        "CACHE": "DEV_KV"}


def test_compatibility_date_format(problems):
    assert problems("silo: {compatibility_date: 2025-1-1}\n") == [
        "dome.yaml:10: services.silo.compatibility_date: '2025-1-1' is not a valid compatibility "
        "date: expected YYYY-MM-DD"
    ]


# -- environments --------------------------------------------------------------------------------


def test_alias_collisions(problems):
    text = """\
    version: 1
    environments:
      development: {suffix: "-dev", aliases: [dev]}
      staging: {suffix: "-staging", aliases: [development]}
      production: {suffix: "", aliases: [prod, dev]}
    services: {}
    """
    assert problems(text, full=True) == [
        "dome.yaml:4: environments.staging.aliases[0]: alias 'development' collides with the "
        "environment 'development'",
        "dome.yaml:5: environments.production.aliases[1]: alias 'dev' is already an alias of "
        "'development'",
    ]


def test_suffix_shared_by_two_environments(problems):
    text = """\
    version: 1
    environments:
      production: {suffix: ""}
      staging: {suffix: ""}
    services: {}
    """
    assert problems(text, full=True) == [
        "dome.yaml:4: environments.staging.suffix: suffix '' is already used by 'production'; "
        "worker names would collide"
    ]


# -- production safety -----------------------------------------------------------------------------


SHARE = "(or mark the binding shared: true to share it on purpose)"


def test_staging_would_use_production_resources(problems):
    text = """\
    silo:
      d1_databases:
        DB: {database_name: silo-db, database_id: "00000000-0000-4000-8000-000000000001"}
      kv_namespaces:
        CACHE: {id: "0123456789abcdef0123456789abcdef"}
      r2_buckets:
        BUCKET: {bucket_name: silo-objects}
      environments:
        development:
          kv_namespaces: {CACHE: {id: "0123456789abcdef0123456789abcde1"}}
        staging:
          d1_databases: {DB: {database_name: silo-db}}
          kv_namespaces: {CACHE: {id: "0123456789ABCDEF0123456789ABCDEF"}}
          r2_buckets: {BUCKET: {bucket_name: silo-objects}}
    """
    assert problems(text) == [
        "dome.yaml:12: services.silo.d1_databases.DB.database_id: staging would use "
        "production's database '00000000-0000-4000-8000-000000000001'; override it under "
        f"services.silo.environments.staging {SHARE}",
        "dome.yaml:21: services.silo.environments.staging.d1_databases.DB.database_name: staging "
        f"would use production's database 'silo-db' {SHARE}",
        "dome.yaml:22: services.silo.environments.staging.kv_namespaces.CACHE.id: staging would "
        f"use production's KV namespace '0123456789abcdef0123456789abcdef' {SHARE}",
        "dome.yaml:23: services.silo.environments.staging.r2_buckets.BUCKET.bucket_name: "
        f"staging would use production's R2 bucket 'silo-objects' {SHARE}",
    ]


def test_a_placeholder_id_is_one_warning_naming_every_environment_it_reaches(load_yaml):
    """Not one refusal per environment ("staging would use production's KV namespace
    'placeholder'"): a placeholder is nobody's resource, and it is said once."""
    m = load_yaml("""\
    silo:
      kv_namespaces: {CACHE: {id: PLACEHOLDER}}
      d1_databases: {DB: {database_name: silo-db, database_id: "<your d1 id>"}}
      environments:
        development:
          d1_databases: {DB: {database_name: silo-db-dev, database_id: "00000000-0000-4000-8000-0000000000d1"}}
    api:
      kv_namespaces: {CACHE: {id: PLACEHOLDER}}
      environments:
        staging:
          kv_namespaces: {CACHE: {id: "0123456789abcdef0123456789abcdef"}}
    """)
    assert m.warnings == (
        "dome.yaml:11: services.silo.kv_namespaces.CACHE.id: 'PLACEHOLDER' is a placeholder KV "
        "namespace id: development, staging and production would deploy with it, and a deploy "
        "with it fails; replace it with the real id",
        "dome.yaml:12: services.silo.d1_databases.DB.database_id: '<your d1 id>' is a placeholder "
        "database id: production would deploy with it, and a deploy with it fails; replace it "
        "with the real id",  # staging's name gets its suffix, and its id is looked up by name
        "dome.yaml:17: services.api.kv_namespaces.CACHE.id: 'PLACEHOLDER' is a placeholder KV "
        "namespace id: development and production would deploy with it, and a deploy with it "
        "fails; replace it with the real id",
    )


def test_names_written_once_get_each_environments_suffix(load_yaml):
    text = """\
    silo:
      d1_databases:
        DB: {database_name: silo-db, database_id: "00000000-0000-4000-8000-000000000001"}
      kv_namespaces: {CACHE: {title: silo-cache, id: "0123456789abcdef0123456789abcdef"}}
      r2_buckets: {BUCKET: {bucket_name: silo-objects}}
      queues:
        producers: {EVENTS: {queue: silo-events}}
        consumers: [{queue: silo-events, dead_letter_queue: silo-dlq, max_concurrency: 2}]
      environments:
        development:
          d1_databases: {DB: {database_id: "00000000-0000-4000-8000-0000000000d1"}}
    """
    m = load_yaml(text)
    prod, staging, dev = (m.resolve("silo", e) for e in ("production", "staging", "development"))
    assert [(d.database_name, d.database_id) for d in prod.d1_databases] == [
        ("silo-db", "00000000-0000-4000-8000-000000000001")
    ]
    # staging: the name follows the convention, the production id is not carried over
    assert [(d.database_name, d.database_id) for d in staging.d1_databases] == [
        ("silo-db-staging", None)
    ]
    # development: its own id, written in its override, belongs to the suffixed name
    assert [(d.database_name, d.database_id) for d in dev.d1_databases] == [
        ("silo-db-dev", "00000000-0000-4000-8000-0000000000d1")
    ]
    assert [(k.title, k.id) for k in staging.kv_namespaces] == [("silo-cache-staging", None)]
    assert [r.bucket_name for r in staging.r2_buckets] == ["silo-objects-staging"]
    assert [q.queue for q in staging.queue_producers] == ["silo-events-staging"]
    consumer = staging.queue_consumers[0]
    assert (consumer.queue, consumer.dead_letter_queue, consumer.max_concurrency) == (
        "silo-events-staging", "silo-dlq-staging", 2
    )
    # wrangler dev simulates every resource: the local environment keeps what is written
    local = m.resolve("silo", "local")
    assert [(d.database_name, d.database_id) for d in local.d1_databases] == [
        ("silo-db", "00000000-0000-4000-8000-000000000001")
    ]


def test_shared_true_shares_a_resource_on_purpose(load_yaml):
    text = """\
    silo:
      kv_namespaces:
        FLAGS: {id: "0123456789abcdef0123456789abcdef", shared: true}
      r2_buckets: {ASSETS: {bucket_name: silo-assets, shared: true}}
    """
    m = load_yaml(text)
    staging = m.resolve("silo", "staging")
    assert [(k.id, k.shared) for k in staging.kv_namespaces] == [
        ("0123456789abcdef0123456789abcdef", True)
    ]
    assert [r.bucket_name for r in staging.r2_buckets] == ["silo-assets"]


def test_queues_and_dead_letter_queues_shared_with_production(problems):
    text = """\
    silo:
      queues:
        producers: {EVENTS: {queue: silo-events}}
        consumers: [{queue: silo-events, dead_letter_queue: silo-dlq}]
      environments:
        staging:
          queues:
            producers: {EVENTS: {queue: silo-events}}
            consumers: [{queue: silo-events-staging, dead_letter_queue: silo-dlq}]
    """
    assert problems(text) == [
        "dome.yaml:17: services.silo.environments.staging.queues.producers.EVENTS.queue: staging "
        f"would use production's queue 'silo-events' {SHARE}",
        "dome.yaml:18: services.silo.environments.staging.queues.consumers[0].dead_letter_queue: "
        f"staging would use production's queue 'silo-dlq' {SHARE}",
    ]


def test_routes_custom_domains_and_health_urls_stay_out_of_production(problems):
    text = """\
    silo:
      routes:
        - {pattern: api.example.com/*, zone_name: example.com}
        - {pattern: silo.example.com, custom_domain: true}
      health_url: https://status.example.com/silo
      environments:
        development:
          routes: [API.Example.com/*]
          health_url: https://silo.acme.workers.dev/health
        staging:
          routes: [{pattern: silo.example.com, custom_domain: true}]
          health_url: https://api.example.com/health
    """
    assert problems(text) == [
        "dome.yaml:17: services.silo.environments.development.routes[0]: development would use "
        "production's route 'API.Example.com/*'",
        "dome.yaml:18: services.silo.environments.development.health_url: development would "
        "verify production's host 'silo.acme.workers.dev'",
        "dome.yaml:20: services.silo.environments.staging.routes[0]: staging would use "
        "production's custom domain 'silo.example.com'",
        "dome.yaml:21: services.silo.environments.staging.health_url: staging would verify "
        "production's host 'api.example.com'",
    ]


def test_same_bucket_name_in_another_account_is_fine(load_yaml):
    text = """\
    version: 1
    defaults: {compatibility_date: "2025-01-01", main: src/index.js}
    environments:
      staging: {suffix: "-staging", account_id: "11111111111111111111111111111111"}
      production: {suffix: "", account_id: "22222222222222222222222222222222"}
    services:
      silo:
        r2_buckets: {BUCKET: {bucket_name: silo-objects}}
        environments:
          staging: {r2_buckets: {BUCKET: {bucket_name: silo-objects}}}
          local: {r2_buckets: {BUCKET: {bucket_name: silo-objects}}}
    """
    m = load_yaml(text, full=True)
    assert m.resolve("silo", "staging").r2_buckets[0].bucket_name == "silo-objects"
    # the local environment runs on this machine: production names there are harmless
    assert m.resolve("silo", "local").r2_buckets[0].bucket_name == "silo-objects"


def test_protected_environment_counts_as_production(problems):
    text = """\
    version: 1
    defaults: {compatibility_date: "2025-01-01", main: src/index.js}
    environments:
      live: {suffix: "", protected: true}
      preview: {suffix: "-preview"}
    services:
      silo:
        kv_namespaces: {CACHE: {id: "0123456789abcdef0123456789abcdef"}}
    """
    assert problems(text, full=True) == [
        "dome.yaml:8: services.silo.kv_namespaces.CACHE.id: preview would use live's KV "
        "namespace '0123456789abcdef0123456789abcdef'; override it under "
        f"services.silo.environments.preview {SHARE}"
    ]


# -- cycles -----------------------------------------------------------------------------------


def test_dependency_cycle_names_the_cycle(problems):
    text = """\
    constellation:
      services: {API: dome-api}
    dome-api:
      services: {CONSTELLATION: constellation}
    """
    assert problems(text) == [
        "dome.yaml:11: services.constellation.services.API: dependency cycle: "
        "constellation -> dome-api -> constellation"
    ]


def test_cycle_through_depends_on_and_durable_objects(problems):
    text = """\
    a: {depends_on: [b]}
    b: {durable_objects: {ROOM: {class_name: Room, service: c}}}
    c: {services: {A: a}}
    d: {services: {A: a}}
    """
    assert problems(text) == [
        "dome.yaml:10: services.a.depends_on[0]: dependency cycle: a -> b -> c -> a"
    ]


def test_binding_to_itself_is_not_a_cycle(load_yaml):
    m = load_yaml("silo: {services: {SELF: silo}}\n")
    assert m.deploy_order() == ["silo"]
    assert m.dependencies("silo") == ()


# -- all at once ---------------------------------------------------------------------------------


def test_all_problems_are_reported_at_once_sorted_by_line(load_yaml):
    text = """\
    silo:
      d1_databses: {}
      workers_dev: "no"
    api:
      services: {SILO: sillo}
    """
    with pytest.raises(ManifestError) as caught:
        load_yaml(text)
    assert str(caught.value) == (
        "dome.yaml:11: services.silo.d1_databses: unknown key; did you mean 'd1_databases'?\n"
        "dome.yaml:12: services.silo.workers_dev: expected a boolean (true or false), got a "
        "string ('no')\n"
        "dome.yaml:14: services.api.services.SILO: unknown service 'sillo'; did you mean 'silo'?\n"
        "  hint: 3 problems in dome.yaml; fix them all, then run again"
    )


# -- files and paths -------------------------------------------------------------------------------


def test_missing_service_folder(problems):
    text = "silo: {}\napi: {path: apps/api}\n"
    assert problems(text, files=False) == [
        "dome.yaml:10: services.silo: the service folder services/silo does not exist (the "
        "default for a service without 'path')",
        "dome.yaml:11: services.api.path: the service folder apps/api does not exist",
    ]


def test_main_must_be_a_file_and_a_missing_one_is_a_warning(problems, load_yaml, tmp_path):
    (tmp_path / "services/silo/src").mkdir(parents=True)
    (tmp_path / "services/api/src").mkdir(parents=True)
    assert problems("silo: {main: src}\n", files=False) == [
        "dome.yaml:10: services.silo.main: 'src' is a folder in services/silo; point main at the "
        "worker's entry file (e.g. src/index.ts)",
    ]
    # wrangler reads a config whose main a build has not made yet: so does dome, with a warning
    m = load_yaml("api: {main: src/worker.ts}\n", files=False)
    assert m.warnings == (
        "dome.yaml:10: services.api.main: not built yet? 'src/worker.ts' does not exist in "
        "services/api; wrangler deploys it once a build creates it (the service's build "
        "command, or [build])",
    )


def test_wranglers_own_build_table_passes_through(load_yaml, tmp_path):
    (tmp_path / "services/silo").mkdir(parents=True)
    m = load_yaml("silo: {main: dist/worker.mjs, build: {command: npm run build, cwd: .}}\n",
                  files=False)
    silo = m.resolve("silo", "staging")
    assert silo.build is None and silo.extra["build"] == {"command": "npm run build", "cwd": "."}
    assert m.warnings == ()


def test_main_made_by_a_build_is_checked_after_the_build(load_yaml, tmp_path):
    (tmp_path / "services/silo").mkdir(parents=True)
    m = load_yaml("silo: {main: dist/worker.mjs, build: npm run build}\n", files=False)
    assert m.resolve("silo", "staging").main == "dist/worker.mjs"


def test_files_are_not_checked_when_asked_not_to(tmp_path):
    (tmp_path / "dome.yaml").write_text(
        'version: 1\nenvironments: {production: {suffix: ""}}\n'
        'services: {silo: {main: src/index.js, compatibility_date: "2025-01-01"}}\n'
    )
    m = load(tmp_path / "dome.yaml", check_files=False)
    assert m.resolve("silo", "production").main == "src/index.js"


def test_migrations_dir_must_be_a_folder(problems, tmp_path):
    (tmp_path / "services/silo/src").mkdir(parents=True)
    (tmp_path / "services/silo/src/index.js").write_text("export default {};\n")
    (tmp_path / "services/silo/schema.sql").write_text("select 1;\n")
    text = """\
    silo:
      d1_databases:
        DB: {database_name: silo-db, migrations_dir: schema.sql}
        LOGS: {database_name: logs, migrations_dir: db/logs}
    """
    assert problems(text, files=False) == [
        "dome.yaml:12: services.silo.d1_databases.DB.migrations_dir: the migrations folder "
        "'schema.sql' is not a folder in services/silo",
        "dome.yaml:13: services.silo.d1_databases.LOGS.migrations_dir: the migrations folder "
        "'db/logs' does not exist in services/silo",
    ]


def test_paths_must_stay_inside_the_repository(problems, tmp_path):
    text = """\
    version: 1
    templates: /etc
    defaults: {compatibility_date: "2025-01-01", main: src/index.js}
    environments:
      production: {suffix: ""}
      laptop: {suffix: "-laptop", kind: local, state_dir: ../state}
    services:
      silo:
        path: ../../etc
      api:
        main: ../../../../etc/passwd
        d1_databases: {DB: {database_name: api-db, migrations_dir: /srv/migrations}}
        assets: {directory: ../../../public}
    """
    root = tmp_path
    outside = "points outside the repository ({root}); every path must stay inside the folder of dome.yaml"
    assert problems(text, full=True) == [
        "dome.yaml:2: templates: '/etc' is an absolute path; write it relative to the "
        "manifest's folder",
        "dome.yaml:6: environments.laptop.state_dir: '../state' " + outside.format(root=root),
        "dome.yaml:9: services.silo.path: '../../etc' " + outside.format(root=root),
        "dome.yaml:11: services.api.main: '../../../../etc/passwd' " + outside.format(root=root),
        "dome.yaml:12: services.api.d1_databases.DB.migrations_dir: '/srv/migrations' is an "
        "absolute path; write it relative to the manifest's folder",
        "dome.yaml:13: services.api.assets.directory: '../../../public' "
        + outside.format(root=root),
    ]


def test_a_symlink_out_of_the_repository_is_refused(problems, tmp_path):
    elsewhere = tmp_path.parent / (tmp_path.name + "-elsewhere")
    (elsewhere / "src").mkdir(parents=True)
    (elsewhere / "src/index.js").write_text("export default {};\n")
    (tmp_path / "services").mkdir()
    (tmp_path / "services/silo").symlink_to(elsewhere, target_is_directory=True)
    [problem] = problems("silo: {}\n", files=False)
    assert problem.startswith("dome.yaml:10: services.silo: 'services/silo' points outside the "
                              "repository (")


def test_default_migrations_folder_is_found_without_configuration(load_yaml, tmp_path):
    (tmp_path / "services/silo/migrations").mkdir(parents=True)
    (tmp_path / "services/api").mkdir(parents=True)
    m = load_yaml(
        """\
        silo:
          d1_databases: {DB: {database_name: silo-db}, LOGS: {database_name: logs,
                                                              migrations_dir: null}}
        api:
          d1_databases: {DB: {database_name: api-db}}
        """
    )
    assert [(d.binding, d.migrations_dir) for d in m.resolve("silo", "staging").d1_databases] == [
        ("DB", "migrations"), ("LOGS", None)
    ]
    assert m.resolve("api", "staging").d1_databases[0].migrations_dir is None


# -- Cloudflare's limits, numbers, YAML bombs -----------------------------------------------------


def test_variables_over_cloudflares_limits(problems):
    big = "x" * (5 * 1024 + 1)
    many = ", ".join(f"V{i}: {i}" for i in range(120))
    text = f"""\
    silo:
      vars: {{BIG: "{big}", FINE: "{'y' * 5 * 1024}"}}
    api:
      vars: {{{many}}}
      secrets: [{", ".join(f"S{i}" for i in range(9))}]
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.vars.BIG: is 5121 bytes long; Cloudflare allows at most 5120 "
        "bytes (5 KB) per variable: keep large data in KV, R2 or a bundled file",
        "dome.yaml:13: services.api.vars: 129 variables and secrets; Cloudflare allows at most "
        "128 per Worker (64 on the Free plan)",
    ]


def test_integers_javascript_cannot_hold_are_refused(problems):
    text = "silo:\n  vars: {SAFE: 9007199254740991, BIG: 9007199254740993}\n"
    assert problems(text) == [
        "dome.yaml:11: services.silo.vars.BIG: 9007199254740993 is beyond 2^53 - 1: JavaScript "
        "(wrangler, the worker) cannot hold it exactly; quote it to pass it as a string"
    ]


def test_alias_expansion_is_bounded(load_yaml):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "version: 1\n" + "\n".join(levels) + "\nenvironments: {}\nservices: {}\n"
    with pytest.raises(ManifestError) as caught:
        load_yaml(text, full=True)
    assert caught.value.message.startswith("dome.yaml:")
    assert caught.value.message.endswith(": the manifest expands to more than 100000 values")
    assert "anchors and aliases" in (caught.value.hint or "")


def test_resources_per_environment_and_ids_found_by_name(load_yaml):
    from dome_tasks.manifest.bindings import Resource, resources, with_ids

    m = load_yaml(
        """\
        silo:
          d1_databases: {DB: {database_name: silo-db}}
          kv_namespaces: {CACHE: {title: silo-cache}, FLAGS: {title: flags, shared: true}}
          queues: {consumers: [{queue: jobs, dead_letter_queue: jobs-dlq}]}
        """
    )
    staging = m.resolve("silo", "staging")
    assert resources(staging) == [
        Resource("d1_databases", "DB", "database_name", "silo-db-staging", None, False),
        Resource("kv_namespaces", "CACHE", "title", "silo-cache-staging", None, False),
        Resource("kv_namespaces", "FLAGS", "title", "flags", None, True),
        Resource("queue_consumers", "", "queue", "jobs-staging", None, False),
        Resource("queue_consumers", "", "dead_letter_queue", "jobs-dlq-staging", None, False),
    ]
    found = with_ids(staging, {("d1_databases", "silo-db-staging"): "00000000-0000-4000-8000-00000000000a",
                               ("kv_namespaces", "flags"): "0123456789abcdef0123456789abcdef"})
    assert [d.database_id for d in found.d1_databases] == ["00000000-0000-4000-8000-00000000000a"]
    assert [k.id for k in found.kv_namespaces] == [None, "0123456789abcdef0123456789abcdef"]
    assert with_ids(staging, {}) is staging


def test_a_var_nested_a_hundred_lists_deep_is_one_clear_problem(problems):
    deep = "[" * 100 + "1" + "]" * 100
    found = problems(f"silo:\n  vars:\n    DEEP: {deep}\n")
    assert len(found) == 1 and found[0].startswith("dome.yaml:12: services.silo.vars.DEEP[0]")
    assert found[0].endswith("nested too deeply (a recursive anchor?)")


def test_a_worker_keeps_its_own_name_in_one_environment(load_yaml):
    """An imported `foo-production` keeps its name; bindings to it follow."""
    manifest = load_yaml("""\
    version: 1
    defaults: {compatibility_date: "2025-01-01", main: src/index.js}
    environments:
      staging: {suffix: "-staging"}
      production: {suffix: ""}
    services:
      silo:
        environments:
          production: {name: silo-production}
      api:
        services: {SILO: silo}
    """, full=True)
    assert manifest.resolve("silo", "production").name == "silo-production"
    assert manifest.resolve("silo", "staging").name == "silo-staging"
    assert manifest.resolve("api", "production").services[0].worker == "silo-production"


def test_a_worker_name_outside_an_environment_override_is_refused(problems):
    assert problems("silo:\n  name: silo-x\n") == [
        "dome.yaml:11: services.silo.name: a worker's name is the service name plus the "
        "environment's suffix; where one differs, put it under "
        "services.<service>.environments.<env>.name",
    ]


def test_one_line_per_mistake_in_a_value_of_several_shapes(problems):
    # each value below may take several shapes (anyOf): only the shape that fits speaks
    text = """\
    silo:
      wrangler: 5
      smoke: [[curl, ""], "npm run 'x"]
      routes: [{pattern: "a b/*", custom_domain: true}]
      services: {A: {service: api, entrypoint: 1x}}
      secrets: {required: [OK, 9X]}
    api: {}
    """
    assert problems(text) == [
        "dome.yaml:11: services.silo.wrangler: expected a command (a string or a list of "
        "arguments), got an integer (5)",
        "dome.yaml:12: services.silo.smoke[0][1]: must not be empty",
        "dome.yaml:12: services.silo.smoke[1]: cannot be split into arguments: No closing "
        "quotation",
        "dome.yaml:13: services.silo.routes[0].pattern: route 'a b/*' contains a space at "
        "position 2 (write a space in a path as %20)",
        "dome.yaml:14: services.silo.services.A.entrypoint: '1x' is not a valid entrypoint: it "
        "must be a JavaScript identifier",
        "dome.yaml:15: services.silo.secrets.required[1]: '9X' is not a valid binding name: it "
        "must be a JavaScript identifier (letters, digits, _ and $, not starting with a digit, "
        "not a reserved word)",
    ]


def test_a_misspelt_choice_gets_did_you_mean(problems):
    text = """\
    version: 1
    environments:
      laptop: {suffix: "-laptop", kind: locale}
    services: {}
    """
    assert problems(text, full=True) == [
        "dome.yaml:3: environments.laptop.kind: a string ('locale') is not one of: remote, "
        "local; did you mean 'local'?",
    ]
