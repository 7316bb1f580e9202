"""Merge the layers for one (service, environment) and build its :class:`WorkerConfig`.

Merge order: ``defaults`` -> service -> environment (``vars``, ``workers_dev``, ``account_id``)
-> the service's ``environments.<env>`` override. Mappings merge by key, everything else
(lists, scalars) is replaced by the later layer; ``null`` in a later layer unsets a wrangler
key. Binding kinds come from :mod:`~dome_tasks.manifest.bindings`: a resource name written in
a shared layer (defaults or the service) gets the environment's suffix (``silo-db`` ->
``silo-db-staging``), an id written there applies only where the name stayed as written, and
``shared: true`` keeps both as written in every environment. Local environments (wrangler dev
simulates every resource) keep names and ids as written. The merged workers are then
checked together: required keys, duplicate binding names, Cloudflare's limits on variables,
files and paths, wrangler's own schema, and production isolation.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dome_tasks.manifest import bindings, model, naming, placeholders, shape
from dome_tasks.manifest._problems import KeyPath, Problems, format_path
from dome_tasks.manifest.environments import is_production
from dome_tasks.manifest.schema import DOME_KEYS
from dome_tasks.manifest.wrangler_schema import WranglerSchema, deprecation

ENV_LAYER_KEYS = ("vars", "workers_dev", "account_id")
SERVICE_ONLY_KEYS = ("environments", "path", "depends_on", "only_in", "interface")


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


def without_nulls(value: Any) -> Any:
    """``value`` with every mapping key set to null removed (null unsets a wrangler key)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def secret_names(value: Any) -> list[str]:
    """The declared secret names: dome's list, or wrangler's ``{required: [...]}`` table."""
    if isinstance(value, dict):
        value = value.get("required")
    return list(value) if isinstance(value, list) else []


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
        *,
        schema: WranglerSchema | None = None,
        check_files: bool = True,
    ):
        self.defaults = data.get("defaults", {})
        self.env_specs = data.get("environments", {})
        self.envs = envs
        self.services = services
        self.root = root
        self.problems = problems
        self.schema = schema
        self.check_files = check_files
        self._missing: dict[tuple[KeyPath, str], list[str]] = defaultdict(list)
        # (binding's key path, service) -> environments the bound service does not deploy to
        self._absent: dict[tuple[KeyPath, str], list[str]] = defaultdict(list)
        self._own_wrangler: dict[Path, str | None] = {}
        self._dirs: dict[str, Path] = {}
        self._migrations: dict[Path, bool] = {}

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

    def _per_environment(self, service: str, env: str, sub: KeyPath) -> bool:
        """Whether ``sub`` was written in the service's override for ``env``."""
        found = self._exact_origin(service, env, sub)
        return found is not None and found[:4] == ("services", service, "environments", env)

    # -- merging ----------------------------------------------------------------------------

    def merged(self, service: str, env: str) -> dict[str, Any]:
        spec = self.services[service]
        base = {k: v for k, v in spec.items() if k not in SERVICE_ONLY_KEYS}
        env_spec = self.env_specs.get(env, {})
        env_layer = {k: env_spec[k] for k in ENV_LAYER_KEYS if k in env_spec}
        override = spec.get("environments", {}).get(env, {})
        merged = deep_merge(self.defaults, base)
        merged = deep_merge(merged, env_layer)
        return deep_merge(merged, override)

    def present(self, service: str, env: str) -> bool:
        """Whether ``service`` deploys to ``env``: every environment, unless ``only_in`` lists
        the ones it does."""
        only_in = self.services[service].get("only_in")
        return only_in is None or env in only_in

    def worker_name(self, service: str, env: str) -> str:
        """The worker's name in ``env``: its own ``name`` there, else the service's name plus
        the environment's suffix."""
        own = self.services[service].get("environments", {}).get(env, {})
        name = own.get("name") if isinstance(own, Mapping) else None
        return name if isinstance(name, str) and name else service + self.envs[env].suffix

    def service_dir(self, service: str) -> Path:
        found = self._dirs.get(service)
        if found is None:
            found = self._dirs[service] = self.root / self.services[service].get(
                "path", f"services/{service}"
            )
        return found

    def _has_default_migrations(self, service_dir: Path) -> bool:
        """Whether wrangler's default ``migrations/`` folder exists in the service folder."""
        found = self._migrations.get(service_dir)
        if found is None:
            found = self._migrations[service_dir] = (service_dir / "migrations").is_dir()
        return found

    # -- building ---------------------------------------------------------------------------

    def build_all(self) -> dict[tuple[str, str], model.WorkerConfig]:
        workers = {}
        for service in self.services:
            for env in self.envs:
                if not self.present(service, env):
                    continue
                worker = self.build(service, env)
                if worker is not None:
                    workers[service, env] = worker
        self._report_missing()
        from dome_tasks.manifest import files

        files.check(self, workers)
        if self.schema is not None:
            for worker in workers.values():
                self._check_wrangler_schema(worker)
        self._check_isolation(workers)
        placeholders.check(self, workers)
        return workers

    def build(self, service: str, env_name: str) -> model.WorkerConfig | None:
        env = self.envs[env_name]
        spec = self.services[service]
        m = self.merged(service, env_name)
        # main is optional, as for wrangler: an assets-only worker (or a stub) has none
        for key in ("compatibility_date",):
            if key not in m and not self._written(service, env_name, (key,)):
                self._missing[("services", service), f"missing required key '{key}'"].append(
                    env_name
                )
        self._check_required(service, env_name, m)
        if "compatibility_date" not in m:
            return None
        self._check_duplicates(service, env_name, m)
        service_dir = self.service_dir(service)
        built = {kind.attr: self._bindings(kind, service, env, m, service_dir)
                 for kind in bindings.KINDS}
        observability = dict(m.get("observability") or {})
        enabled = observability.pop("enabled", None)
        enabled = None if enabled is None else bool(enabled)
        extra = {k: v for k, v in m.items() if k not in DOME_KEYS}
        if isinstance(m.get("build"), dict):  # wrangler's [build] table: passed through
            extra["build"] = m["build"]
        if isinstance(m.get("secrets"), dict):  # wrangler's [secrets] table: passed through
            extra["secrets"] = m["secrets"]
        if observability:
            extra["observability"] = observability
        worker = model.WorkerConfig(
            service=service,
            environment=env_name,
            name=self.worker_name(service, env_name),
            service_dir=service_dir,
            main=m.get("main"),
            compatibility_date=m["compatibility_date"],
            compatibility_flags=tuple(m.get("compatibility_flags", ())),
            account_id=m.get("account_id"),
            workers_dev=m.get("workers_dev"),
            routes=tuple(_route(r) for r in m.get("routes", ())),
            vars=tuple(m.get("vars", {}).items()),
            secrets=tuple(dict.fromkeys(secret_names(m.get("secrets")))),
            build=command(m["build"]) if isinstance(m.get("build"), str | list) else None,
            health_path=m.get("health_path", "/health"),
            health_url=m.get("health_url"),
            observability=enabled,
            **built,
            durable_object_migrations=tuple(
                model.DurableObjectMigration(
                    d["tag"],
                    tuple(d.get("new_classes", ())),
                    tuple(d.get("new_sqlite_classes", ())),
                    tuple(
                        (k, v) for k, v in without_nulls(d).items()
                        if k not in ("tag", "new_classes", "new_sqlite_classes")
                    ),
                )
                for d in m.get("durable_object_migrations", ())
            ),
            smoke=tuple(command(c) for c in m.get("smoke", ())),
            depends_on=tuple(
                d for d in spec.get("depends_on", ())
                if d in self.services and self.present(d, env_name)
            ),
            extra=without_nulls(extra),
            wrangler=self._wrangler(service, env_name, m.get("wrangler"), service_dir),
        )
        self._check_limits(worker)
        return worker

    def _wrangler(
        self, service: str, env: str, written: Any, service_dir: Path
    ) -> tuple[str, ...] | None:
        """The argv prefix of the wrangler this service runs: its ``wrangler:`` command (a
        relative program path is relative to the service folder), else a wrangler its own
        workspace installs; None: the repository's."""
        if written:
            argv = command(written)
            program = argv[0]
            if "/" in program and not Path(program).is_absolute():
                from dome_tasks.manifest.files import outside

                problem = outside(self.root, service_dir, program)
                if problem:
                    self.problems.add(self.origin(service, env, ("wrangler",)), problem)
                program = str(service_dir / program)
            return (program, *argv[1:])
        if service_dir not in self._own_wrangler:
            from dome_tasks.tools import service_wrangler

            self._own_wrangler[service_dir] = service_wrangler(service_dir, self.root)
        found = self._own_wrangler[service_dir]
        return (found,) if found else None

    def _bindings(
        self,
        kind: bindings.BindingKind,
        service: str,
        env: model.Environment,
        m: Mapping[str, Any],
        service_dir: Path,
    ) -> tuple[Any, ...]:
        """The model objects of one kind, the environment's naming convention applied."""
        raw = bindings.entries(m, kind)
        if not raw:
            return ()
        if kind.form == "single":
            items: list[tuple[Any, Any]] = [(raw.get("binding"), raw)]
        elif kind.form == "list":
            items = list(enumerate(raw))
        else:
            items = [
                (name, {kind.shorthand: item} if isinstance(item, str) else item)
                for name, item in raw.items()
            ]
        built = []
        for key, item in items:
            where = (*kind.key,) if kind.form == "single" else (*kind.key, key)
            entry = self._entry(kind, service, env, where, key, item, service_dir)
            if entry is not None:
                built.append(kind.build(entry))
        return tuple(built)

    def _entry(
        self,
        kind: bindings.BindingKind,
        service: str,
        env: model.Environment,
        where: KeyPath,
        key: Any,
        item: Mapping[str, Any],
        service_dir: Path,
    ) -> bindings.Entry | None:
        shared = bool(item.get("shared", False))
        values: dict[str, Any] = {}
        renamed = False
        for name, attr in kind.fields.items():
            value = item.get(name)
            if attr.role == bindings.SERVICE and value is not None and value not in self.services:
                return None  # an unknown service: reported by the loader
            if attr.role == bindings.SERVICE and value is not None and not self.present(
                value, env.name
            ):
                self._absent[self.origin(service, env.name, (*where, name)), value].append(
                    env.name
                )
                return None
            sub = (*where, name)
            by_convention = env.suffix and not env.is_local and not shared
            if attr.role == bindings.NAME and value and by_convention and not (
                self._per_environment(service, env.name, sub)
            ):
                value = self._suffixed(attr, value, service, env, sub)
                renamed = True
            values[name] = value
        for name, attr in kind.fields.items():
            sub = (*where, name)
            if attr.role == bindings.ID and renamed and not self._per_environment(
                service, env.name, sub
            ):
                values[name] = None  # it identifies the unsuffixed resource: look up by name
        if "migrations_dir" in kind.fields and "migrations_dir" not in item and (
            self._has_default_migrations(service_dir)  # where wrangler looks by default
        ):
            values["migrations_dir"] = "migrations"
        if kind.form == "list":
            values = {k: v for k, v in values.items() if v is not None}
        extra = tuple(
            (k, without_nulls(v)) for k, v in item.items()
            if k not in kind.fields and k not in ("shared", "binding") and v is not None
        )
        binding = "" if kind.form == "list" else key
        return bindings.Entry(
            binding, values, extra, shared, service,
            lambda target: self.worker_name(target, env.name),
        )

    def _suffixed(
        self, attr: bindings.Attr, value: str, service: str, env: model.Environment, sub: KeyPath
    ) -> str:
        """``value`` named by the environment's convention; the result must still be valid."""
        value += env.suffix
        problem = attr.problem(value)
        if problem:
            self.problems.add(
                self.origin(service, env.name, sub),
                f"{problem} (with the suffix of environment {env.name})",
            )
        return value

    # -- checks on merged workers ------------------------------------------------------------

    def _check_required(self, service: str, env: str, m: Mapping[str, Any]) -> None:
        """Binding keys that an override may supply must be there once merged."""
        for kind in bindings.KINDS:
            if kind.form != "map":
                continue
            for binding, item in (bindings.entries(m, kind) or {}).items():
                if isinstance(item, str):
                    continue
                where = (*kind.key, binding)
                has = [
                    k for k in kind.fields
                    if k in item or self._written(service, env, (*where, k))
                ]
                missing = [k for k, a in kind.fields.items() if a.required and k not in has]
                texts = [f"missing required key '{k}'" for k in missing]
                if kind.one_of and not set(kind.one_of) & set(has):
                    first, *others = kind.one_of
                    alternatives = " or ".join(f"'{k}'" for k in others)
                    texts.append(f"missing required key '{first}' (or {alternatives}, "
                                 f"{kind.one_of_hint})")
                for text in texts:
                    self._missing[self.origin(service, env, where), text].append(env)

    def _report_missing(self) -> None:
        every = len(self.envs)
        for (path, what), envs in self._missing.items():
            where = "" if len(envs) == every else f" (in {', '.join(envs)})"
            self.problems.add(path, what + where)
        for (path, target), envs in self._absent.items():
            self.problems.add(path, f"'{target}' does not deploy to {', '.join(envs)} "
                              f"(services.{target}.only_in): add them to its only_in, or bind "
                              "it only in the environments where it deploys")

    def _check_duplicates(self, service: str, env: str, m: Mapping[str, Any]) -> None:
        """A binding name may be used once per worker, across every binding kind."""
        names: list[tuple[str, KeyPath]] = []
        names += [(n, ("vars", n)) for n in m.get("vars", {})]
        # dome's list only: wrangler's own [secrets] table is wrangler's to judge (it reads a
        # placeholder var beside a required secret of that name)
        listed = m.get("secrets")
        if isinstance(listed, list):
            names += [(n, ("secrets", i)) for i, n in enumerate(listed)]
        for kind in bindings.KINDS:
            raw = bindings.entries(m, kind)
            if not raw or kind.form == "list":
                continue
            if kind.form == "single":
                if raw.get("binding"):
                    names.append((raw["binding"], (*kind.key, "binding")))
            else:
                names += [(n, (*kind.key, n)) for n in raw]
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

    def _check_limits(self, worker: model.WorkerConfig) -> None:
        """Cloudflare's limit on the number of variables (text and secrets) per Worker."""
        count = len(dict(worker.vars)) + len(set(worker.secrets) - set(dict(worker.vars)))
        if count > naming.VARS_MAX:
            self.problems.add(
                self.origin(worker.service, worker.environment, ("vars",)),
                f"{count} variables and secrets; Cloudflare allows at most "
                f"{naming.VARS_MAX} per Worker ({naming.VARS_MAX_FREE} on the Free plan)",
            )

    def _check_wrangler_schema(self, worker: model.WorkerConfig) -> None:
        """What dome passes through unmodelled (wrangler keys, extra fields of bindings and
        migrations), checked against wrangler's JSON schema, errors at their manifest lines.
        The rest of the rendered config is dome's own, checked by dome's own rules."""
        assert self.schema is not None
        places = _unmodelled(worker)
        if not places:
            return
        origins: shape.Origins = {}
        doc = shape.wrangler_config(worker, origins=origins)
        for place in places:
            value: Any = doc
            for part in place:
                value = value[part]
            for where, what, missing in self.schema.problems_at(place, value):
                sub = _manifest_place((*place, *where), origins)
                if missing and self._written(worker.service, worker.environment, (*sub, missing)):
                    continue  # written but invalid: reported by dome's own checks
                self.problems.add(self.origin(worker.service, worker.environment, sub), what)
            for path in self.schema.deprecated_in(value, place):
                sub = _manifest_place(path, origins)
                self.problems.warn(self.origin(worker.service, worker.environment, sub),
                                   deprecation(path) or "")

    def _check_isolation(self, workers: Mapping[tuple[str, str], model.WorkerConfig]) -> None:
        """A non-production environment must not use a production database, bucket, queue,
        route or custom domain, nor check a production host as its health URL."""
        production = {e.name for e in self.envs.values() if is_production(e) and not e.is_local}
        owners: dict[tuple[str, str], list[tuple[str | None, str]]] = defaultdict(list)
        hosts: dict[str, str] = {}  # production host -> its environment
        prod_workers: dict[str, str] = {}  # production worker name -> its environment
        for (_, env), worker in workers.items():
            if env in production:
                for noun, identity, account, _sub in _claims(worker):
                    owners[noun, identity].append((account, env))
                hosts.update(dict.fromkeys(_hosts(worker), env))
                prod_workers[worker.name] = env
        if not owners and not hosts:
            return
        for (service, env_name), worker in workers.items():
            if self.envs[env_name].is_local or env_name in production:
                continue
            found = []
            for noun, identity, account, sub in _claims(worker):
                prod_env = next(
                    (e for a, e in owners.get((noun, identity), ())
                     if a is None or account is None or a == account),
                    None,
                )
                if prod_env is not None:
                    shown = worker.routes[sub[1]].pattern if sub[0] == "routes" else identity
                    found.append((sub, f"{env_name} would use {prod_env}'s {noun} '{shown}'",
                                  noun in _RESOURCE_NOUNS))
            host = (urlsplit(worker.health_url).hostname or "").lower() if worker.health_url else ""
            label = host.split(".", 1)[0]
            prod_env = hosts.get(host) or (
                prod_workers.get(label) if host.endswith(".workers.dev") else None
            )
            if prod_env:
                found.append((("health_url",),
                              f"{env_name} would verify {prod_env}'s host '{host}'", False))
            for sub, what, resource in found:
                origin = self.origin(service, env_name, sub)
                if origin[:4] != ("services", service, "environments", env_name):
                    what += f"; override it under services.{service}.environments.{env_name}"
                if resource:
                    what += " (or mark the binding shared: true to share it on purpose)"
                self.problems.add(origin, what)


_RESOURCE_NOUNS = {
    attr.resource for kind in bindings.KINDS for attr in kind.resources.values()
}


def _manifest_place(place: tuple[str | int, ...], origins: shape.Origins) -> KeyPath:
    """The worker-layer key path of a place in the rendered config (longest known prefix)."""
    for cut in range(len(place), 0, -1):
        found = origins.get(place[:cut])
        if found is not None:
            return (*found, *place[cut:])
    return place


def _unmodelled(worker: model.WorkerConfig) -> list[tuple[Any, ...]]:
    """Places in the rendered config that hold something dome passes through unmodelled."""
    places: list[tuple[Any, ...]] = [(key,) for key in worker.extra]
    for kind in bindings.KINDS:
        for index, obj in enumerate(getattr(worker, kind.attr)):
            if obj.extra:
                places.append(kind.table if kind.form == "single" else (*kind.table, index))
    places += [("migrations", i) for i, m in enumerate(worker.durable_object_migrations) if m.extra]
    return places


def _claims(worker: model.WorkerConfig) -> list[tuple[str, str, str | None, KeyPath]]:
    """(what, identity, account, sub-path) of everything a worker owns in its environment.

    Resource ids are global (account None), compared in lower case; names are per account.
    Routes and custom domains are per zone (global); a health URL claims its host.
    """
    acc = worker.account_id
    found: list[tuple[str, str, str | None, KeyPath]] = []
    for kind in bindings.KINDS:
        for index, obj in enumerate(getattr(worker, kind.attr)):
            if getattr(obj, "shared", False):
                continue
            where = (*kind.key, index) if kind.form == "list" else (*kind.key, obj.binding)
            for name, attr in kind.resources.items():
                value = getattr(obj, kind.model_attr(name))
                if not value or attr.role == bindings.ID and placeholders.is_placeholder_id(value):
                    continue  # a placeholder is no environment's resource: warned once
                if attr.role == bindings.ID:
                    found.append((attr.resource, str(value).lower(), None, (*where, name)))
                else:
                    found.append((attr.resource, str(value), acc, (*where, name)))
    for index, route in enumerate(worker.routes):
        noun = "custom domain" if route.custom_domain else "route"
        found.append((noun, _pattern(route.pattern), None, ("routes", index)))
    return found


def _pattern(pattern: str) -> str:
    """A route pattern compared as Cloudflare matches it: no scheme, host in lower case."""
    text = pattern.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host, slash, rest = text.partition("/")
    return host.lower() + slash + rest


def _hosts(worker: model.WorkerConfig) -> set[str]:
    """Hosts that reach this worker: its routes' and custom domains' hosts, its health URL's."""
    hosts = set()
    for route in worker.routes:
        host = _pattern(route.pattern).split("/", 1)[0]
        if host and "*" not in host:
            hosts.add(host)
    if worker.health_url:
        hosts.add((urlsplit(worker.health_url).hostname or "").lower())
    return hosts - {""}


def _route(value: str | Mapping[str, Any]) -> model.Route:
    if isinstance(value, str):
        return model.Route(value)
    return model.Route(
        value["pattern"], value.get("zone_name"), value.get("custom_domain", False),
        value.get("zone_id"),
    )
