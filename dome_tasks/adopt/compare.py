"""Compare two wrangler configs by meaning, not by text.

:func:`normalize` resolves paths against the config's folder (wrangler's own rule), applies
wrangler's defaults (``route`` is ``routes``; a D1 database's ``migrations_dir`` is
``migrations``; ``observability = { enabled = false }`` is the same as none) and keys every
binding list by binding name, so that :func:`differences` can name what differs as
``d1_databases.DB.database_name``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dome_tasks.adopt.intent import BINDING_LISTS, DOME_ONLY_FIELDS

__all__ = ["Difference", "differences", "normalize", "resolve_environment"]

PATH_KEYS = (("main",), ("tsconfig",), ("base_dir",), ("assets", "directory"), ("build", "cwd"),
             ("build", "watch_dir"), ("site", "bucket"))
#: Id fields a binding may leave out when its name is given (looked up by name).
ID_FIELDS = {"d1_databases": ("database_id", "preview_database_id"),
             "kv_namespaces": ("id", "preview_id")}


@dataclass(frozen=True)
class Difference:
    path: str
    expected: Any
    actual: Any

    def __str__(self) -> str:
        if self.expected is _ABSENT:
            return f"{self.path}: not expected, found {self.actual!r}"
        if self.actual is _ABSENT:
            return f"{self.path}: expected {self.expected!r}, missing"
        return f"{self.path}: expected {self.expected!r}, found {self.actual!r}"


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT: Any = _Absent()


def _abs(value: Any, base: Path) -> Any:
    if not isinstance(value, str):
        return value
    return os.path.normpath(os.path.join(str(base), value))


def _keyed(items: Any, key: str, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(items, list):
        return out
    for item in items:
        if not isinstance(item, dict):
            continue
        fields = {k: v for k, v in item.items()
                  if k != key and k not in drop and k not in DOME_ONLY_FIELDS}
        out[str(item.get(key))] = fields
    return out


def normalize(config: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """A comparable form of one self-contained wrangler config read from ``base_dir``."""
    base = Path(base_dir)
    data = {k: v for k, v in config.items() if k not in ("$schema", "env")}
    if "route" in data:
        data.setdefault("routes", [data["route"]])
        data.pop("route")
    for path in PATH_KEYS:
        if len(path) == 1:
            if path[0] in data:
                data[path[0]] = _abs(data[path[0]], base)
            continue
        table = data.get(path[0])
        if isinstance(table, dict) and path[1] in table:
            data[path[0]] = {**table, path[1]: _abs(table[path[1]], base)}
    for key, item_key in BINDING_LISTS.items():
        if key in data:
            drop = ("environment",) if key == "services" else ()
            data[key] = _keyed(data[key], item_key, drop=drop)
    for fields in data.get("d1_databases", {}).values():
        folder = _abs(fields.get("migrations_dir", "migrations"), base)
        if os.path.isdir(folder):
            fields["migrations_dir"] = folder
        else:
            fields.pop("migrations_dir", None)
    if isinstance(data.get("durable_objects"), dict):
        table = dict(data["durable_objects"])
        bindings = _keyed(table.get("bindings"), "name", drop=("environment",))
        for fields in bindings.values():
            if fields.get("script_name") == data.get("name"):
                fields.pop("script_name")
        table["bindings"] = bindings
        data["durable_objects"] = table
    if isinstance(data.get("queues"), dict):
        queues = dict(data["queues"])
        if "producers" in queues:
            queues["producers"] = _keyed(queues["producers"], "binding")
        if "consumers" in queues:
            queues["consumers"] = _keyed(queues["consumers"], "queue", drop=("binding",))
        data["queues"] = queues
    if isinstance(data.get("compatibility_flags"), list):
        data["compatibility_flags"] = sorted(data["compatibility_flags"])
    if data.get("observability") == {"enabled": False}:
        data.pop("observability")
    return {k: v for k, v in data.items() if v not in (None, [], {})}


def _drop_unknown_ids(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, Any]:
    """Ids the expected side leaves to a lookup by name are not compared."""
    actual = dict(actual)
    for kind, fields in ID_FIELDS.items():
        want, have = expected.get(kind), actual.get(kind)
        if not isinstance(want, dict) or not isinstance(have, dict):
            continue
        have = {b: dict(v) if isinstance(v, dict) else v for b, v in have.items()}
        for binding, entry in want.items():
            if isinstance(entry, dict) and isinstance(have.get(binding), dict):
                for field in fields:
                    if field not in entry:
                        have[binding].pop(field, None)
        actual[kind] = have
    return actual


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[Difference]:
    """What differs between two normalized configs, as dotted key paths."""
    out: list[Difference] = []
    _walk(dict(expected), _drop_unknown_ids(dict(expected), dict(actual)), "", out)
    return out


def _walk(expected: Any, actual: Any, path: str, out: list[Difference]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(dict.fromkeys([*expected, *actual])):
            sub = f"{path}.{key}" if path else str(key)
            _walk(expected.get(key, _ABSENT), actual.get(key, _ABSENT), sub, out)
        return
    if expected != actual:
        out.append(Difference(path, expected, actual))


def resolve_environment(config: Mapping[str, Any], env: str | None) -> dict[str, Any]:
    """What wrangler itself deploys for ``--env env``: inheritable keys from the top level,
    everything else only from the env block; the worker named ``<name>-<env>`` by default."""
    from dome_tasks.adopt.intent import NOT_INHERITED, TOP_ONLY

    if not env:
        return {k: v for k, v in config.items() if k != "env"}
    blocks = config.get("env") if isinstance(config.get("env"), dict) else {}
    if env not in blocks:
        from dome_tasks.adopt.read import AdoptError

        raise AdoptError(
            f"the config has no [env.{env}] block",
            hint=f"its environments: {', '.join(blocks) or '(none)'}",
        )
    own = blocks[env]
    out = {k: v for k, v in config.items()
           if k != "env" and (k not in NOT_INHERITED or k in TOP_ONLY)}
    out.update({k: v for k, v in own.items() if k not in TOP_ONLY})
    out.setdefault("name", f"{config.get('name')}-{env}")
    if "name" in own:
        out["name"] = own["name"]
    return out
