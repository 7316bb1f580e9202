"""The declarative shape of dome.yaml, and the walker that checks a document against it.

Structure only (keys, types, required keys, name formats); cross-references, merged-per-
environment rules and the dependency graph are checked in :mod:`dome_tasks.checks`.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dome_tasks import naming
from dome_tasks.diagnostics import KeyPath, Problems
from dome_tasks.errors import did_you_mean
from dome_tasks.yaml_source import UNREADABLE

Check = Callable[[Any], "str | None"]


class Kind:
    label = "a value"


@dataclass(frozen=True)
class Scalar(Kind):
    types: tuple[type, ...]
    label: str
    check: Check | None = None


@dataclass(frozen=True)
class ListOf(Kind):
    item: Kind
    label: str = "a list"


@dataclass(frozen=True)
class MapOf(Kind):
    """A mapping with user-chosen keys (binding names, service names…)."""

    value: Kind
    key_check: Check | None = None
    label: str = "a mapping"


@dataclass(frozen=True)
class Field:
    kind: Kind
    required: bool = False
    nullable: bool = False


@dataclass(frozen=True)
class Record(Kind):
    """A mapping with a fixed set of keys."""

    fields: Mapping[str, Field]
    label: str = "a mapping"


@dataclass(frozen=True)
class AnyOf(Kind):
    """The first option whose shape (scalar type, list, mapping) matches is used."""

    options: tuple[Kind, ...]
    label: str = "a value"


INVALID: Any = object()


def _f(kind: Kind, required: bool = False, nullable: bool = False) -> Field:
    return Field(kind, required, nullable)


def _str(check: Check | None = None) -> Scalar:
    return Scalar((str,), "a string", check)


def _nonempty(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _shlex(value: str) -> str | None:
    try:
        return "must not be empty" if not shlex.split(value) else None
    except ValueError as exc:
        return f"cannot be split into arguments: {exc}"


def _var(value: Any) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


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


STR = _str()
NONEMPTY = _str(_nonempty)
BOOL = Scalar((bool,), "a boolean (true or false)")
INT = Scalar((int,), "an integer")
VAR_VALUE = Scalar((str, int, float, bool), "a string, number or boolean", _var)
BINDING = _str(naming.binding_name)
COMMAND = AnyOf(
    (_str(_shlex), ListOf(NONEMPTY, label="a list of arguments")),
    "a command (a string or a list of arguments)",
)

SERVICE_BINDING = AnyOf(
    (
        NONEMPTY,
        Record(
            {
                "service": _f(NONEMPTY, required=True),
                "entrypoint": _f(_str(lambda v: naming.js_identifier(v, "entrypoint"))),
            }
        ),
    ),
    "a service name or a mapping {service, entrypoint}",
)
ROUTE = AnyOf(
    (
        NONEMPTY,
        Record(
            {
                "pattern": _f(NONEMPTY, required=True),
                "zone_name": _f(NONEMPTY),
                "custom_domain": _f(BOOL),
            }
        ),
    ),
    "a route pattern or a mapping {pattern, zone_name, custom_domain}",
)
QUEUE = _str(naming.queue_name)
CLASS_NAME = _str(lambda v: naming.js_identifier(v, "class name"))

# Binding-level required keys are checked after merging, per environment (an override may
# supply them): see checks.REQUIRED_BINDING_KEYS.
WORKER_FIELDS: dict[str, Field] = {
    "main": _f(NONEMPTY),
    "compatibility_date": _f(_str(naming.compatibility_date)),
    "compatibility_flags": _f(ListOf(NONEMPTY)),
    "workers_dev": _f(BOOL),
    "routes": _f(ListOf(ROUTE)),
    "vars": _f(MapOf(VAR_VALUE, naming.binding_name)),
    "secrets": _f(ListOf(BINDING)),
    "build": _f(COMMAND, nullable=True),
    "health_path": _f(_str(_path_like), nullable=True),
    "health_url": _f(NONEMPTY, nullable=True),
    "smoke": _f(ListOf(COMMAND)),
    "observability": _f(Record({"enabled": _f(BOOL)})),
    "services": _f(MapOf(SERVICE_BINDING, naming.binding_name)),
    "d1_databases": _f(
        MapOf(
            Record(
                {
                    "database_name": _f(_str(naming.d1_name)),
                    "database_id": _f(_str(naming.d1_id)),
                    "migrations_dir": _f(NONEMPTY),
                }
            ),
            naming.binding_name,
        )
    ),
    "r2_buckets": _f(
        MapOf(Record({"bucket_name": _f(_str(naming.r2_bucket))}), naming.binding_name)
    ),
    "kv_namespaces": _f(MapOf(Record({"id": _f(_str(naming.kv_id))}), naming.binding_name)),
    "vectorize": _f(
        MapOf(Record({"index_name": _f(_str(naming.vectorize_index))}), naming.binding_name)
    ),
    "queues": _f(
        Record(
            {
                "producers": _f(MapOf(Record({"queue": _f(QUEUE)}), naming.binding_name)),
                "consumers": _f(
                    ListOf(
                        Record(
                            {
                                "queue": _f(QUEUE, required=True),
                                "max_batch_size": _f(INT),
                                "max_batch_timeout": _f(INT),
                                "max_retries": _f(INT),
                                "dead_letter_queue": _f(QUEUE),
                            }
                        )
                    )
                ),
            }
        )
    ),
    "ai": _f(Record({"binding": _f(BINDING, required=True)})),
    "durable_objects": _f(
        MapOf(
            Record({"class_name": _f(CLASS_NAME), "service": _f(NONEMPTY)}),
            naming.binding_name,
        )
    ),
    "durable_object_migrations": _f(
        ListOf(
            Record(
                {
                    "tag": _f(NONEMPTY, required=True),
                    "new_classes": _f(ListOf(CLASS_NAME)),
                    "new_sqlite_classes": _f(ListOf(CLASS_NAME)),
                }
            )
        )
    ),
}

OVERRIDE = Record(WORKER_FIELDS)
SERVICE = Record(
    {
        **WORKER_FIELDS,
        "path": _f(NONEMPTY),
        "depends_on": _f(ListOf(NONEMPTY)),
        "interface": _f(ListOf(NONEMPTY)),
        "environments": _f(MapOf(OVERRIDE)),
    }
)
ENVIRONMENT = Record(
    {
        "suffix": _f(_str(naming.suffix)),
        "aliases": _f(ListOf(_str(naming.environment_name))),
        "kind": _f(_str(_kind)),
        "account_id": _f(_str(naming.account_id), nullable=True),
        "protected": _f(BOOL),
        "workers_dev": _f(BOOL),
        "vars": _f(MapOf(VAR_VALUE, naming.binding_name)),
        "ports": _f(Scalar((str, int), "a port or a range such as '8787-8799'", _ports)),
        "state_dir": _f(NONEMPTY),
    }
)
MANIFEST = Record(
    {
        "version": _f(Scalar((int,), "an integer", _version), required=True),
        "defaults": _f(OVERRIDE),
        "environments": _f(MapOf(ENVIRONMENT, naming.environment_name), required=True),
        "services": _f(MapOf(SERVICE), required=True),
        "templates": _f(NONEMPTY),
    }
)


def describe(value: Any) -> str:
    """How a value reads in a message: ``a list``, ``an integer (5)``, ``null``…"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


@dataclass
class Validator:
    problems: Problems

    def check(self, kind: Kind, value: Any, path: KeyPath) -> Any:
        """The value with invalid parts removed (reported), or INVALID."""
        if value is UNREADABLE:
            return INVALID
        if isinstance(kind, AnyOf):
            for option in kind.options:
                if _shape_matches(option, value):
                    return self.check(option, value, path)
            return self._wrong_type(kind.label, value, path)
        if isinstance(kind, Scalar):
            if not _scalar_matches(kind.types, value):
                return self._wrong_type(kind.label, value, path)
            problem = kind.check(value) if kind.check else None
            if problem:
                self.problems.add(path, problem)
                return INVALID
            return value
        if isinstance(kind, ListOf):
            if not isinstance(value, list):
                return self._wrong_type(kind.label, value, path)
            checked = [self.check(kind.item, item, path + (i,)) for i, item in enumerate(value)]
            return [item for item in checked if item is not INVALID]
        if isinstance(kind, MapOf):
            if not isinstance(value, dict):
                return self._wrong_type(kind.label, value, path)
            result = {}
            for key, item in value.items():
                problem = kind.key_check(key) if kind.key_check else None
                if problem:
                    self.problems.add(path + (key,), problem)
                    continue
                checked = self.check(kind.value, item, path + (key,))
                if checked is not INVALID:
                    result[key] = checked
            return result
        if isinstance(kind, Record):
            return self._record(kind, value, path)
        raise TypeError(kind)  # pragma: no cover

    def _record(self, kind: Record, value: Any, path: KeyPath) -> Any:
        if not isinstance(value, dict):
            return self._wrong_type(kind.label, value, path)
        result = {}
        for key, item in value.items():
            spec = kind.fields.get(key)
            if spec is None:
                hint = did_you_mean(key, kind.fields)
                self.problems.add(path + (key,), "unknown key" + (f"; {hint}" if hint else ""))
                continue
            if item is None and spec.nullable:
                result[key] = None
                continue
            checked = self.check(spec.kind, item, path + (key,))
            if checked is not INVALID:
                result[key] = checked
        required = [key for key, spec in kind.fields.items() if spec.required]
        for key in required:
            if key not in value:
                self.problems.add(path, f"missing required key '{key}'")
        incomplete = any(key not in result for key in required)
        return INVALID if incomplete and path else result

    def _wrong_type(self, label: str, value: Any, path: KeyPath) -> Any:
        self.problems.add(path, f"expected {label}, got {describe(value)}")
        return INVALID


def _scalar_matches(types: tuple[type, ...], value: Any) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _shape_matches(kind: Kind, value: Any) -> bool:
    if isinstance(kind, Scalar):
        return _scalar_matches(kind.types, value)
    if isinstance(kind, ListOf):
        return isinstance(value, list)
    return isinstance(value, dict)


def validate(data: Any, problems: Problems) -> dict[str, Any]:
    """Check the whole document; returns the valid part (``{}`` if the root is not a mapping)."""
    checked = Validator(problems).check(MANIFEST, data, ())
    return checked if isinstance(checked, dict) else {}
