"""A pull request's preview as a synthetic environment ``pr-N``, derived from a template one.

Pure: :func:`preview_manifest` returns the manifest with one more environment, so the planner,
renderer and runner deploy a preview like any environment. Each worker of the template
environment becomes ``<service>-pr-N`` (a worker with its own name there: ``<that name>-pr-N``),
keeps the template's settings (vars, compatibility, crons, declared secrets), loses its routes
(workers.dev only: a preview never takes over the template's hosts), and binds to the preview's
own workers and resources: every D1 database, KV namespace, R2 bucket, queue and Vectorize
index is renamed ``<name>-pr-N`` (the template's suffix dropped first: ``silo-db-staging`` ->
``silo-db-pr-7``) and looked up by name (``invoke provision`` creates it). A KV namespace
known only by id gets the title ``<service>-<binding>-pr-N``. Resources marked ``shared: true``,
Hyperdrive configs and AI stay the template's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from dome_tasks.errors import UsageError
from dome_tasks.manifest import bindings, naming
from dome_tasks.manifest.model import Environment, WorkerConfig

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest

__all__ = ["PREFIX", "environment_name", "parse_number", "preview_manifest"]

PREFIX = "pr-"
_NUMBER = re.compile(r"(?:pr-?|#)?(\d{1,9})", re.IGNORECASE)


def parse_number(value: str | int) -> int:
    """A pull request number from ``7``, ``pr-7`` or ``#7``; else one clear :class:`UsageError`."""
    match = _NUMBER.fullmatch(str(value).strip())
    if not match or int(match.group(1)) < 1:
        raise UsageError(f"{value!r} is not a pull request number",
                         hint="give the number, e.g. `invoke preview-up 42`")
    return int(match.group(1))


def environment_name(number: int) -> str:
    return f"{PREFIX}{number}"


def preview_manifest(manifest: Manifest, template: str, number: int) -> Manifest:
    """``manifest`` plus the environment ``pr-<number>`` derived from ``template``."""
    base = manifest.environment(template)
    if base.is_local:
        raise UsageError(f"{base.name} runs under `wrangler dev`: a preview is made from a remote "
                         "environment", hint="use --from staging (the default) or development")
    name = environment_name(number)
    if name in manifest.environments:
        raise UsageError(f"the manifest has an environment called {name}: a preview cannot use "
                         "that name", hint="rename that environment")
    env = Environment(name=name, suffix=f"-{name}", account_id=base.account_id,
                      workers_dev=True, vars=base.vars)
    workers = {key: value for key, value in manifest._workers.items()}
    renamed = {s: _worker_name(manifest.resolve(s, base.name).name, s, base.suffix, env.suffix)
               for s in manifest.services}
    problems = [p for s, worker in renamed.items() if (p := naming.worker_name(worker))]
    for service in manifest.services:
        workers[service, name] = _preview_worker(manifest.declared(service, base.name), env,
                                                 base.suffix, renamed, problems)
    if problems:
        raise UsageError(f"cannot make preview {name} from {base.name}: " + "; ".join(problems),
                         hint="shorten the names in the manifest, or use a smaller number")
    names = {**manifest._names, name: name}
    return dataclasses.replace(
        manifest,
        environments=MappingProxyType({**manifest.environments, name: env}),
        _workers=MappingProxyType(workers),
        _names=MappingProxyType(names),
        _filled={},
        _lock=[],
    )


def _worker_name(template_worker: str, service: str, template_suffix: str, suffix: str) -> str:
    """``<service><suffix>``; a worker with its own name in the template: that name + suffix."""
    if template_worker == service + template_suffix:
        return service + suffix
    return template_worker + suffix


def _renamed(value: str, template_suffix: str, suffix: str) -> str:
    if template_suffix and value.endswith(template_suffix):
        value = value[: -len(template_suffix)]
    return value + suffix


def _preview_worker(config: WorkerConfig, env: Environment, template_suffix: str,
                    workers: Mapping[str, str], problems: list[str]) -> WorkerConfig:
    """The template's worker as the preview's: own name, own resources, no routes."""
    changes: dict[str, Any] = {}
    for kind in bindings.KINDS:
        objects = getattr(config, kind.attr)
        if objects:
            changes[kind.attr] = tuple(
                _preview_binding(kind, obj, config.service, env.suffix, template_suffix,
                                 workers, problems) for obj in objects)
    health_url = config.health_url
    if health_url and config.routes:  # it names one of the template's hosts
        health_url = None
    return dataclasses.replace(
        config, environment=env.name, name=workers[config.service], routes=(), workers_dev=True,
        health_url=health_url, **changes)


def _preview_binding(kind: bindings.BindingKind, obj: Any, service: str, suffix: str,
                     template_suffix: str, workers: Mapping[str, str], problems: list[str]) -> Any:
    if kind.attr == "services":
        return dataclasses.replace(obj, worker=workers[obj.service])
    if kind.attr == "durable_objects" and obj.script_name:
        hosts = {f"{s}{template_suffix}": w for s, w in workers.items()}
        return dataclasses.replace(obj, script_name=hosts.get(obj.script_name, obj.script_name))
    names = {n: a for n, a in kind.fields.items() if a.role == bindings.NAME}
    if getattr(obj, "shared", False) or not names:  # shared on purpose, or not creatable
        return obj
    ids = [n for n, a in kind.fields.items() if a.role == bindings.ID]
    values: dict[str, Any] = {kind.model_attr(n): None for n in ids}
    for field_name, attr in names.items():
        current = getattr(obj, kind.model_attr(field_name))
        if current is None and kind.attr == "kv_namespaces":
            current = f"{service}-{obj.binding.lower().replace('_', '-')}"
        if current is None:
            continue
        new = _renamed(current, template_suffix, suffix)
        problem = attr.problem(new)
        if problem:
            problems.append(problem)
        values[kind.model_attr(field_name)] = new
    return dataclasses.replace(obj, **values)
