"""The building blocks of dome.yaml's shape (scalars, lists, maps, records) and the walker that
checks a document against a shape, reporting each problem at its key path.

A :class:`Record` may be *open* to wrangler: keys it does not declare are accepted when
wrangler's own config has them at that place (``wrangler`` names the place in wrangler's JSON
schema) and passed through untouched; wrangler's schema checks their values later.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from dome_tasks.errors import did_you_mean
from dome_tasks.manifest import naming
from dome_tasks.manifest._problems import KeyPath, Problems
from dome_tasks.manifest._source import UNREADABLE

Check = Callable[[Any], "str | None"]


class Kind:
    label = "a value"


@dataclass(frozen=True)
class Scalar(Kind):
    types: tuple[type, ...]
    label: str
    check: Check | None = None
    #: a value that fails ``check`` is a warning, not a problem: wrangler reads it (an id such
    #: as '<PLACEHOLDER>' or 'DEV_KV' for `wrangler dev`) and fails only when it deploys it
    lenient: bool = False


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
    """A mapping with a fixed set of keys (plus wrangler's, when ``wrangler`` names a place)."""

    fields: Mapping[str, Field]
    label: str = "a mapping"
    wrangler: tuple[str, ...] | None = None  # place in wrangler's config: ("d1_databases", "[]")
    refused: Mapping[str, str] = field(default_factory=dict)  # key -> what to write instead
    dropped: Mapping[str, str] = field(default_factory=dict)  # key -> warning; value ignored


@dataclass(frozen=True)
class AnyOf(Kind):
    """The first option whose shape (scalar type, list, mapping) matches is used."""

    options: tuple[Kind, ...]
    label: str = "a value"


INVALID: Any = object()


def string(check: Check | None = None, *, lenient: bool = False) -> Scalar:
    return Scalar((str,), "a string", check, lenient)


def _nonempty(value: str) -> str | None:
    return "must not be empty" if not value.strip() else None


def _shlex(value: str) -> str | None:
    try:
        return "must not be empty" if not shlex.split(value) else None
    except ValueError as exc:
        return f"cannot be split into arguments: {exc}"


def _var(value: Any) -> str | None:
    problem = _json_value(value)
    return problem or naming.var_value(value)


def _json_value(value: Any) -> str | None:
    """What keeps ``value`` from being a JSON value TOML can hold (no null, no NaN)."""
    if value is None:
        return "null cannot be written in TOML; leave the key out or use a string"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    if isinstance(value, dict):
        return next(filter(None, map(_json_value, value.values())), None)
    if isinstance(value, list):
        return next(filter(None, map(_json_value, value)), None)
    return None


STR = string()
NONEMPTY = string(_nonempty)
BOOL = Scalar((bool,), "a boolean (true or false)")
INT = Scalar((int,), "an integer")
VAR_VALUE = Scalar(
    (str, int, float, bool, dict, list), "a string, number, boolean or JSON value", _var
)
BINDING = string(naming.binding_name)
COMMAND = AnyOf(
    (string(_shlex), ListOf(NONEMPTY, label="a list of arguments")),
    "a command (a string or a list of arguments)",
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


#: Keys wrangler's config accepts at a place (None: wrangler's schema is unavailable).
WranglerKeys = Callable[[tuple[str, ...]], Collection[str]]


@dataclass
class Validator:
    problems: Problems
    wrangler_keys: WranglerKeys | None = None

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
            if problem and kind.lenient:  # wrangler reads it: Cloudflare refuses it on deploy
                self.problems.warn(path, f"{problem}; wrangler reads it, but a deploy with it "
                                   "fails until it is replaced")
            elif problem:
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
                if self._other_key(kind, key, item, path + (key,)):
                    result[key] = item
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

    def _other_key(self, kind: Record, key: str, item: Any, path: KeyPath) -> bool:
        """A key the record does not declare: True to pass it through (wrangler's)."""
        if key in kind.refused:
            self.problems.add(path, kind.refused[key])
            return False
        if key in kind.dropped:
            self.problems.warn(path, kind.dropped[key])
            return False
        known: Collection[str] = ()
        if kind.wrangler is not None:
            if self.wrangler_keys is None:  # no schema to tell: wrangler will
                return _readable(item)
            known = self.wrangler_keys(kind.wrangler)
            if key in known:
                return _readable(item)
        hint = did_you_mean(key, [*kind.fields, *known])
        self.problems.add(path, "unknown key" + (f"; {hint}" if hint else ""))
        return False

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


def _readable(value: Any) -> bool:
    """False if part of ``value`` could not be read (already reported)."""
    if value is UNREADABLE:
        return False
    if isinstance(value, dict):
        return all(_readable(v) for v in value.values())
    if isinstance(value, list):
        return all(_readable(v) for v in value)
    return True
