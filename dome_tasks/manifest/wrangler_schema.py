"""Wrangler's own JSON schema of its config (``config-schema.json``), read with jsonschema.

The schema comes from the wrangler the workspace uses (found from the manifest's folder the way
:func:`dome_tasks.tools.find_wrangler` finds it: ``node_modules/wrangler/config-schema.json``);
without one, from the copy bundled with dome-tasks (taken from the wrangler it pins); when
neither can be read, wrangler keys pass unchecked and ``invoke doctor`` says so.
:meth:`WranglerSchema.keys_at` tells the manifest's schema which keys wrangler accepts where;
:meth:`WranglerSchema.problems` checks a whole rendered config, :meth:`~WranglerSchema.problems_at`
one part of it (what dome passes through unmodelled), and words each error like dome's own
messages (``unknown key; did you mean …``, ``expected a number, got …``).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dome_tasks.errors import did_you_mean

__all__ = ["BUNDLED", "DEPRECATED", "WranglerSchema", "deprecation", "find_schema", "load_schema"]

#: (place relative to the checked value, what is wrong, the missing key if that is the problem)
Problem = tuple[tuple[Any, ...], str, Any]
#: The copy shipped in the package (gzip of the pinned wrangler's config-schema.json).
BUNDLED = Path(__file__).resolve().parent / "wrangler-config-schema.json.gz"
SCHEMA_NAME = "config-schema.json"
#: Keys wrangler still reads (with its own "is deprecated" warning) where its schema no longer
#: lists them: place ("[]" for list items) -> key -> wrangler's advice. Checked against the
#: pinned wrangler's reading by tests/adopt/test_wrangler_keys.py.
DEPRECATED: Mapping[tuple[str, ...], Mapping[str, str]] = {
    ("containers", "[]"): {
        "instances": 'use "max_instances"',
        "durable_objects": 'use "class_name"',
        "wrangler_ssh": 'use "ssh"',
        "configuration": 'use the top-level "containers" fields',
    },
}


def deprecation(path: tuple[Any, ...]) -> str | None:
    """wrangler's advice when ``path`` (list indices allowed) is a deprecated key it still
    reads; None otherwise."""
    if not path:
        return None
    place = tuple("[]" if isinstance(p, int) else p for p in path[:-1])
    advice = DEPRECATED.get(place, {}).get(path[-1])
    return f"deprecated by wrangler ({advice}); it still reads it" if advice else None


def _only_all_of(node: Mapping[str, Any]) -> bool:
    """A node that is nothing but ``allOf`` of one schema (no properties of its own)."""
    all_of = node.get("allOf")
    return (isinstance(all_of, list) and len(all_of) == 1 and "properties" not in node
            and "type" not in node)


@dataclass(frozen=True, eq=False)
class WranglerSchema:
    """One wrangler config schema and where it came from."""

    data: Mapping[str, Any]
    source: str  # a path, or "bundled (wrangler x.y.z)"
    _keys: dict[tuple[str, ...], frozenset[str]] = field(default_factory=dict, repr=False)
    _parts: dict[tuple[Any, ...], list[Problem]] = field(default_factory=dict, repr=False)

    @property
    def root(self) -> Mapping[str, Any]:
        return self._resolve(self.data)

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        while isinstance(node, Mapping) and ("$ref" in node or _only_all_of(node)):
            if "$ref" not in node:  # wrangler >= 4.1xx: the root is {"allOf": [{"$ref": …}]}
                node = node["allOf"][0]
                continue
            ref = node["$ref"]
            target: Any = self.data
            for part in ref.lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _options(self, node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The object schemas ``node`` may be (through $ref, anyOf, oneOf)."""
        node = self._resolve(node)
        options = node.get("anyOf") or node.get("oneOf")
        if options:
            return [o for option in options for o in self._options(option)]
        return [node]

    def keys_at(self, place: tuple[str, ...]) -> frozenset[str]:
        """Keys wrangler accepts at ``place`` (property names; "[]" steps into list items)."""
        if place not in self._keys:
            nodes = [self.root]
            for part in place:
                following = []
                for node in nodes:
                    for option in self._options(node):
                        if part == "[]":
                            if "items" in option:
                                following.append(option["items"])
                        elif part in option.get("properties", {}):
                            following.append(option["properties"][part])
                nodes = following
            keys = {
                k for node in nodes for o in self._options(node) for k in o.get("properties", {})
            }
            self._keys[place] = frozenset(keys)
        return self._keys[place]

    def schema_at(self, place: tuple[Any, ...]) -> Mapping[str, Any] | None:
        """The schema of one place of the config (list indices stand for their items)."""
        node: Mapping[str, Any] = self.root
        for part in place:
            node = self._resolve(node)
            if isinstance(part, int) or part == "[]":
                node = node.get("items")  # type: ignore[assignment]
            else:
                node = node.get("properties", {}).get(part)  # type: ignore[assignment]
            if not isinstance(node, Mapping):
                return None
        return node

    def problems_at(self, place: tuple[Any, ...], value: Any) -> list[Problem]:
        """:meth:`problems` of ``value`` as found at ``place``; paths are relative to it."""
        template = tuple("[]" if isinstance(p, int) else p for p in place)
        key = (template, json.dumps(value, sort_keys=True, default=str))
        found = self._parts.get(key)
        if found is None:
            schema = self.schema_at(template)
            found = [] if schema is None else [
                problem
                for error in self._validator.evolve(schema=schema).iter_errors(value)
                for problem in _explain(error)
                if not deprecation((*template, *problem[0]))
            ]
            self._parts[key] = found
        return found

    @functools.cached_property
    def _validator(self) -> Any:
        import jsonschema

        return jsonschema.Draft7Validator(self.data)

    def problems(self, doc: Mapping[str, Any]) -> list[Problem]:
        """(place in ``doc``, what is wrong, the missing key if that is the problem) for every
        error, worded like dome's messages."""
        found: list[Problem] = []
        for error in self._validator.iter_errors(doc):
            found.extend(p for p in _explain(error) if not deprecation(p[0]))
        return found

    def deprecated_in(self, doc: Any, place: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Paths in ``doc`` (found at ``place``) of keys wrangler reads but calls deprecated."""
        found: list[tuple[Any, ...]] = []
        if isinstance(doc, Mapping):
            for key, value in doc.items():
                if deprecation((*place, key)):
                    found.append((*place, key))
                found += self.deprecated_in(value, (*place, key))
        elif isinstance(doc, list):
            for i, value in enumerate(doc):
                found += self.deprecated_in(value, (*place, i))
        return found


def _explain(error: Any) -> Iterable[Problem]:
    import jsonschema

    path = tuple(error.absolute_path)
    kind = error.validator
    if kind in ("anyOf", "oneOf") and error.context:
        yield from _explain(jsonschema.exceptions.best_match(error.context))
    elif kind == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = error.schema.get("properties", {})
        for key in error.instance:
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                yield (*path, key), "unknown key" + (f"; {hint}" if hint else ""), None
    elif kind == "required":
        for key in error.validator_value:
            if isinstance(error.instance, Mapping) and key not in error.instance:
                yield path, f"missing required key '{key}'", key
    elif kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        label = " or ".join(_TYPE_LABELS.get(n, n) for n in names)
        yield path, f"expected {label}, got {_describe(error.instance)}", None
    elif kind == "enum":
        options = ", ".join(str(o) for o in error.validator_value)
        yield path, f"{_describe(error.instance)} is not one of: {options}", None
    elif kind == "const":
        yield path, f"must be {json.dumps(error.validator_value)}", None
    else:
        yield path, error.message, None


_TYPE_LABELS = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean (true or false)",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _describe(value: Any) -> str:
    from dome_tasks.manifest._kinds import describe

    return describe(value)


def find_schema(start: Path) -> Path | None:
    """``config-schema.json`` of the wrangler found from ``start`` (node_modules/.bin upwards,
    then PATH), or None."""
    from dome_tasks.errors import ToolMissingError
    from dome_tasks.tools import find_wrangler

    try:
        program = Path(find_wrangler(start))
    except ToolMissingError:
        return None
    try:
        package = Path(os.path.realpath(program)).parent.parent  # …/wrangler/bin/wrangler.js
    except OSError:
        return None
    candidate = package / SCHEMA_NAME
    return candidate if candidate.is_file() else None


def load_schema(start: Path) -> WranglerSchema | None:
    """The schema of the wrangler used from ``start``, else the bundled copy, else None."""
    path = find_schema(start)
    if path is not None:
        try:
            return _read(str(path), path.stat().st_mtime_ns)
        except (OSError, ValueError):
            pass
    try:
        return _read(str(BUNDLED), BUNDLED.stat().st_mtime_ns)
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> WranglerSchema:
    raw = Path(path).read_bytes()
    if path.endswith(".gz"):
        raw = gzip.decompress(raw)
    data = json.loads(raw)
    if not isinstance(data, dict) or "definitions" not in data:
        raise ValueError(f"{path} is not wrangler's config schema")
    source = path
    if path == str(BUNDLED):
        source = f"bundled copy ({data.get('x-dome-wrangler-version', 'wrangler')})"
    return WranglerSchema(data, source)
