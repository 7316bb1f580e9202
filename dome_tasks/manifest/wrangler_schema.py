"""Wrangler's own JSON schema of its config (``config-schema.json``), read with jsonschema.

The schema comes from the wrangler the workspace uses (found from the manifest's folder the way
:func:`dome_tasks.tools.find_wrangler` finds it: ``node_modules/wrangler/config-schema.json``);
without one, from the copy bundled with dome-tasks (taken from the wrangler it pins;
dome.schema.json checks each layer against it too); if neither can be read, doctor says so.
:meth:`WranglerSchema.keys_at` tells the loader which keys it accepts where (beyond the pinned's);
:meth:`WranglerSchema.problems` checks a whole rendered config, :meth:`~WranglerSchema.problems_at`
one part of it (what dome passes through unmodelled), and words each error like dome's own
messages (``unknown key; did you mean …``, ``expected a number, got …``).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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


@dataclass(frozen=True, eq=False)
class WranglerSchema:
    """One wrangler config schema and where it came from."""

    data: Mapping[str, Any]
    source: str  # a path, or "bundled (wrangler x.y.z)"
    _keys: dict[tuple[str, ...], frozenset[str]] = field(default_factory=dict, repr=False)
    _parts: dict[tuple[Any, ...], list[Problem]] = field(default_factory=dict, repr=False)

    def keys_at(self, place: tuple[str, ...]) -> frozenset[str]:
        """Keys wrangler accepts at ``place`` (property names; "[]" steps into list items)."""
        if place not in self._keys:
            self._keys[place] = frozenset(pointers_at(self.data, place))
        return self._keys[place]

    def schema_at(self, place: tuple[Any, ...]) -> Mapping[str, Any] | None:
        """The schema of one place of the config (list indices stand for their items)."""
        found = _nodes_at(self.data, tuple("[]" if isinstance(p, int) else p for p in place))
        return found[0][1] if found else None

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
        return self.problems_at((), doc)

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


def _objects(data: Any, pointer: str, node: Mapping[str, Any]
             ) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The object schemas ``node`` may be, each with its JSON pointer in ``data``."""
    if "$ref" in node:
        ref = node["$ref"].lstrip("#")
        yield from _objects(data, ref, node_at(data, ref))
        return
    combined = False
    for word in ("allOf", "anyOf", "oneOf"):
        for i, option in enumerate(node.get(word, ())):
            combined = True
            yield from _objects(data, f"{pointer}/{word}/{i}", option)
    if not combined or "properties" in node:
        yield pointer, node


def node_at(data: Any, pointer: str) -> Any:
    """The node at a JSON pointer of the schema ``data``."""
    for part in filter(None, pointer.split("/")):
        data = data[int(part) if isinstance(data, list) else
                    part.replace("~1", "/").replace("~0", "~")]
    return data


def _nodes_at(data: Any, place: tuple[str, ...]) -> list[tuple[str, Mapping[str, Any]]]:
    """(pointer, schema) of each schema wrangler's ``data`` has at ``place``."""
    nodes: list[tuple[str, Any]] = [("", data)]
    for part in place:
        following = []
        for pointer, node in (o for n in nodes for o in _objects(data, *n)):
            if part == "[]" and "items" in node:
                following.append((f"{pointer}/items", node["items"]))
            elif part in node.get("properties", {}):
                following.append((f"{pointer}/properties/{_escape(part)}",
                                  node["properties"][part]))
        nodes = following
    return nodes


def pointers_at(data: Any, place: tuple[str, ...]) -> dict[str, str]:
    """Each key wrangler's schema ``data`` accepts at ``place`` ("[]": list items) -> its
    JSON pointer."""
    objects = [o for n in _nodes_at(data, place) for o in _objects(data, *n)]
    return {key: f"{pointer}/properties/{_escape(key)}"
            for pointer, node in reversed(objects) for key in node.get("properties", {})}


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _explain(error: Any) -> Iterable[Problem]:
    from dome_tasks.manifest._explain import explain

    return [(f.path, f.what, f.missing) for f in explain(error) if f.what and not f.warning]


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
