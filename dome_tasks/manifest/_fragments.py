"""Builders of the JSON Schema fragments that :mod:`~dome_tasks.manifest.schema` and
:mod:`~dome_tasks.manifest.bindings` write dome.yaml's schema in (plain dicts, no walker).

``"x-check": NAME`` names a check of :mod:`~dome_tasks.manifest.checks` (what JSON Schema cannot
say, or cannot word well); ``"x-wrangler": PLACE`` marks a mapping whose other keys are
wrangler's own at that place of its config (``d1_databases/[]``; ``""`` the top level).
Editors ignore both annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dome_tasks.manifest.naming import PATTERNS

Fragment = dict[str, Any]


def string(check: str | None = None, **more: Any) -> Fragment:
    """A string; ``check`` names its check (and gives its pattern, when it has one)."""
    out: Fragment = {"type": "string", **more}
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


NONEMPTY = string("nonempty", minLength=1)
BOOL: Fragment = {"type": "boolean"}
INT: Fragment = {"type": "integer"}
BINDING = string("binding_name")
CLASS_NAME = string("class_name")
