"""The checks of dome.yaml's values that JSON Schema cannot say (or cannot word well), by name.

dome.schema.json names one at a value with ``"x-check": NAME`` (beside a name's pattern, for
editors); :mod:`~dome_tasks.manifest.validation` runs it once the value's type matched, and its
message stands for every failure at that value. A :data:`LENIENT` check only warns: wrangler
reads such a value (a placeholder id such as ``DEV_KV``) and fails only when a deploy sends it.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable
from typing import Any

from dome_tasks.manifest import naming
from dome_tasks.manifest.urls import route_problem, url_problem

__all__ = ["CHECKS", "LENIENT", "LENIENT_NOTE", "describe"]

Check = Callable[[Any], "str | None"]


def _command(value: str) -> str | None:
    try:
        return "must not be empty" if not shlex.split(value) else None
    except ValueError as exc:
        return f"cannot be split into arguments: {exc}"


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


def _ports(value: Any) -> str | None:
    text = str(value)
    first, _, last = text.partition("-")
    if not (first.isdigit() and (not last or last.isdigit())):
        return f"'{text}' is not a port or a range such as '8787-8799'"
    low, high = int(first), int(last or first)
    if not (1 <= low <= high <= 65535):
        return f"'{text}' is not a port range within 1-65535 (first <= last)"
    return None


CHECKS: dict[str, Check] = {
    "nonempty": lambda value: None if value.strip() else "must not be empty",
    "command": _command,
    "var": lambda value: _json_value(value) or naming.var_value(value),
    "version": lambda value: None if value == 1 else (
        f"unsupported version {value}; this dome-tasks reads version 1"),
    "ports": _ports,
    "path": lambda value: None if value.startswith("/") else "must start with '/'",
    "route": route_problem,
    "url": url_problem,
    "class_name": lambda value: naming.js_identifier(value, "class name"),
    "entrypoint": lambda value: naming.js_identifier(value, "entrypoint"),
    **{name: getattr(naming, name) for name in (
        "worker_name", "suffix", "environment_name", "binding_name", "compatibility_date",
        "d1_name", "r2_bucket", "queue_name", "vectorize_index", "account_id", "kv_id", "d1_id",
        "hyperdrive_id")},
}
LENIENT = frozenset({"account_id", "kv_id", "d1_id", "hyperdrive_id"})
LENIENT_NOTE = "; wrangler reads it, but a deploy with it fails until it is replaced"


def describe(value: Any) -> str:
    """How a value reads in a message: ``a list``, ``an integer (5)``, ``null``…"""
    if value is None or isinstance(value, list | dict):
        return {type(None): "null", list: "a list", dict: "a mapping"}[type(value)]
    for kind, word in ((bool, "a boolean"), (int, "an integer"), (float, "a number")):
        if isinstance(value, kind):
            return f"{word} ({str(value).lower() if kind is bool else value})"
    return f"a string ({value!r})" if isinstance(value, str) else type(value).__name__
