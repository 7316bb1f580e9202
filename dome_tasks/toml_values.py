"""A small, strict TOML (1.0) value encoder: the only way a value reaches rendered TOML.

Encodes str, int (64-bit), finite float, bool, lists/tuples and dicts (as inline tables).
Anything else, a NaN/infinity, an out-of-range int or a lone surrogate raises
:class:`~dome_tasks.errors.RenderError` instead of producing TOML that wrangler would
misread. Keys are encoded bare when TOML allows it, quoted otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from .errors import RenderError

__all__ = ["toml_value", "toml_key", "toml_comment"]

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
