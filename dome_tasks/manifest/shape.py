"""A :class:`~dome_tasks.manifest.model.WorkerConfig` in wrangler's own config shape.

:func:`wrangler_config` is what wrangler reads (the renderer writes it as TOML, the loader checks
it against wrangler's JSON schema); ``origins`` maps each part of it back to the key path that
set it in a worker layer, so that a schema error points at the manifest's own line.
Paths (``main``, ``migrations_dir``, ``assets.directory``…) are relative to the service folder
in the model and pass through ``rel`` on the way out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dome_tasks.manifest import bindings
from dome_tasks.manifest._problems import KeyPath
from dome_tasks.manifest.model import WorkerConfig

__all__ = ["PATH_KEYS", "Origins", "wrangler_config"]

Origins = dict[KeyPath, KeyPath]  # place in wrangler's config -> key path in a worker layer

#: Wrangler keys (outside the bindings) whose value is a path relative to the config file;
#: "*" stands for every key of a mapping, "[]" for every item of a list.
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    ("assets", "directory"),
    ("base_dir",),
    ("tsconfig",),
    ("site", "bucket"),
    ("wasm_modules", "*"),
    ("text_blobs", "*"),
    ("data_blobs", "*"),
    ("build", "cwd"),
    ("build", "watch_dir"),
    ("build", "watch_dir", "[]"),
    ("containers", "[]", "image"),  # a Dockerfile (a registry image has a tag: not a path)
    ("containers", "[]", "image_build_context"),
)


def _same(path: str) -> str:
    return path


def wrangler_config(
    config: WorkerConfig,
    rel: Callable[[str], str] = _same,
    origins: Origins | None = None,
) -> dict[str, Any]:
    """The config wrangler reads for ``config``, keys in the order the renderer writes them."""
    seen: Origins = origins if origins is not None else {}
    doc: dict[str, Any] = {"name": config.name}
    if config.main is not None:
        doc["main"] = rel(config.main)
    seen[("name",)] = ()
    doc["compatibility_date"] = config.compatibility_date
    if config.compatibility_flags:
        doc["compatibility_flags"] = list(config.compatibility_flags)
    if config.account_id is not None:
        doc["account_id"] = config.account_id
    if config.workers_dev is not None:
        doc["workers_dev"] = config.workers_dev
    if config.routes:
        doc["routes"] = [_route(r) for r in config.routes]
    extra = dict(config.extra)
    observability = dict(extra.pop("observability", {}))
    if config.observability is not None:
        observability = {"enabled": config.observability, **observability}
    tables = {k: v for k, v in extra.items() if _is_table(v)}
    for key, value in extra.items():
        if key not in tables:
            doc[key] = _rebase((key,), value, rel)
    if config.vars:
        doc["vars"] = dict(config.vars)
    if observability:  # only what the manifest says: no setting of Cloudflare's is invented
        doc["observability"] = observability
    for kind in bindings.KINDS:
        objects = getattr(config, kind.attr)
        if not objects:
            continue
        entries = [kind.wrangler_entry(obj, rel) for obj in objects]
        if kind.form == "single":
            _put(doc, kind.table, entries[0])
            seen[kind.table] = kind.key
            continue
        _put(doc, kind.table, entries)
        for index, obj in enumerate(objects):
            where = (*kind.key, index) if kind.form == "list" else (*kind.key, obj.binding)
            seen[(*kind.table, index)] = where
            for name, attr in kind.fields.items():
                if attr.wrangler is not None:
                    seen[(*kind.table, index, attr.wrangler or name)] = (*where, name)
    if config.durable_object_migrations:
        doc["migrations"] = [_migration(m) for m in config.durable_object_migrations]
        for index in range(len(config.durable_object_migrations)):
            seen[("migrations", index)] = ("durable_object_migrations", index)
    for key, value in tables.items():
        doc[key] = _rebase((key,), value, rel)
    return doc


def _is_table(value: Any) -> bool:
    """Rendered as a TOML table (or array of tables) after the top-level keys."""
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc.setdefault(part, {})
    doc[path[-1]] = value


def _rebase(path: tuple[str, ...], value: Any, rel: Callable[[str], str]) -> Any:
    """``value`` with the paths of :data:`PATH_KEYS` under ``path`` passed through ``rel``."""
    if rel is _same:
        return value
    if path in PATH_KEYS and isinstance(value, str):
        is_image = path[-1] == "image" and ":" in value
        return value if is_image else rel(value)
    if isinstance(value, list):
        return [_rebase((*path, "[]"), v, rel) for v in value]
    if isinstance(value, dict):
        return {
            k: _rebase(path + ("*" if (*path, "*") in PATH_KEYS else k,), v, rel)
            for k, v in value.items()
        }
    return value


def _route(route: Any) -> Any:
    if route.zone_name is None and route.zone_id is None and not route.custom_domain:
        return route.pattern
    entry: dict[str, Any] = {"pattern": route.pattern}
    if route.zone_name is not None:
        entry["zone_name"] = route.zone_name
    if route.zone_id is not None:
        entry["zone_id"] = route.zone_id
    if route.custom_domain:
        entry["custom_domain"] = True
    return entry


def _migration(migration: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"tag": migration.tag}
    if migration.new_classes:
        entry["new_classes"] = list(migration.new_classes)
    if migration.new_sqlite_classes:
        entry["new_sqlite_classes"] = list(migration.new_sqlite_classes)
    entry.update(migration.extra)
    return entry
