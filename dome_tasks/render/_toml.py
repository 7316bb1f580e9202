"""A small, strict TOML (1.0) value encoder: the only way a value reaches rendered TOML.

Encodes str, int (64-bit), finite float, bool, lists/tuples and dicts (as inline tables);
:func:`toml_table` writes a mapping as a ``[table]`` (or a list of them as ``[[tables]]``).
Anything else, a NaN/infinity, an out-of-range int or a lone surrogate raises
:class:`~dome_tasks.errors.RenderError` instead of producing TOML that wrangler would
misread. Keys are encoded bare when TOML allows it, quoted otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from dome_tasks.errors import RenderError

__all__ = ["toml_comment", "toml_key", "toml_table", "toml_value"]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SHORT_ESCAPES = {
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}
# Characters a TOML basic string may not hold literally: quote, backslash, C0 controls
# (tab is allowed but escaped anyway, for readable one-line output), DEL, and surrogates
# (rejected: they cannot be encoded as UTF-8).
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\x7f\ud800-\udfff]')


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        raise RenderError(
            f"cannot encode lone surrogate U+{ord(char):04X} in TOML",
            hint="strings in the manifest must be valid Unicode text",
        )
    return _SHORT_ESCAPES.get(char) or f"\\u{ord(char):04X}"


def _string(value: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, value) + '"'


def toml_value(value: Any) -> str:
    """Encode one Python value as a single-line TOML value."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise RenderError(
                f"integer {value} does not fit in TOML's 64-bit range",
                hint="quote it in the manifest to pass it as a string",
            )
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(
                f"cannot render {value!r}: wrangler vars are JSON, which has no NaN or infinity",
                hint="quote it in the manifest to pass it as a string",
            )
        return repr(value)  # shortest round-tripping form; always has '.' or 'e'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    raise RenderError(f"cannot render a {type(value).__name__} value in TOML: {value!r}")


def toml_key(key: Any) -> str:
    """Encode a key: bare when it is ``[A-Za-z0-9_-]+``, a quoted string otherwise."""
    if not isinstance(key, str):
        raise RenderError(f"TOML keys must be strings, got {type(key).__name__}: {key!r}")
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def toml_comment(value: Any) -> str:
    """Text safe inside a ``#`` comment: control characters shown as escapes, never raw."""
    return _NEEDS_ESCAPE.sub(
        lambda m: m.group() if m.group() in '"\\' else _escape_char(m), str(value)
    )


def _is_pairs(value: Any) -> bool:
    """A sequence of (key, value) tuples: a table whose duplicate keys TOML will refuse."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(type(item) is tuple and len(item) == 2 for item in value)
    )


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _is_table(value: Any) -> bool:
    return _is_mapping(value) or _is_pairs(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and all(map(_is_mapping, value))


def toml_table(value: Any, key: Any) -> str:
    """``value`` as TOML tables at ``key`` (a name or a tuple of names), without a final newline.

    A mapping becomes ``[key]`` with its plain values, then its sub-tables; a list of mappings
    becomes one ``[[key]]`` block per item; blocks are separated by a blank line.
    """
    path = (key,) if isinstance(key, str) else tuple(key)
    blocks: list[str] = []
    if _is_table_array(value):
        for item in value:
            _emit(path, item, blocks, array=True)
    elif _is_table(value):
        _emit(path, value, blocks, array=False)
    else:
        raise RenderError(f"{'.'.join(path)} is not a table: {value!r}")
    return "\n\n".join(blocks)


def _emit(path: tuple[str, ...], table: Any, blocks: list[str], *, array: bool) -> None:
    items = list(table.items()) if _is_mapping(table) else list(table)
    nested = [(k, v) for k, v in items if _is_table(v) or _is_table_array(v)]
    plain = [(k, v) for k, v in items if not (_is_table(v) or _is_table_array(v))]
    header = ".".join(toml_key(part) for part in path)
    if array or plain or not nested:
        lines = [f"[[{header}]]" if array else f"[{header}]"]
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in plain]
        blocks.append("\n".join(lines))
    for k, v in nested:
        if _is_table_array(v):
            for item in v:
                _emit((*path, k), item, blocks, array=True)
        else:
            _emit((*path, k), v, blocks, array=False)
