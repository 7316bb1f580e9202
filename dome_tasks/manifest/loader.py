"""Load and validate dome.yaml into an immutable :class:`Manifest`.

``load(path)`` reports every problem at once (file:line, key path, what, did-you-mean) as one
:class:`~dome_tasks.errors.ManifestError`. The manifest resolves each (service, environment)
to a :class:`~dome_tasks.manifest.model.WorkerConfig` and orders services by their dependencies.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dome_tasks.errors import ManifestError, UsageError, did_you_mean
from dome_tasks.manifest import _source as yaml_source
from dome_tasks.manifest import environments as envs_mod
from dome_tasks.manifest import naming, validation
from dome_tasks.manifest._problems import KeyPath, Problems
from dome_tasks.manifest.files import outside
from dome_tasks.manifest.graph import CycleError, Graph
from dome_tasks.manifest.bindings import with_ids
from dome_tasks.manifest.model import Environment, WorkerConfig
from dome_tasks.manifest.previews import Seeds, seeds
from dome_tasks.manifest.resource_ids import ResourceLock
from dome_tasks.manifest.resolve import Resolver
from dome_tasks.manifest.wrangler_schema import WranglerSchema, load_schema

log = logging.getLogger("dome_tasks.manifest")

__all__ = ["Manifest", "Service", "load", "loads"]


@dataclass(frozen=True)
class Service:
    """One service of the manifest, independent of environment."""

    name: str
    directory: Path  # absolute
    dependencies: tuple[str, ...]  # services it binds to or depends_on, any environment


@dataclass(frozen=True, eq=False)
class Manifest:
    """A validated dome.yaml. Build it with :func:`load`."""

    path: Path  # absolute path of the YAML file
    root: Path  # its folder; service paths, templates and state dirs are relative to it
    environments: Mapping[str, Environment]  # name -> Environment, manifest order (+ local)
    services: tuple[str, ...]  # service names, manifest order
    templates_dir: Path | None = None  # user templates overriding the packaged ones
    warnings: tuple[str, ...] = ()  # accepted but ignored keys (file:line: key.path: why)
    wrangler_schema: str | None = None  # which wrangler config schema checked it (None: none)
    preview_seeds: Seeds = field(default_factory=dict)  # previews.seed: service -> binding -> SQL
    _services: Mapping[str, Service] = field(default_factory=dict, repr=False)
    _workers: Mapping[tuple[str, str], WorkerConfig] = field(default_factory=dict, repr=False)
    _graph: Graph = field(default_factory=lambda: Graph((), {}), repr=False)
    _names: Mapping[str, str] = field(default_factory=dict, repr=False)  # name/alias -> name
    # remote configs with the ids provision recorded filled in (read once, on first use)
    _filled: dict[tuple[str, str], WorkerConfig] = field(default_factory=dict, repr=False)
    _lock: list[ResourceLock] = field(default_factory=list, repr=False)

    def environment(self, name_or_alias: str) -> Environment:
        """The environment called (or aliased) ``name_or_alias``; else :class:`UsageError`."""
        name = self._names.get(name_or_alias)
        if name is None:
            hint = did_you_mean(name_or_alias, self._names)
            valid = ", ".join(
                f"{e.name} ({', '.join(e.aliases)})" if e.aliases else e.name
                for e in self.environments.values()
            )
            raise UsageError(
                f"unknown environment '{name_or_alias}'" + (f"; {hint}" if hint else ""),
                hint=f"valid environments: {valid}",
            )
        return self.environments[name]

    def service(self, name: str) -> Service:
        """The service called ``name``; else :class:`UsageError` with did-you-mean."""
        found = self._services.get(name)
        if found is None:
            hint = did_you_mean(name, self.services)
            raise UsageError(
                f"unknown service '{name}'" + (f"; {hint}" if hint else ""),
                hint=f"services in {self.path.name}: {', '.join(self.services) or '(none)'}",
            )
        return found

    def deploys(self, service: str, environment: str) -> bool:
        """Whether ``service`` deploys to ``environment`` (see ``only_in``)."""
        return (self.service(service).name, self.environment(environment).name) in self._workers

    def services_in(self, environment: str) -> tuple[str, ...]:
        """The services that deploy to ``environment``, in manifest order."""
        env = environment if environment in self.environments else (
            self.environment(environment).name
        )
        return tuple(s for s in self.services if (s, env) in self._workers)

    def _key(self, service: str, environment: str) -> tuple[str, str]:
        key = (self.service(service).name, self.environment(environment).name)
        if key not in self._workers:
            raise UsageError(
                f"{key[0]} does not deploy to {key[1]}",
                hint=f"services.{key[0]}.only_in in {self.path.name} lists where it does; "
                f"add {key[1]} there to deploy it",
            )
        return key

    def resolve(self, service: str, environment: str) -> WorkerConfig:
        """The fully merged configuration of ``service`` in ``environment`` (name or alias)."""
        key = self._key(service, environment)
        found = self._filled.get(key)
        if found is None:
            found = self._workers[key]
            if not self.environments[key[1]].is_local:
                found = with_ids(found, self.resource_lock.ids_for(found.account_id))
            self._filled[key] = found
        return found

    def declared(self, service: str, environment: str) -> WorkerConfig:
        """Like :meth:`resolve`, but only what dome.yaml says: no ids filled in from
        ``.dome/resources.json`` (what provision and the importer compare)."""
        return self._workers[self._key(service, environment)]

    @property
    def resource_lock(self) -> ResourceLock:
        """The ids ``invoke provision`` found by name (``.dome/resources.json``), read once."""
        if not self._lock:
            self._lock.append(ResourceLock.load(self.root))
        return self._lock[0]

    def dependencies(self, service: str) -> tuple[str, ...]:
        """Services ``service`` needs deployed first (bindings and ``depends_on``)."""
        return self.service(service).dependencies

    def dependents(self, service: str, *, transitive: bool = False) -> tuple[str, ...]:
        """Services that bind to / depend on ``service``, in manifest order."""
        return self._graph.dependents(self.service(service).name, transitive=transitive)

    def deploy_order(self, services: Iterable[str] | None = None) -> list[str]:
        """Services (all, or the given subset) ordered after what they bind to; ties keep
        manifest order."""
        return self._graph.order_of(self._subset(services))

    def waves(self, services: Iterable[str] | None = None) -> list[list[str]]:
        """Groups that can deploy in parallel, in order (each after the ones it needs)."""
        return self._graph.waves(self._subset(services))

    def _subset(self, services: Iterable[str] | None) -> list[str] | None:
        if services is None:
            return None
        if isinstance(services, str):
            services = [services]
        return [self.service(s).name for s in services]


def load(path: str | Path, *, check_files: bool = True) -> Manifest:
    """Read, validate and resolve the manifest at ``path``; raises :class:`ManifestError`.

    ``check_files=False`` skips checking that service folders, ``main`` files and migrations
    folders exist (paths must still stay inside the repository).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(
            f"{path}: manifest not found", hint="create dome.yaml or point dome.manifest at it"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read the manifest: {exc}") from None
    return loads(text, path, check_files=check_files,
                 cache=path.resolve().parent / ".dome" / "cache")


def loads(
    text: str, path: str | Path, *, check_files: bool = True, cache: Path | None = None
) -> Manifest:
    """Validate manifest ``text`` as if read from ``path`` (relative paths resolve from it).

    ``cache``: a folder remembering texts that passed the schema pass (see
    :class:`~dome_tasks.manifest.validation.Memo`); None validates every time.
    """
    filename = str(path)
    source = yaml_source.parse(text, filename)
    problems = Problems(filename, source.lines)
    for key_path, line, what in source.problems:
        problems.add(key_path, what, line=line)
    resolved = Path(path).resolve()
    wrangler = load_schema(resolved.parent)
    memo = validation.Memo(cache, resolved, text, wrangler) if cache else None
    data = validation.check(source.data, problems, wrangler, memo)
    manifest = _assemble(data, source.data, resolved, problems, wrangler, check_files)
    problems.raise_if_any()
    for warning in problems.warnings:
        log.warning("%s", warning)
    return manifest


def _assemble(
    data: dict[str, Any],
    raw: Any,
    path: Path,
    problems: Problems,
    wrangler: WranglerSchema | None,
    check_files: bool,
) -> Manifest:
    root = path.parent
    envs = envs_mod.build(data.get("environments", {}), problems)
    _check_paths(data, root, problems)
    services: dict[str, dict[str, Any]] = data.get("services", {})
    raw_services = raw.get("services") if isinstance(raw, dict) else None
    known = set(raw_services) if isinstance(raw_services, dict) else set(services)
    for name in services:
        _check_worker_names(name, envs, problems)
    _check_name_placement(data, problems)
    _check_override_environments(services, envs, problems)
    edges = _collect_edges(data, services, known, problems)
    graph = Graph(tuple(services), {s: tuple(e) for s, e in edges.items()})
    try:
        graph.order()
    except CycleError as exc:
        for cycle in exc.cycles:
            problems.add(edges[cycle[0]][cycle[1]], "dependency cycle: " + " -> ".join(cycle))
    workers = Resolver(
        data, envs, services, root, problems, schema=wrangler, check_files=check_files
    ).build_all()
    preview_seeds = seeds(data, workers, root, problems, check_files=check_files)
    names = {n: e.name for e in envs.values() for n in (*e.aliases, e.name)}
    names.update({e.name: e.name for e in envs.values()})
    templates = data.get("templates")
    return Manifest(
        path=path,
        root=root,
        environments=MappingProxyType(envs),
        services=tuple(services),
        templates_dir=root / templates if templates else None,
        warnings=tuple(problems.warnings),
        wrangler_schema=wrangler.source if wrangler else None,
        preview_seeds=preview_seeds,
        _services=MappingProxyType(
            {
                s: Service(s, root / spec.get("path", f"services/{s}"), graph.deps[s])
                for s, spec in services.items()
            }
        ),
        _workers=MappingProxyType(workers),
        _graph=graph,
        _names=MappingProxyType(names),
    )


def _check_paths(data: Mapping[str, Any], root: Path, problems: Problems) -> None:
    """Folders named outside the services stay inside the repository too."""
    named = [(("templates",), data.get("templates"))]
    named += [(("environments", name, "state_dir"), spec.get("state_dir"))
              for name, spec in data.get("environments", {}).items()]
    for where, value in named:
        problem = outside(root, root, value) if isinstance(value, str) else None
        if problem:
            problems.add(where, problem)


def _check_name_placement(data: Mapping[str, Any], problems: Problems) -> None:
    """``name`` names one worker: not in ``defaults`` (every service would get it; the schema
    refuses it in a service, where every environment would)."""
    from dome_tasks.manifest.schema import REFUSED

    if "name" in data.get("defaults", {}):
        problems.add(("defaults", "name"), REFUSED["name"])


def _check_worker_names(service: str, envs: Mapping[str, Environment], problems: Problems) -> None:
    path = ("services", service)
    problem = naming.worker_name(service)
    if problem:
        problems.add(path, problem)
        return
    for env in envs.values():
        problem = naming.worker_name(service, env.suffix)
        if problem:
            problems.add(path, f"{problem} (environment {env.name})")


def _check_override_environments(
    services: Mapping[str, Mapping[str, Any]], envs: Mapping[str, Environment], problems: Problems
) -> None:
    """Environments named by a service (its overrides, ``only_in``) exist, by their own name;
    an override is for an environment the service deploys to."""
    aliases = {a: e.name for e in envs.values() for a in e.aliases}

    def unknown(env: str) -> str | None:
        if env in envs:
            return None
        if env in aliases:
            return f"'{env}' is an alias; use the environment name '{aliases[env]}'"
        hint = did_you_mean(env, envs)
        return f"unknown environment '{env}'" + (f"; {hint}" if hint else "")

    for service, spec in services.items():
        only_in = spec.get("only_in")
        for i, env in enumerate(only_in or ()):
            if what := unknown(env):
                problems.add(("services", service, "only_in", i), what)
        for env in list(spec.get("environments", {})):
            path = ("services", service, "environments", env)
            if what := unknown(env):
                problems.add(path, what)
            elif only_in is not None and env not in only_in:
                problems.add(path, f"{service} does not deploy to {env} (its only_in: "
                             f"{', '.join(only_in) or 'none'}): add {env} there, or remove "
                             "this override")


def _collect_edges(
    data: Mapping[str, Any],
    services: Mapping[str, Mapping[str, Any]],
    known: set[str],
    problems: Problems,
) -> dict[str, dict[str, KeyPath]]:
    """service -> {dependency: key path of its first mention}; reports unknown services."""
    defaults = data.get("defaults", {})
    default_refs = list(_references(defaults, ("defaults",)))
    for target, where in default_refs:
        _check_reference(target, where, known, problems)
    edges: dict[str, dict[str, KeyPath]] = {}
    for service, spec in services.items():
        base = ("services", service)
        refs = list(default_refs) + list(_references(spec, base))
        for env, override in spec.get("environments", {}).items():
            refs += _references(override, (*base, "environments", env))
        depends = [(t, (*base, "depends_on", i)) for i, t in enumerate(spec.get("depends_on", ()))]
        for target, where in depends:
            if target == service:
                problems.add(where, f"'{service}' cannot depend on itself; remove this entry")
        refs += depends
        found: dict[str, KeyPath] = {}
        for target, where in refs:
            if where[0] != "defaults" and not _check_reference(target, where, known, problems):
                continue
            if target != service and target in services:
                found.setdefault(target, where)
        edges[service] = found
    return edges


def _references(layer: Mapping[str, Any], base: KeyPath) -> Iterable[tuple[str, KeyPath]]:
    """(service name, key path) of service bindings and durable object hosts in one layer."""
    for binding, value in layer.get("services", {}).items():
        if isinstance(value, str):
            yield value, (*base, "services", binding)
        elif "service" in value:
            yield value["service"], (*base, "services", binding, "service")
    for binding, value in layer.get("durable_objects", {}).items():
        if "service" in value:
            yield value["service"], (*base, "durable_objects", binding, "service")


def _check_reference(target: str, where: KeyPath, known: set[str], problems: Problems) -> bool:
    if target in known:
        return True
    hint = did_you_mean(target, known)
    problems.add(where, f"unknown service '{target}'" + (f"; {hint}" if hint else ""))
    return False
