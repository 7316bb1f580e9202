"""One description per binding kind: every kind of ``bindings.KINDS`` is accepted by the schema,
built into its WorkerConfig attribute, rendered at its place in wrangler's config (valid under
wrangler's own JSON schema), isolated per environment, and served by the emulator when it has an
upload type. A kind added to the table without the rest fails here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dome_tasks.manifest import bindings, model
from dome_tasks.manifest.schema import WORKER_FIELDS
from dome_tasks.manifest.wrangler_schema import load_schema
from dome_tasks.render.config import config_path, render_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[3]

#: One entry of each kind as written in dome.yaml (flow style), keyed by the kind's attribute.
EXAMPLES = {
    "ai": "ai: {binding: AI}",
    "services": "services: {OTHER: other}",
    "d1_databases": 'd1_databases: {DB: {database_name: db, database_id: "00000000-0000-4000-8000-000000000001"}}',
    "r2_buckets": "r2_buckets: {BUCKET: {bucket_name: objects}}",
    "kv_namespaces": 'kv_namespaces: {CACHE: {title: cache, id: "0123456789abcdef0123456789abcdef"}}',
    "vectorize": "vectorize: {INDEX: {index_name: embeddings}}",
    "hyperdrive": 'hyperdrive: {PG: {id: "0123456789abcdef0123456789abcdee", shared: true}}',
    "queue_producers": "queues: {producers: {JOBS: {queue: jobs}}}",
    "queue_consumers": "queues: {consumers: [{queue: events}]}",
    "durable_objects": "durable_objects: {ROOM: {class_name: Room}}",
}


@pytest.mark.parametrize("kind", bindings.KINDS, ids=lambda k: k.attr)
def test_every_kind_is_written_built_rendered_and_isolated(kind, load_yaml) -> None:
    assert kind.attr in {f.name for f in model.WorkerConfig.__dataclass_fields__.values()}
    assert kind.key[0] in WORKER_FIELDS
    m = load_yaml(f"silo:\n  {EXAMPLES[kind.attr]}\nother: {{}}\n")
    production = m.resolve("silo", "production")
    [built] = getattr(production, kind.attr)
    out = config_path(m.root, "production", "silo")
    doc = tomllib.loads(render_config(production, manifest_path=m.path, out_path=out))
    found = doc
    for part in kind.table:
        found = found[part]
    entries = [found] if kind.form == "single" else found
    assert len(entries) == 1
    if kind.name_key:
        assert entries[0][kind.name_key] == built.binding
    schema = load_schema(REPO)
    assert schema is not None
    place = kind.table if kind.form == "single" else (*kind.table, 0)
    assert schema.problems_at(place, entries[0]) == []
    if kind.resources:  # named per environment, never production's outside production
        staging = getattr(m.resolve("silo", "staging"), kind.attr)[0]
        staging_entry = kind.wrangler_entry(staging, str)
        shared = kind.attr == "hyperdrive"  # an id only: shared on purpose in the example
        assert (staging_entry == entries[0]) is shared


def test_hyperdrive_shared_with_production_is_refused(problems) -> None:
    found = problems('silo:\n  hyperdrive: {PG: {id: "0123456789abcdef0123456789abcdee"}}\n')
    assert [p.split(": ", 2)[1:] for p in found] == [
        ["services.silo.hyperdrive.PG.id", f"{env} would use production's Hyperdrive config "
         "'0123456789abcdef0123456789abcdee'; override it under services.silo.environments."
         f"{env} (or mark the binding shared: true to share it on purpose)"]
        for env in ("development", "staging")
    ]


def test_the_emulator_serves_each_uploaded_kind_from_the_table() -> None:
    from dome_tasks.testing.emulator.serving import render_config as served
    from dome_tasks.testing.emulator.state import Module, Version

    metadata = {
        "d1": {"type": "d1", "name": "DB", "id": "db-id"},
        "kv_namespace": {"type": "kv_namespace", "name": "CACHE", "namespace_id": "kv-id"},
        "r2_bucket": {"type": "r2_bucket", "name": "BUCKET", "bucket_name": "objects"},
        "queue": {"type": "queue", "name": "JOBS", "queue_name": "jobs"},
        "service": {"type": "service", "name": "OTHER", "service": "other", "entrypoint": "Api"},
    }
    assert set(metadata) == set(bindings.BY_UPLOAD)
    version = Version(
        id="v1", number=1, created_on="now",
        metadata={"main_module": "w.js", "bindings": list(metadata.values()),
                  "compatibility_date": "2025-01-01"},
        modules={"w.js": Module("w.js", "application/javascript+module", b"")},
    )
    config, notes = served("w", version, d1_names={"db-id": "db"})
    assert notes == []
    assert config["d1_databases"] == [{"binding": "DB", "database_id": "db-id", "database_name": "db"}]
    assert config["kv_namespaces"] == [{"binding": "CACHE", "id": "kv-id"}]
    assert config["r2_buckets"] == [{"binding": "BUCKET", "bucket_name": "objects"}]
    assert config["queues"] == {"producers": [{"binding": "JOBS", "queue": "jobs"}]}
    assert config["services"] == [{"binding": "OTHER", "service": "other", "entrypoint": "Api"}]


def test_resolve_fills_the_ids_provision_recorded_and_declared_keeps_the_manifests(load_yaml):
    """Ids left to a lookup by name come from .dome/resources.json for remote environments."""
    from dome_tasks.manifest.resource_ids import ResourceLock

    lock = ResourceLock.load(Path.cwd())
    lock.record(None, "kv", "silo-cache-staging", "0123456789abcdef0123456789abcd03")
    lock.record(None, "d1", "silo-db-staging", "00000000-0000-4000-8000-000000000003")
    lock.save()
    m = load_yaml(
        """\
        silo:
          d1_databases: {DB: {database_name: silo-db}}
          kv_namespaces: {CACHE: {title: silo-cache}}
        """
    )
    staging = m.resolve("silo", "staging")
    assert [k.id for k in staging.kv_namespaces] == ["0123456789abcdef0123456789abcd03"]
    assert [d.database_id for d in staging.d1_databases] == ["00000000-0000-4000-8000-000000000003"]
    assert m.resolve("silo", "stg") is staging  # read once, whatever the environment is called
    assert [k.id for k in m.declared("silo", "staging").kv_namespaces] == [None]
    assert [k.id for k in m.resolve("silo", "development").kv_namespaces] == [None]  # not recorded
    assert [k.id for k in m.resolve("silo", "local").kv_namespaces] == [None]  # local state
