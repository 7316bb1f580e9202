"""dome.yaml's JSON Schema (``dome.schema.json``, shipped in the package): what the loader
validates with, and what editors complete and check.

Generated from :mod:`~dome_tasks.manifest.schema`, each dome key given its description. In a
mapping marked ``x-wrangler``, each key wrangler accepts there is a ``$ref`` into the published
``config-schema.json`` of the wrangler dome pins (:func:`registry` serves its bundled copy
offline), so editors show wrangler's own descriptions; other keys are refused, as the loader
refuses them. ``python -m dome_tasks.manifest.json_schema`` prints the schema (the committed
file is that output); ``--path`` prints where the installed copy is, for editors offline.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from dome_tasks.manifest import bindings, schema
from dome_tasks.manifest.wrangler_schema import (BUNDLED, DEPRECATED, deprecation, node_at,
                                                 pointers_at)

__all__ = ["PATH", "SCHEMA_URL", "generate", "load", "registry", "text", "validator",
           "wrangler_url"]

#: Where the schema is published (OWNER: where this repository is published, as in the README).
SCHEMA_URL = ("https://raw.githubusercontent.com/OWNER/dome-tasks/main/"
              "dome_tasks/manifest/dome.schema.json")
#: The copy shipped in the package.
PATH = Path(__file__).resolve().parent / "dome.schema.json"

#: Each dome key's description, looked up by its key path with map keys and list items left
#: out: ``.key`` is a top-level key only, ``parent.key`` a key under ``parent``, ``key`` any.
DESCRIPTIONS = {
    ".version": "The manifest format's version: 1.",
    ".defaults": "Worker keys every service starts from (each service's own keys win).",
    ".environments": "The environments (production, staging, local…), by name.",
    ".services": "The services (one Worker each per environment), by name.",
    ".templates": "A folder of Jinja templates that replace the built-in ones for rendering "
    "wrangler.toml.",
    ".previews": "What a pull request's preview environment adds (`invoke preview-up`).",
    "previews.seed": "SQL files run once, when a preview creates its database: "
    "{service: {D1 binding: path.sql}}.",
    "environments.suffix": "Appended to each worker's and resource's name in this environment "
    "(e.g. '-staging'; '' for none).",
    "environments.aliases": "Other names this environment answers to on the command line.",
    "environments.kind": "'remote' (deployed to Cloudflare) or 'local' (wrangler dev).",
    "environments.protected": "Deploys and destructive tasks here ask for confirmation.",
    "environments.vars": "Variables every service gets in this environment.",
    "environments.ports": "The local dev port, or a range such as '8787-8799' for the services.",
    "environments.state_dir": "Where wrangler dev keeps local state for this environment.",
    "services.environments": "What differs per environment for this service, by environment "
    "name (worker keys).",
    "path": "The service's folder, relative to dome.yaml.",
    "depends_on": "Services deployed before this one (and started before it locally).",
    "only_in": "The only environments this service exists in.",
    "interface": "Files whose changes mean the services depending on this one redeploy too.",
    "main": "The worker's entry point, relative to the service's folder.",
    "name": "This worker's own name in one environment, where it is not the service's name "
    "plus the environment's suffix.",
    "compatibility_date": "The Workers runtime's compatibility date (YYYY-MM-DD).",
    "compatibility_flags": "The Workers runtime's compatibility flags.",
    "account_id": "The Cloudflare account id (null: the one wrangler is logged in to).",
    "workers_dev": "Whether the worker is served on its workers.dev subdomain.",
    "routes": "Routes the worker serves: patterns, or {pattern, zone_name, custom_domain}.",
    "routes.pattern": "The route pattern, such as 'example.com/*'.",
    "routes.zone_name": "The zone the route belongs to.",
    "routes.zone_id": "The zone's id.",
    "routes.custom_domain": "Serve the pattern as a Custom Domain.",
    "vars": "Plain-text variables (strings, numbers, booleans or JSON values), by binding name.",
    "secrets": "Names of the secrets the worker needs (their values never enter dome.yaml), or "
               "wrangler's own [secrets] table.",
    "secrets.required": "The secret names wrangler's [secrets] table requires.",
    "build": "dome's build command (a string or a list of arguments), or wrangler's own [build] "
    "table.",
    "health_path": "The path checked after a deploy (starts with '/').",
    "health_url": "The URL checked after a deploy, where it is not the worker's own.",
    "smoke": "Commands run after a deploy to check it.",
    "wrangler": "The wrangler command to run (a string or a list of arguments).",
    "observability": "Workers Logs and observability settings.",
    "observability.enabled": "Turn Workers observability on or off.",
    "ai": "The Workers AI binding: {binding}.",
    "ai.binding": "The binding name.",
    "services": "Service bindings, by binding name: a service of this manifest, or a mapping.",
    "services.service": "The service of this manifest whose worker (in the same environment) "
    "is bound.",
    "services.worker": "A worker this manifest does not deploy there, by its name.",
    "services.entrypoint": "The named entrypoint of the bound worker.",
    "d1_databases": "D1 databases, by binding name.",
    "d1_databases.database_id": "The database's id (looked up by name when left out).",
    "d1_databases.migrations_dir": "The migrations folder, relative to the service "
    "(null: none).",
    "r2_buckets": "R2 buckets, by binding name.",
    "kv_namespaces": "KV namespaces, by binding name.",
    "kv_namespaces.id": "The namespace's id (looked up by title when left out).",
    "vectorize": "Vectorize indexes, by binding name.",
    "hyperdrive": "Hyperdrive configs, by binding name.",
    "hyperdrive.id": "The Hyperdrive config's id.",
    "queues": "Queue producers and consumers.",
    "queues.producers": "Queues the worker sends to, by binding name.",
    "queues.consumers": "Queues the worker consumes.",
    "consumers.max_batch_size": "The most messages in one batch.",
    "consumers.max_batch_timeout": "The longest wait (seconds) for a batch to fill.",
    "consumers.max_retries": "How often a failed message is retried.",
    "consumers.dead_letter_queue": "Where messages go after the last retry.",
    "consumers.max_concurrency": "The most consumer invocations at once.",
    "durable_objects": "Durable Object bindings, by binding name.",
    "durable_objects.class_name": "The Durable Object's class.",
    "durable_objects.service": "The service whose worker hosts the class (default: this one).",
    "shared": "The resource is shared between environments: its name gets no suffix.",
    "durable_object_migrations": "Durable Object migrations (wrangler's [[migrations]]).",
    "durable_object_migrations.tag": "The migration's tag.",
    "durable_object_migrations.new_classes": "Classes this migration creates.",
    "durable_object_migrations.new_sqlite_classes": "SQLite-backed classes this migration "
    "creates.",
}

@cache
def _wrangler() -> Mapping[str, Any]:
    with gzip.open(BUNDLED, "rt", encoding="utf-8") as f:
        return json.load(f)


def wrangler_url() -> str:
    """The published config-schema.json of the wrangler whose schema dome bundles."""
    version = str(_wrangler().get("x-dome-wrangler-version", "")).split()[-1]
    return f"https://unpkg.com/wrangler@{version}/config-schema.json"


def _description(path: tuple[str, ...]) -> str:
    candidates = ["." + ".".join(path)] + [".".join(path[i:]) for i in range(len(path))]
    for candidate in candidates:
        if candidate in DESCRIPTIONS:
            return DESCRIPTIONS[candidate]
    for kind in bindings.KINDS:  # a resource's name, named by the environment's convention
        attr = kind.fields.get(path[-1])
        if attr and attr.role == "name" and path[-2] == kind.key[-1]:
            return (f"The {attr.resource}'s name (dome appends the environment's suffix unless "
                    "shared).")
    raise KeyError(f"no description for dome.yaml key {'.'.join(path)}; add it to DESCRIPTIONS")


def _expand(node: Any, path: tuple[str, ...]) -> Any:
    """A fragment with descriptions added and wrangler's keys listed (a new dict)."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":
            value = {name: {"description": _description((*path, name)),
                            **_expand(spec, (*path, name))}
                     for name, spec in value.items()}
        elif key in ("items", "additionalProperties"):
            value = _expand(value, path)
        elif key == "anyOf":
            value = [_expand(option, path) for option in value]
        out[key] = value
    if "x-wrangler" in node:
        _add_wrangler(out, node["x-wrangler"])
    return out


def _add_wrangler(out: dict[str, Any], place_text: str) -> None:
    place = tuple(filter(None, place_text.split("/")))
    out["$comment"] = (f"Keys without a description here are wrangler's own (at "
                       f"{place_text or 'the top level'} of its config): $refs into "
                       "wrangler's config schema")
    properties = out["properties"]
    skipped = {*schema.DROPPED.get(place_text, ()), *(schema.REFUSED if not place else ())}
    for key, pointer in sorted(pointers_at(_wrangler(), place).items()):
        if key not in properties and key not in skipped:
            properties[key] = _wrangler_value(place, key, pointer)


def _wrangler_value(place: tuple[str, ...], key: str, pointer: str) -> dict[str, Any]:
    """wrangler's schema of ``key``; spelled out down to the keys wrangler still reads
    though its schema no longer lists them (:data:`DEPRECATED`), which dome accepts."""
    inner = place + (key,)
    if not any(d[: len(inner)] == inner for d in DEPRECATED):
        return {"$ref": f"{wrangler_url()}#{pointer}"}
    described = {"description": node_at(_wrangler(), pointer).get("description", "")}
    if any(d[: len(inner) + 1] == (*inner, "[]") for d in DEPRECATED):
        return {**described, "type": "array", "items": _wrangler_object((*inner, "[]"))}
    return {**described, **_wrangler_object(inner)}


def _wrangler_object(place: tuple[str, ...]) -> dict[str, Any]:
    properties = {key: _wrangler_value(place, key, pointer)
                  for key, pointer in sorted(pointers_at(_wrangler(), place).items())}
    for key in DEPRECATED.get(place, {}):
        properties[key] = {"description": deprecation((*place, key)), "deprecated": True}
    return {"type": "object", "properties": properties, "additionalProperties": False}


def generate() -> dict[str, Any]:
    """The JSON Schema of dome.yaml (draft-07, the draft wrangler's own schema uses)."""
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_URL,
        "title": "dome.yaml",
        "description": "The dome-tasks manifest: environments and services of a Cloudflare "
        "Workers monorepo. Reference: docs/manifest.md.",
        "$comment": "Generated by `python -m dome_tasks.manifest.json_schema`; do not edit. "
        f"Wrangler's keys refer to {wrangler_url()}. x-check names a check dome runs beyond the "
        "schema; x-wrangler, the place of wrangler's config whose keys a mapping takes.",
        **_expand(schema.MANIFEST, ()),
        "definitions": {name: _expand(fragment, (name,))
                        for name, fragment in schema.DEFINITIONS.items()},
    }


def text() -> str:
    """The schema as the committed file's text."""
    return json.dumps(generate(), indent=1, ensure_ascii=False) + "\n"


def registry() -> Any:
    """A ``referencing`` registry serving wrangler's schema from the bundled copy (offline)."""
    from referencing import Registry, Resource

    return Registry().with_resource(wrangler_url(), Resource.from_contents(_wrangler()))


@cache
def load() -> dict[str, Any]:
    """The shipped schema."""
    return json.loads(PATH.read_text(encoding="utf-8"))


def validator() -> Any:
    """A plain draft-07 validator of the shipped schema, as an editor's; nothing is fetched."""
    import jsonschema

    return jsonschema.Draft7Validator(load(), registry=registry())


def main(argv: list[str]) -> int:
    if argv == ["--path"]:
        print(PATH)
        return 0
    if argv:
        print("usage: python -m dome_tasks.manifest.json_schema [--path]", file=sys.stderr)
        return 2
    sys.stdout.write(text())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
