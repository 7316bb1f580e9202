"""jsonschema's errors in dome's words: one :class:`Finding` per mistake, at its key path.

Used for dome.schema.json (:mod:`~dome_tasks.manifest.validation`) and for wrangler's own
schema (:mod:`~dome_tasks.manifest.wrangler_schema`). Of an ``anyOf`` only the branch whose
type fits the value speaks (one line, not a cascade); a value none fits is told the branch
list's ``title``. A value with an ``x-check`` is worded by that check.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dome_tasks.errors import did_you_mean
from dome_tasks.manifest._source import UNREADABLE
from dome_tasks.manifest.checks import LENIENT, LENIENT_NOTE, describe
from dome_tasks.manifest.placeholders import ID_CHECKS, is_placeholder_id

__all__ = ["Finding", "explain"]

#: Keys wrangler accepts at a place of its config ("d1_databases/[]"), beyond the schema's.
ExtraKeys = Callable[[str], Collection[str]]
_TYPE_LABELS = {"string": "a string", "number": "a number", "integer": "an integer",
                "boolean": "a boolean (true or false)", "array": "a list", "object": "a mapping"}


@dataclass(frozen=True)
class Finding:
    path: tuple[Any, ...]  # where, in the validated document
    what: str  # "" when already reported (a value the YAML reader could not read)
    missing: Any = None  # the missing key, when that is the problem
    drop: tuple[Any, ...] | None = None  # what the loader leaves out (None: nothing)
    warning: bool = False


def explain(error: Any, extra_keys: ExtraKeys | None = None) -> Iterator[Finding]:
    """The findings of one jsonschema error (none when another error words it)."""
    path, kind, value = tuple(error.absolute_path), error.validator, error.instance
    node = error.schema if isinstance(error.schema, Mapping) else {}
    if value is UNREADABLE:
        yield Finding(path, "", drop=path)
    elif kind in ("anyOf", "oneOf") and error.context:
        yield from _branch(error, path, node, extra_keys)
    elif kind == "x-check":
        if list(error.relative_schema_path)[-2:-1] == ["propertyNames"]:
            path = (*path, value)
        lenient = error.validator_value in LENIENT
        if error.validator_value in ID_CHECKS and is_placeholder_id(value):
            return  # worded by manifest.placeholders, with the environments it reaches
        yield Finding(path, error.message + (LENIENT_NOTE if lenient else ""),
                      drop=None if lenient else path, warning=lenient)
    elif "x-check" in node and kind != "type":
        return  # the check says it
    elif kind == "additionalProperties" and isinstance(value, Mapping):
        yield from _unknown_keys(path, value, node, extra_keys)
    elif kind == "required" and isinstance(value, Mapping):
        for key in (k for k in error.validator_value if k not in value):
            yield Finding(path, f"missing required key '{key}'", key, drop=path or None)
    elif kind == "type":
        yield Finding(path, f"expected {_label(node)}, got {describe(value)}", drop=path)
    elif kind == "enum":
        options = [str(o) for o in error.validator_value]
        hint = did_you_mean(str(value), options)
        yield Finding(path, f"{describe(value)} is not one of: {', '.join(options)}"
                      + (f"; {hint}" if hint else ""), drop=path)
    else:
        what = f"must be {json.dumps(error.validator_value)}" if kind == "const" else error.message
        yield Finding(path, what, drop=path)


def _branch(error: Any, path: tuple[Any, ...], node: Mapping[str, Any],
            extra_keys: ExtraKeys | None) -> Iterator[Finding]:
    """The errors of the first branch whose type fits the value; else one type error."""
    for errors in _branches(error).values():
        if not any(_misfits(e, len(path)) for e in errors):
            for sub in errors:
                yield from explain(sub, extra_keys)
            return
    yield Finding(path, f"expected {_label(node)}, got {describe(error.instance)}", drop=path)


def _branches(error: Any) -> dict[int, list[Any]]:
    found: dict[int, list[Any]] = {}
    for sub in error.context:
        found.setdefault(sub.relative_schema_path[0], []).append(sub)
    return dict(sorted(found.items()))


def _misfits(error: Any, depth: int) -> bool:
    """Whether ``error`` says the value at ``depth`` has a type its branch does not take."""
    if len(error.absolute_path) != depth:
        return False
    if error.validator in ("anyOf", "oneOf") and error.context:
        return all(any(_misfits(e, depth) for e in errors)
                   for errors in _branches(error).values())
    return error.validator == "type"


def _label(node: Mapping[str, Any]) -> str:
    """What a value of ``node`` is, in words: its title, else its types (null left out)."""
    if node.get("title") and not isinstance(node.get("type"), str):  # not the root's
        return node["title"]
    if "anyOf" in node:
        labels = [_label(option) for option in node["anyOf"] if option.get("type") != "null"]
        return " or ".join(dict.fromkeys(labels))
    types = node.get("type", [])
    names = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    return " or ".join(_TYPE_LABELS.get(n, n) for n in names) or "a value"


def _unknown_keys(path: tuple[Any, ...], value: Mapping[str, Any], node: Mapping[str, Any],
                  extra_keys: ExtraKeys | None) -> Iterator[Finding]:
    from dome_tasks.manifest.schema import DROPPED, REFUSED

    allowed, place = node.get("properties", {}), node.get("x-wrangler")
    extra = extra_keys(place) if place is not None and extra_keys else ()
    for key in value:
        where = (*path, key)
        if key in DROPPED.get(place, {}):
            yield Finding(where, DROPPED[place][key], drop=where, warning=True)
        elif place == "" and key in REFUSED:
            yield Finding(where, REFUSED[key], drop=where)
        elif key not in allowed and key not in extra:
            hint = did_you_mean(key, [*allowed, *extra])
            yield Finding(where, "unknown key" + (f"; {hint}" if hint else ""), drop=where)
