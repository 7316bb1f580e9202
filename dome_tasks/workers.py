"""Merge the layers for one (service, environment) and build its :class:`WorkerConfig`.

Merge order: ``defaults`` -> service -> environment (``vars``, ``workers_dev``) -> the
service's ``environments.<env>`` override. Mappings merge by key, everything else (lists,
scalars) is replaced by the later layer.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dome_tasks import model
from dome_tasks.diagnostics import KeyPath, Problems, format_path
from dome_tasks.environments import is_production

# Keys a binding needs once all layers are merged (an override may supply them).
REQUIRED_BINDING_KEYS: dict[KeyPath, tuple[str, ...]] = {
    ("d1_databases",): ("database_name", "database_id"),
    ("r2_buckets",): ("bucket_name",),
    ("kv_namespaces",): ("id",),
    ("vectorize",): ("index_name",),
    ("queues", "producers"): ("queue",),
    ("durable_objects",): ("class_name",),
}
ENV_LAYER_KEYS = ("vars", "workers_dev")


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in top.items():
        below = merged.get(key)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def command(value: str | list[str]) -> tuple[str, ...]:
    return tuple(shlex.split(value)) if isinstance(value, str) else tuple(value)


class Resolver:
    """Builds every worker of a manifest, reporting problems of the merged result."""

    def __init__(
        self,
        data: Mapping[str, Any],
        envs: Mapping[str, model.Environment],
        services: Mapping[str, Mapping[str, Any]],
        root: Path,
        problems: Problems,
    ):
        self.defaults = data.get("defaults", {})
        self.env_specs = data.get("environments", {})
        self.envs = envs
        self.services = services
        self.root = root
        self.problems = problems
        self._missing: dict[tuple[KeyPath, str], list[str]] = defaultdict(list)

    # -- provenance -------------------------------------------------------------------------

    def origin(self, service: str, env: str, sub: KeyPath) -> KeyPath:
        """The key path of the layer that set ``sub`` for this worker (the winning one)."""
        while sub:
            found = self._exact_origin(service, env, sub)
            if found:
                return found
            sub = sub[:-1]
        return ("services", service)

    def _exact_origin(self, service: str, env: str, sub: KeyPath) -> KeyPath | None:
        lines = self.problems.lines
        candidates = [("services", service, "environments", env, *sub)]
        if sub[0] in ENV_LAYER_KEYS:
            candidates.append(("environments", env, *sub))
        candidates += [("services", service, *sub), ("defaults", *sub)]
        return next((path for path in candidates if path in lines), None)

    def _written(self, service: str, env: str, sub: KeyPath) -> bool:
        """Whether some layer wrote ``sub`` (it may have been invalid, and already reported)."""
        return self._exact_origin(service, env, sub) is not None

    # -- merging ----------------------------------------------------------------------------

    def merged(self, service: str, env: str) -> dict[str, Any]:
        spec = self.services[service]
        base = {k: v for k, v in spec.items() if k not in ("environments", "path", "depends_on")}
        env_spec = self.env_specs.get(env, {})
        env_layer = {k: env_spec[k] for k in ENV_LAYER_KEYS if k in env_spec}
        override = spec.get("environments", {}).get(env, {})
        merged = deep_merge(self.defaults, base)
        merged = deep_merge(merged, env_layer)
        return deep_merge(merged, override)

    # -- building ---------------------------------------------------------------------------

    def build_all(self) -> dict[tuple[str, str], model.WorkerConfig]:
        workers = {}
        for service in self.services:
            for env in self.envs:
                worker = self.build(service, env)
                if worker is not None:
                    workers[service, env] = worker
        self._report_missing()
        self._check_isolation(workers)
        return workers

    def build(self, service: str, env_name: str) -> model.WorkerConfig | None:
        env = self.envs[env_name]
        spec = self.services[service]
        m = self.merged(service, env_name)
        for key in ("main", "compatibility_date"):
            if key not in m and not self._written(service, env_name, (key,)):
                self._missing[("services", service), key].append(env_name)
        for kind, keys in REQUIRED_BINDING_KEYS.items():
            bindings = m.get(kind[0], {}) if len(kind) == 1 else m.get(kind[0], {}).get(kind[1], {})
            for binding, item in bindings.items():
                for key in keys:
                    written = self._written(service, env_name, (*kind, binding, key))
                    if key not in item and not written:
                        origin = self.origin(service, env_name, (*kind, binding))
                        self._missing[origin, key].append(env_name)
        if "main" not in m or "compatibility_date" not in m:
            return None
        self._check_duplicates(service, env_name, m)

        def suffixed(target: str) -> str:
            return target + env.suffix

        services = []
        for binding, value in m.get("services", {}).items():
            target, entrypoint = (value, None) if isinstance(value, str) else (
                value["service"], value.get("entrypoint"))
            if target in self.services:
                services.append(model.ServiceBinding(binding, target, suffixed(target), entrypoint))
        queues = m.get("queues", {})
        durable_objects = []
        for binding, item in m.get("durable_objects", {}).items():
            host = item.get("service")
            script = suffixed(host) if host and host != service and host in self.services else None
            durable_objects.append(model.DurableObject(binding, item.get("class_name", ""), script))
        ai = m.get("ai")
        return model.WorkerConfig(
            service=service,
            environment=env_name,
            name=suffixed(service),
            service_dir=self.root / spec.get("path", f"services/{service}"),
            main=m["main"],
            compatibility_date=m["compatibility_date"],
            compatibility_flags=tuple(m.get("compatibility_flags", ())),
            account_id=env.account_id,
            workers_dev=m.get("workers_dev"),
            routes=tuple(_route(r) for r in m.get("routes", ())),
            vars=tuple(m.get("vars", {}).items()),
            secrets=tuple(dict.fromkeys(m.get("secrets", ()))),
            build=command(m["build"]) if m.get("build") is not None else None,
            health_path=m.get("health_path", "/health"),
            health_url=m.get("health_url"),
            observability=bool(m.get("observability", {}).get("enabled", False)),
            services=tuple(services),
            d1_databases=tuple(
                model.D1Database(b, i.get("database_name", ""), i.get("database_id", ""),
                                 i.get("migrations_dir"))
                for b, i in m.get("d1_databases", {}).items()
            ),
            r2_buckets=tuple(
                model.R2Bucket(b, i.get("bucket_name", ""))
                for b, i in m.get("r2_buckets", {}).items()
            ),
            kv_namespaces=tuple(
                model.KVNamespace(b, i.get("id", "")) for b, i in m.get("kv_namespaces", {}).items()
            ),
            vectorize=tuple(
                model.VectorizeIndex(b, i.get("index_name", ""))
                for b, i in m.get("vectorize", {}).items()
            ),
            queue_producers=tuple(
                model.QueueProducer(b, i["queue"])
                for b, i in queues.get("producers", {}).items() if "queue" in i
            ),
            queue_consumers=tuple(model.QueueConsumer(**c) for c in queues.get("consumers", ())),
            ai_binding=ai["binding"] if ai else None,
            durable_objects=tuple(durable_objects),
            durable_object_migrations=tuple(
                model.DurableObjectMigration(
                    d["tag"],
                    tuple(d.get("new_classes", ())),
                    tuple(d.get("new_sqlite_classes", ())),
                )
                for d in m.get("durable_object_migrations", ())
            ),
            smoke=tuple(command(c) for c in m.get("smoke", ())),
            depends_on=tuple(d for d in spec.get("depends_on", ()) if d in self.services),
        )

    # -- checks on merged workers ------------------------------------------------------------

    def _report_missing(self) -> None:
        every = len(self.envs)
        for (path, key), envs in self._missing.items():
            where = "" if len(envs) == every else f" (in {', '.join(envs)})"
            self.problems.add(path, f"missing required key '{key}'{where}")

    def _check_duplicates(self, service: str, env: str, m: Mapping[str, Any]) -> None:
        """A binding name may be used once per worker, across every binding kind."""
        names: list[tuple[str, KeyPath]] = []
        names += [(n, ("vars", n)) for n in m.get("vars", {})]
        names += [(n, ("secrets", i)) for i, n in enumerate(m.get("secrets", ()))]
        for kind in ("services", "d1_databases", "r2_buckets", "kv_namespaces", "vectorize"):
            names += [(n, (kind, n)) for n in m.get(kind, {})]
        names += [(n, ("queues", "producers", n)) for n in m.get("queues", {}).get("producers", {})]
        if m.get("ai"):
            names.append((m["ai"]["binding"], ("ai", "binding")))
        names += [(n, ("durable_objects", n)) for n in m.get("durable_objects", {})]
        first: dict[str, KeyPath] = {}
        for name, sub in names:
            origin = self.origin(service, env, sub)
            if name in first:
                other = first[name]
                line = self.problems.line_of(other)
                self.problems.add(
                    origin,
                    f"binding name '{name}' is already used by {format_path(other)} (line {line})",
                )
            else:
                first[name] = origin

    def _check_isolation(self, workers: Mapping[tuple[str, str], model.WorkerConfig]) -> None:
        """A non-production environment must not use a production database, bucket, queue…"""
        production = {e.name for e in self.envs.values() if is_production(e) and not e.is_local}
        owners: dict[tuple[str, str], list[tuple[str | None, str]]] = defaultdict(list)
        for (_, env), worker in workers.items():
            if env in production:
                for kind, identity, account, _sub in _resources(worker):
                    owners[kind, identity].append((account, env))
        if not owners:
            return
        for (service, env_name), worker in workers.items():
            if self.envs[env_name].is_local or env_name in production:
                continue
            for kind, identity, account, sub in _resources(worker):
                prod_env = next(
                    (e for a, e in owners.get((kind, identity), ())
                     if a is None or account is None or a == account),
                    None,
                )
                if prod_env is None:
                    continue
                origin = self.origin(service, env_name, sub)
                what = f"{env_name} would use {prod_env}'s {_NOUN[kind]} '{identity}'"
                if origin[:4] != ("services", service, "environments", env_name):
                    what += f"; override it under services.{service}.environments.{env_name}"
                self.problems.add(origin, what)


_NOUN = {
    "d1": "database",
    "kv": "KV namespace",
    "r2": "R2 bucket",
    "queue": "queue",
    "vectorize": "Vectorize index",
}


def _resources(worker: model.WorkerConfig) -> list[tuple[str, str, str | None, KeyPath]]:
    """(kind, identity, account, sub-path) of the worker's stateful resources.

    D1 and KV ids are global (account None); bucket, queue and index names are per account.
    """
    acc = worker.account_id
    found: list[tuple[str, str, str | None, KeyPath]] = []
    found += [("d1", d.database_id, None, ("d1_databases", d.binding, "database_id"))
              for d in worker.d1_databases]
    found += [("kv", k.id, None, ("kv_namespaces", k.binding, "id")) for k in worker.kv_namespaces]
    found += [("r2", r.bucket_name, acc, ("r2_buckets", r.binding, "bucket_name"))
              for r in worker.r2_buckets]
    found += [("queue", q.queue, acc, ("queues", "producers", q.binding, "queue"))
              for q in worker.queue_producers]
    found += [("queue", c.queue, acc, ("queues", "consumers", i, "queue"))
              for i, c in enumerate(worker.queue_consumers)]
    found += [("vectorize", v.index_name, acc, ("vectorize", v.binding, "index_name"))
              for v in worker.vectorize]
    return [r for r in found if r[1]]


def _route(value: str | Mapping[str, Any]) -> model.Route:
    if isinstance(value, str):
        return model.Route(value)
    return model.Route(value["pattern"], value.get("zone_name"), value.get("custom_domain", False))
