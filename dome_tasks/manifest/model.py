"""The typed, immutable model: what one worker looks like in one environment.

``manifest.load()`` turns dome.yaml into a :class:`Manifest`; ``Manifest.resolve(service, env)``
merges defaults -> service -> environment -> the service's override for that environment and
returns a :class:`WorkerConfig`, the only input the renderer and the planner need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VarValue = str | int | float | bool
#: Keys of a binding that dome does not model, in wrangler's own shape (``remote``,
#: ``preview_id``, ``props``…): rendered verbatim after the modelled ones.
Extra = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class LocalSettings:
    """Where and how the ``local`` environment runs workers under ``wrangler dev``."""

    port_first: int
    port_last: int
    state_dir: str  # relative to the manifest's folder


@dataclass(frozen=True)
class Environment:
    name: str
    suffix: str
    aliases: tuple[str, ...] = ()
    kind: str = "remote"  # "remote" (Cloudflare) or "local" (wrangler dev / workerd)
    account_id: str | None = None
    protected: bool = False
    workers_dev: bool | None = None
    vars: tuple[tuple[str, VarValue], ...] = ()
    local: LocalSettings | None = None

    @property
    def is_local(self) -> bool:
        return self.kind == "local"


@dataclass(frozen=True)
class Route:
    pattern: str
    zone_name: str | None = None
    custom_domain: bool = False
    zone_id: str | None = None


# Bindings. One entry per kind in :mod:`dome_tasks.manifest.bindings` says how each is written
# in dome.yaml, merged, checked, rendered and served. Resource names below are final: the
# environment's convention (``{name}{suffix}``) is already applied; an id of None is looked up
# by name (``invoke provision``). ``shared`` marks a resource shared between environments on
# purpose (exempt from the isolation check).


@dataclass(frozen=True)
class ServiceBinding:
    binding: str
    service: str | None  # the manifest's service name; None: a worker it does not deploy
    worker: str  # the worker name in this environment (suffix applied), or as written
    entrypoint: str | None = None
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class D1Database:
    binding: str
    database_name: str
    database_id: str | None = None  # None: looked up by name
    migrations_dir: str | None = None  # relative to the service folder
    shared: bool = False
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class R2Bucket:
    binding: str
    bucket_name: str
    shared: bool = False
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class KVNamespace:
    binding: str
    id: str | None = None  # None: looked up by title
    title: str | None = None  # the namespace's title (dome only: not rendered)
    shared: bool = False
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class VectorizeIndex:
    binding: str
    index_name: str
    shared: bool = False
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class Hyperdrive:
    binding: str
    id: str
    shared: bool = False
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class QueueProducer:
    binding: str
    queue: str
    shared: bool = False
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class QueueConsumer:
    queue: str
    max_batch_size: int | None = None
    max_batch_timeout: int | None = None
    max_retries: int | None = None
    dead_letter_queue: str | None = None
    max_concurrency: int | None = None
    shared: bool = False
    extra: Extra = field(default=(), hash=False)  # retry_delay, visibility_timeout_ms…


@dataclass(frozen=True)
class AI:
    binding: str
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class DurableObject:
    binding: str
    class_name: str
    script_name: str | None = None  # worker name hosting the class, when not this worker
    extra: Extra = field(default=(), hash=False)


@dataclass(frozen=True)
class DurableObjectMigration:
    tag: str
    new_classes: tuple[str, ...] = ()
    new_sqlite_classes: tuple[str, ...] = ()
    extra: Extra = field(default=(), hash=False)  # renamed_classes, deleted_classes…


@dataclass(frozen=True)
class WorkerConfig:
    """One service in one environment, fully merged: everything a wrangler.toml needs."""

    service: str
    environment: str
    name: str  # worker name, e.g. "silo-staging"
    service_dir: Path  # absolute
    main: str | None  # relative to service_dir; None: no entry point (an assets-only worker)
    compatibility_date: str
    compatibility_flags: tuple[str, ...] = ()
    account_id: str | None = None
    workers_dev: bool | None = None  # None: not written (wrangler's default)
    routes: tuple[Route, ...] = ()
    vars: tuple[tuple[str, VarValue], ...] = ()
    secrets: tuple[str, ...] = ()
    build: tuple[str, ...] | None = None  # argv; None = default (just build-pkg SERVICE if present)
    health_path: str | None = "/health"  # None: verification is skipped (health_path: null)
    health_url: str | None = None  # explicit URL overriding route / workers.dev
    # observability.enabled (None: not given, nothing rendered: Cloudflare's own setting
    # stays); other keys of the table (logs, traces, head_sampling_rate) are in extra
    observability: bool | None = None
    services: tuple[ServiceBinding, ...] = ()
    d1_databases: tuple[D1Database, ...] = ()
    r2_buckets: tuple[R2Bucket, ...] = ()
    kv_namespaces: tuple[KVNamespace, ...] = ()
    vectorize: tuple[VectorizeIndex, ...] = ()
    hyperdrive: tuple[Hyperdrive, ...] = ()
    queue_producers: tuple[QueueProducer, ...] = ()
    queue_consumers: tuple[QueueConsumer, ...] = ()
    ai: tuple[AI, ...] = ()  # at most one
    durable_objects: tuple[DurableObject, ...] = ()
    durable_object_migrations: tuple[DurableObjectMigration, ...] = ()
    smoke: tuple[tuple[str, ...], ...] = ()  # extra verification commands (argv each)
    depends_on: tuple[str, ...] = field(default=())  # explicit extra dependencies (services)
    #: Every other wrangler key, in wrangler's own shape (``triggers``, ``assets``, ``limits``,
    #: ``dev``…), merged by the same layering; paths in it are relative to the service folder.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)
    #: The wrangler command this service runs with (argv prefix), when the manifest names one.
    wrangler: tuple[str, ...] | None = None

    @property
    def ai_binding(self) -> str | None:
        """The AI binding's name, or None."""
        return self.ai[0].binding if self.ai else None

    @property
    def dependencies(self) -> tuple[str, ...]:
        """Services this worker needs deployed first: service bindings plus ``depends_on``."""
        seen = dict.fromkeys([b.service for b in self.services if b.service]
                             + list(self.depends_on))
        return tuple(seen)
