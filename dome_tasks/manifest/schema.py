"""dome.yaml's shape, declared once as JSON Schema fragments: the source of dome.schema.json.

Structure only (keys, types, required keys, name formats; ``x-check`` names what JSON Schema
cannot say, see :mod:`~dome_tasks.manifest.checks`). Merged-per-environment rules,
cross-references and the dependency graph are the resolver's and the loader's. The binding kinds
come from :mod:`~dome_tasks.manifest.bindings`; every other wrangler key is accepted where
wrangler's own config has it (:mod:`~dome_tasks.manifest.json_schema` lists them, with a
``$ref`` into wrangler's schema, where a mapping is marked ``x-wrangler``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dome_tasks.manifest import bindings
from dome_tasks.manifest.naming import PATTERNS

__all__ = ["DEFINITIONS", "DOME_KEYS", "DROPPED", "ENVIRONMENT", "MANIFEST", "REFUSED",
           "WORKER_FIELDS"]

#: A JSON Schema fragment. ``"x-check": NAME`` names a check of
#: :mod:`~dome_tasks.manifest.checks` (what JSON Schema cannot say, or cannot word well);
#: ``"x-wrangler": PLACE`` marks a mapping whose other keys are wrangler's own at that place of
#: its config (``d1_databases/[]``; ``""`` the top level). Editors ignore both.
Fragment = dict[str, Any]


def string(check: str | None = None, **more: Any) -> Fragment:
    """A string; ``check`` names its check (and gives its pattern, when it has one)."""
    out: Fragment = {"type": "string", **more, **({"minLength": 1} if check == "nonempty" else {})}
    if check in PATTERNS:
        out["pattern"] = PATTERNS[check]
    if check:
        out["x-check"] = check
    return out


def array(items: Fragment) -> Fragment:
    return {"type": "array", "items": items}


def mapping(values: Fragment, names: str | None = None) -> Fragment:
    """A mapping with keys the user chooses (binding names…); ``names`` checks each key."""
    out: Fragment = {"type": "object"}
    if names:
        out["propertyNames"] = {k: v for k, v in string(names).items() if k != "type"}
    out["additionalProperties"] = values
    return out


def record(properties: Mapping[str, Fragment], required: Iterable[str] = (),
           wrangler: tuple[str, ...] | None = None) -> Fragment:
    """A mapping with a fixed set of keys (plus wrangler's at ``wrangler``, its place)."""
    out: Fragment = {"type": "object", "properties": dict(properties)}
    if required := list(required):
        out["required"] = required
    out["additionalProperties"] = False
    if wrangler is not None:
        out["x-wrangler"] = "/".join(wrangler)
    return out


def any_of(*options: Fragment, title: str) -> Fragment:
    """One of ``options`` (their types differ); ``title`` is what a wrong type is told to be."""
    return {"title": title, "anyOf": list(options)}


def nullable(fragment: Fragment) -> Fragment:
    """``fragment`` or null (null in a later layer switches a key off)."""
    if "anyOf" in fragment:
        return {**fragment, "anyOf": [*fragment["anyOf"], {"type": "null"}]}
    if isinstance(fragment.get("type"), str):
        return {**fragment, "type": [fragment["type"], "null"]}
    return {"anyOf": [fragment, {"type": "null"}]}


NONEMPTY = string("nonempty")
BOOL: Fragment = {"type": "boolean"}
BINDING = string("binding_name")
CLASS_NAME = string("class_name")


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
#: Keys of real configs that wrangler 4 ignores, by wrangler place: accepted with a warning,
#: not rendered.
DROPPED = {
    "": {"miniflare": "wrangler 4 ignores [miniflare] (and warns about it), so dome drops it; "
         "put wrangler dev settings under dev: {...}"},
    "services/[]": {"environment": "the legacy 'environment' key is ignored: dome binds the "
                    "worker of the same environment; remove it"},
}

COMMAND = any_of(string("command"), array(NONEMPTY),
                 title="a command (a string or a list of arguments)")
ROUTE = any_of(
    string("route"),
    record({"pattern": string("route"), "zone_name": NONEMPTY, "zone_id": NONEMPTY,
            "custom_domain": BOOL}, ["pattern"], wrangler=("routes", "[]")),
    title="a route pattern or a mapping {pattern, zone_name, custom_domain}",
)
VAR_VALUE: Fragment = {"title": "a string, number, boolean or JSON value",
                       "type": ["string", "number", "boolean", "object", "array"],
                       "x-check": "var"}
VARS = mapping(VAR_VALUE, "binding_name")
WORKER_REF: Fragment = {"$ref": "#/definitions/worker"}


def _binding(kind: bindings.BindingKind) -> Fragment:
    """One binding kind at its key. Required fields of map entries are checked after merging
    (an override may supply them); list entries are replaced as a whole, so theirs are
    required in each item."""
    props = {name: string(attr.check) if attr.type == "string" else {"type": attr.type}
             for name, attr in kind.fields.items()}
    props = {n: nullable(p) if kind.fields[n].nullable else p for n, p in props.items()}
    required = [n for n, a in kind.fields.items() if a.required and kind.form == "list"]
    if kind.resources:
        props["shared"] = BOOL
    if kind.form == "single":
        props, required = {"binding": BINDING, **props}, ["binding"]
    place = kind.table if kind.form == "single" else (*kind.table, "[]")
    entry = record(props, required, wrangler=place)
    if kind.form == "list":
        return array(entry)
    if kind.form == "single":
        return entry
    if kind.shorthand:
        entry = any_of(NONEMPTY, entry, title=kind.label)
    return mapping(entry, "binding_name")


def _binding_fields() -> dict[str, Fragment]:
    """Each binding kind at its key; kinds under one parent (``queues``) share a record."""
    fields: dict[str, Fragment] = {}
    grouped: dict[str, dict[str, Fragment]] = {}
    for kind in bindings.KINDS:
        if len(kind.key) == 1:
            fields[kind.key[0]] = _binding(kind)
        else:
            grouped.setdefault(kind.key[0], {})[kind.key[1]] = _binding(kind)
    for parent, children in grouped.items():
        fields[parent] = record(children, wrangler=(parent,))
    return fields


WORKER_FIELDS: dict[str, Fragment] = {
    "main": NONEMPTY,
    # the worker's own name in one environment (services.X.environments.E only), where it is
    # not the service's name plus the environment's suffix (an imported "foo-production")
    "name": string("worker_name", maxLength=63),
    "compatibility_date": string("compatibility_date"),
    "compatibility_flags": array(NONEMPTY),
    "account_id": nullable(string("account_id")),
    "workers_dev": nullable(BOOL),
    "routes": array(ROUTE),
    "vars": VARS,
    # the names of the worker's secrets; or wrangler's own table {required: [names]}, which is
    # also rendered as written (wrangler checks them in `wrangler dev` and types)
    "secrets": any_of(array(BINDING), record({"required": array(BINDING)}, wrangler=("secrets",)),
                      title="a list of secret names, or wrangler's [secrets] table"),
    # dome's build command (a string or argv), or wrangler's own [build] table (a mapping:
    # command, cwd, watch_dir), which is rendered as written and run by wrangler itself
    "build": nullable(any_of(*COMMAND["anyOf"], record({}, wrangler=("build",)),
                             title="a command (a string or a list of arguments), or wrangler's "
                             "[build] table")),
    "health_path": nullable(string("path")),
    "health_url": nullable(string("url")),
    "smoke": array(COMMAND),
    "wrangler": nullable(COMMAND),
    "observability": record({"enabled": BOOL}, wrangler=("observability",)),
    **_binding_fields(),
    "durable_object_migrations": array(record(
        {"tag": NONEMPTY, "new_classes": array(CLASS_NAME),
         "new_sqlite_classes": array(CLASS_NAME)},
        ["tag"], wrangler=("migrations", "[]"))),
}
SERVICE_FIELDS: dict[str, Fragment] = {
    "path": NONEMPTY,
    "depends_on": array(NONEMPTY),
    "only_in": array(NONEMPTY),
    "interface": array(NONEMPTY),
    "environments": mapping(WORKER_REF),
}
ENVIRONMENT = record({
    "suffix": string("suffix"),
    "aliases": array(string("environment_name")),
    "kind": {"type": "string", "enum": ["remote", "local"]},
    "account_id": nullable(string("account_id")),
    "protected": BOOL,
    "workers_dev": nullable(BOOL),
    "vars": VARS,
    "ports": {"title": "a port or a range such as '8787-8799'", "type": ["string", "integer"],
              "x-check": "ports"},
    "state_dir": NONEMPTY,
})
#: ``previews:``: what a pull request's preview environment adds (``invoke preview-up``):
#: ``seed: {service: {D1 binding: path.sql}}`` runs once, when the preview creates its database.
PREVIEWS = record({"seed": mapping(mapping(NONEMPTY, "binding_name"))})
MANIFEST = record({
    "version": {"type": "integer", "const": 1, "x-check": "version"},
    "defaults": WORKER_REF,
    "environments": mapping(ENVIRONMENT, "environment_name"),
    "services": mapping(record({k: v for k, v in {**WORKER_FIELDS, **SERVICE_FIELDS}.items()
                                if k != "name"}, wrangler=())),  # name: per environment only
    "templates": NONEMPTY,
    "previews": PREVIEWS,
}, ["version", "environments", "services"])
DEFINITIONS = {"worker": record(WORKER_FIELDS, wrangler=())}

#: Keys of a worker layer that dome models (everything else is wrangler's, passed through).
DOME_KEYS = frozenset(WORKER_FIELDS) | frozenset(SERVICE_FIELDS)
