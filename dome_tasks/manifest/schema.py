"""The declarative shape of dome.yaml, and :func:`validate` that checks a document against it.

Structure only (keys, types, required keys, name formats); merged-per-environment rules,
cross-references and the dependency graph are checked by the resolver and the loader. The
binding kinds come from :mod:`~dome_tasks.manifest.bindings`; every other wrangler key is
accepted where wrangler's own config has it (its value is checked against wrangler's JSON
schema once merged, see :mod:`~dome_tasks.manifest.wrangler_schema`).
"""

from __future__ import annotations

from typing import Any

from dome_tasks.manifest import bindings, naming
from dome_tasks.manifest._kinds import (
    BINDING,
    BOOL,
    COMMAND,
    NONEMPTY,
    VAR_VALUE,
    AnyOf,
    Field,
    ListOf,
    MapOf,
    Record,
    Scalar,
    Validator,
    WranglerKeys,
    string,
)
from dome_tasks.manifest._problems import Problems
from dome_tasks.manifest.urls import route_problem, url_problem

__all__ = ["MANIFEST", "WORKER_FIELDS", "validate"]


def _path_like(value: str) -> str | None:
    return "must start with '/'" if not value.startswith("/") else None


def _version(value: int) -> str | None:
    return None if value == 1 else f"unsupported version {value}; this dome-tasks reads version 1"


def _kind(value: str) -> str | None:
    return None if value in ("remote", "local") else f"'{value}' is not 'remote' or 'local'"


def _ports(value: Any) -> str | None:
    text = str(value)
    first, _, last = text.partition("-")
    if not (first.isdigit() and (not last or last.isdigit())):
        return f"'{text}' is not a port or a range such as '8787-8799'"
    low, high = int(first), int(last or first)
    if not (1 <= low <= high <= 65535):
        return f"'{text}' is not a port range within 1-65535 (first <= last)"
    return None


#: Wrangler keys that dome writes itself or spells its own way: refused, saying what to write.
REFUSED = {
    "name": ("a worker's name is the service name plus the environment's suffix; where one "
             "differs, put it under services.<service>.environments.<env>.name"),
    "env": "write what differs per environment under services.<service>.environments.<env>",
    "legacy_env": "dome renders one config per environment; remove it",
    "route": "write it as a list: routes: [...]",
    "migrations": "write Durable Object migrations as durable_object_migrations: [...]",
    "$schema": "the rendered config is generated; remove it",
    "pages_build_output_dir": "dome deploys Workers, not Pages projects; remove it",
}
#: Keys of real configs that wrangler 4 ignores: accepted with a warning, not rendered.
DROPPED = {
    "miniflare": "wrangler 4 ignores [miniflare] (and warns about it), so dome drops it; "
    "put wrangler dev settings under dev: {...}",
}

ROUTE = AnyOf(
    (
        string(route_problem),
        Record(
            {
                "pattern": Field(string(route_problem), required=True),
                "zone_name": Field(NONEMPTY),
                "zone_id": Field(NONEMPTY),
                "custom_domain": Field(BOOL),
            },
            wrangler=("routes", "[]"),
        ),
    ),
    "a route pattern or a mapping {pattern, zone_name, custom_domain}",
)
CLASS_NAME = string(lambda v: naming.js_identifier(v, "class name"))


def _binding_fields() -> dict[str, Field]:
    """Each binding kind at its key; kinds under one parent (``queues``) share a record."""
    fields: dict[str, Field] = {}
    grouped: dict[str, dict[str, Field]] = {}
    for kind in bindings.KINDS:
        shape = bindings.schema_kind(kind)
        if len(kind.key) == 1:
            fields[kind.key[0]] = Field(shape)
        else:
            grouped.setdefault(kind.key[0], {})[kind.key[1]] = Field(shape)
    for parent, children in grouped.items():
        fields[parent] = Field(Record(children, wrangler=(parent,)))
    return fields


WORKER_FIELDS: dict[str, Field] = {
    "main": Field(NONEMPTY),
    # the worker's own name in one environment (services.X.environments.E only), where it is
    # not the service's name plus the environment's suffix (an imported "foo-production")
    "name": Field(string(lambda value: naming.worker_name(value))),
    "compatibility_date": Field(string(naming.compatibility_date)),
    "compatibility_flags": Field(ListOf(NONEMPTY)),
    "account_id": Field(string(naming.account_id, lenient=True), nullable=True),
    "workers_dev": Field(BOOL, nullable=True),
    "routes": Field(ListOf(ROUTE)),
    "vars": Field(MapOf(VAR_VALUE, naming.binding_name)),
    # the names of the worker's secrets; or wrangler's own table {required: [names]}, which is
    # also rendered as written (wrangler checks them in `wrangler dev` and types)
    "secrets": Field(AnyOf((ListOf(BINDING), Record({"required": Field(ListOf(BINDING))},
                                                    wrangler=("secrets",))),
                           "a list of secret names, or wrangler's [secrets] table")),
    # dome's build command (a string or argv), or wrangler's own [build] table (a mapping:
    # command, cwd, watch_dir), which is rendered as written and run by wrangler itself
    "build": Field(AnyOf((*COMMAND.options, Record({}, wrangler=("build",))),
                         "a command (a string or a list of arguments), or wrangler's [build] "
                         "table"), nullable=True),
    "health_path": Field(string(_path_like), nullable=True),
    "health_url": Field(string(url_problem), nullable=True),
    "smoke": Field(ListOf(COMMAND)),
    "wrangler": Field(COMMAND, nullable=True),
    "observability": Field(Record({"enabled": Field(BOOL)}, wrangler=("observability",))),
    **_binding_fields(),
    "durable_object_migrations": Field(
        ListOf(
            Record(
                {
                    "tag": Field(NONEMPTY, required=True),
                    "new_classes": Field(ListOf(CLASS_NAME)),
                    "new_sqlite_classes": Field(ListOf(CLASS_NAME)),
                },
                wrangler=("migrations", "[]"),
            )
        )
    ),
}


def _worker_record(fields: dict[str, Field]) -> Record:
    return Record(fields, wrangler=(), refused=REFUSED, dropped=DROPPED)


OVERRIDE = _worker_record(WORKER_FIELDS)
SERVICE = _worker_record(
    {
        **WORKER_FIELDS,
        "path": Field(NONEMPTY),
        "depends_on": Field(ListOf(NONEMPTY)),
        "only_in": Field(ListOf(NONEMPTY)),
        "interface": Field(ListOf(NONEMPTY)),
        "environments": Field(MapOf(OVERRIDE)),
    }
)
ENVIRONMENT = Record(
    {
        "suffix": Field(string(naming.suffix)),
        "aliases": Field(ListOf(string(naming.environment_name))),
        "kind": Field(string(_kind)),
        "account_id": Field(string(naming.account_id, lenient=True), nullable=True),
        "protected": Field(BOOL),
        "workers_dev": Field(BOOL, nullable=True),
        "vars": Field(MapOf(VAR_VALUE, naming.binding_name)),
        "ports": Field(Scalar((str, int), "a port or a range such as '8787-8799'", _ports)),
        "state_dir": Field(NONEMPTY),
    }
)
#: ``previews:``: what a pull request's preview environment adds (``invoke preview-up``):
#: ``seed: {service: {D1 binding: path.sql}}`` runs once, when the preview creates its database.
PREVIEWS = Record({"seed": Field(MapOf(MapOf(NONEMPTY, naming.binding_name)))})
MANIFEST = Record(
    {
        "version": Field(Scalar((int,), "an integer", _version), required=True),
        "defaults": Field(OVERRIDE),
        "environments": Field(MapOf(ENVIRONMENT, naming.environment_name), required=True),
        "services": Field(MapOf(SERVICE), required=True),
        "templates": Field(NONEMPTY),
        "previews": Field(PREVIEWS),
    }
)

#: Keys of a worker layer that dome models (everything else is wrangler's, passed through).
DOME_KEYS = frozenset(WORKER_FIELDS) | {"path", "depends_on", "only_in", "interface", "environments"}


def validate(data: Any, problems: Problems, wrangler_keys: WranglerKeys | None = None) -> dict:
    """Check the whole document; returns the valid part (``{}`` if the root is not a mapping).

    ``wrangler_keys(place)`` lists the keys wrangler's config accepts at a place; None when
    wrangler's schema is unavailable (wrangler keys then pass unchecked).
    """
    checked = Validator(problems, wrangler_keys).check(MANIFEST, data, ())
    return checked if isinstance(checked, dict) else {}

