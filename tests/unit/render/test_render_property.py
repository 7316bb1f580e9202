"""Property: whatever the manifest may hold survives rendering and comes back identical."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from dome_tasks.manifest.model import (
    D1Database,
    KVNamespace,
    QueueConsumer,
    QueueProducer,
    R2Bucket,
    ServiceBinding,
    VectorizeIndex,
    WorkerConfig,
)
from dome_tasks.render.config import config_path, render_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path("/srv/dome")
TRICKY = st.sampled_from(
    ['"', "\\", "\n", "\r", "\t", "'", "\x00", "\x1b", "\x7f", "\u2028", "é", "🚀"]
)
TEXT = st.lists(
    st.one_of(
        st.characters(exclude_categories=["Cs"]),
        TRICKY,
        st.sampled_from(['"""', "'''", "\\u0041", "${x}", "{{ x }}"]),
    ),
    max_size=12,
).map("".join)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
VAR_VALUES = st.one_of(TEXT, INT64, st.floats(allow_nan=False, allow_infinity=False), st.booleans())
# Names as Cloudflare allows them: workers lower-case alphanumerics and dashes, bindings
# JavaScript identifiers. Resource names and ids are opaque strings to the renderer.
WORKER = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?", fullmatch=True)
BINDING = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True)


@st.composite
def configs(draw: st.DrawFn) -> WorkerConfig:
    bindings = draw(st.lists(BINDING, min_size=6, max_size=6, unique=True))
    return WorkerConfig(
        service=draw(WORKER),
        environment=draw(st.sampled_from(["development", "staging", "production", "local"])),
        name=draw(WORKER),
        service_dir=ROOT / "services" / draw(WORKER),
        main=draw(st.sampled_from(["src/index.js", "dist/worker.mjs"])),
        compatibility_date=draw(st.dates()).isoformat(),
        account_id=draw(st.none() | st.from_regex(r"[0-9a-f]{32}", fullmatch=True)),
        vars=tuple(draw(st.dictionaries(TEXT, VAR_VALUES, max_size=6)).items()),
        secrets=tuple(draw(st.lists(TEXT, max_size=3))),
        services=(ServiceBinding(bindings[0], "x", draw(WORKER)),),
        d1_databases=(D1Database(bindings[1], draw(TEXT), draw(TEXT)),),
        r2_buckets=(R2Bucket(bindings[2], draw(TEXT)),),
        kv_namespaces=(KVNamespace(bindings[3], draw(TEXT)),),
        vectorize=(VectorizeIndex(bindings[4], draw(TEXT)),),
        queue_producers=(QueueProducer(bindings[5], draw(TEXT)),),
        queue_consumers=(QueueConsumer(draw(TEXT), max_batch_size=draw(st.none() | INT64)),),
    )


def same(got: object, want: object) -> bool:
    """Equality that tells -0.0 from 0.0 and bools from ints."""
    if isinstance(want, float):
        return (
            isinstance(got, float)
            and got == want
            and math.copysign(1, got) == math.copysign(1, want)
        )
    return type(got) is type(want) and got == want


@settings(max_examples=200, deadline=None)
@given(configs())
def test_values_and_names_survive_rendering(config: WorkerConfig) -> None:
    out = config_path(ROOT, config.environment, config.service)
    doc = tomllib.loads(render_config(config, manifest_path=ROOT / "dome.yaml", out_path=out))

    assert doc["name"] == config.name
    assert doc["compatibility_date"] == config.compatibility_date
    assert doc.get("account_id") == config.account_id
    got_vars = doc.get("vars", {})
    assert list(got_vars) == [name for name, _ in config.vars]
    for name, value in config.vars:
        assert same(got_vars[name], value), (name, got_vars[name], value)

    assert doc["services"] == [
        {"binding": config.services[0].binding, "service": config.services[0].worker}
    ]
    d1 = config.d1_databases[0]
    assert doc["d1_databases"] == [
        {"binding": d1.binding, "database_name": d1.database_name, "database_id": d1.database_id}
    ]
    assert doc["r2_buckets"] == [
        {"binding": b.binding, "bucket_name": b.bucket_name} for b in config.r2_buckets
    ]
    assert doc["kv_namespaces"] == [
        {"binding": k.binding, "id": k.id} for k in config.kv_namespaces
    ]
    assert doc["vectorize"] == [
        {"binding": v.binding, "index_name": v.index_name} for v in config.vectorize
    ]
    assert doc["queues"]["producers"] == [
        {"binding": q.binding, "queue": q.queue} for q in config.queue_producers
    ]
    consumer = config.queue_consumers[0]
    expected = {"queue": consumer.queue}
    if consumer.max_batch_size is not None:
        expected["max_batch_size"] = consumer.max_batch_size
    assert doc["queues"]["consumers"] == [expected]
