"""Names and ids Cloudflare accepts. Each check returns what is wrong, or None when valid."""

from __future__ import annotations

import datetime
import re
from typing import Any

WORKER_NAME_MAX = 63

_WORKER = re.compile(r"[a-z0-9_][a-z0-9_-]*")  # wrangler's own rule for "name"
_SUFFIX = re.compile(r"[a-z0-9-]*")
_ENV = re.compile(r"[a-z][a-z0-9_-]*")
_JS_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_R2 = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_QUEUE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_D1_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_VECTORIZE = re.compile(r"[a-z][a-z0-9-]{0,31}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

# ECMAScript reserved words: not usable as binding names.
_RESERVED = frozenset(
    ["await", "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else", "enum", "export", "extends", "false", "finally", "for", "function", "if", "import", "in", "instanceof", "new", "null", "return", "super", "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while", "with", "yield", "let", "static", "implements", "interface", "package", "private", "protected", "public"]
)


_IDENT = f"^(?!(?:{'|'.join(sorted(_RESERVED))})$)(?:{_JS_IDENT.pattern})$"
#: The rules below as JSON Schema patterns (ECMA 262), for dome.schema.json: editors check
#: names as dome does (dome words the message with the rule's own function).
PATTERNS: dict[str, str] = {
    "binding_name": _IDENT, "class_name": _IDENT, "entrypoint": _IDENT,
    **{name: f"^(?:{rule.pattern})$".replace("\\d", "[0-9]") for name, rule in (
        ("worker_name", _WORKER), ("suffix", _SUFFIX), ("environment_name", _ENV),
        ("d1_name", _D1_NAME), ("r2_bucket", _R2), ("queue_name", _QUEUE),
        ("vectorize_index", _VECTORIZE), ("compatibility_date", _DATE))},
}


#: Values that stand in for a secret set with `wrangler secret put` (never carried elsewhere).
_PLACEHOLDER = re.compile(
    r"(?i)^\s*(|<[^>]*>|\$\{[^}]*\}|x{3,}|\*{3,}|\.{3}|todo|tbd|none|null|secret|changeme|"
    r"change[-_ ]?me|replace[-_ ]?me.*|placeholder.*|your[-_ ].*|set[-_ ]?me|dummy|fake|"
    r"fixme|redacted)\s*$")


def placeholder(value: Any) -> bool:
    """A value that stands in for a real one (a secret's, an id's): '', 'PLACEHOLDER',
    '<your id>', 'xxx'…"""
    return isinstance(value, str) and bool(_PLACEHOLDER.match(value))


def worker_name(name: str, suffix: str = "") -> str | None:
    """A worker (script) name as wrangler accepts it: lowercase a-z, 0-9, '_' and '-', not
    starting with a dash; at most 63 characters."""
    full = name + suffix
    if len(full) > WORKER_NAME_MAX:
        extra = f" including the suffix '{suffix}'" if suffix else ""
        return (
            f"worker name '{full}' is {len(full)} characters long; "
            f"Cloudflare allows at most {WORKER_NAME_MAX}{extra}"
        )
    if not _WORKER.fullmatch(full):
        return (
            f"'{full}' is not a valid worker name: use lowercase letters a-z, digits, '_' and "
            "'-', not starting with a dash"
        )
    return None


def suffix(value: str) -> str | None:
    if not _SUFFIX.fullmatch(value):
        return f"'{value}' is not a valid suffix: use lowercase letters a-z, digits and dashes"
    return None


def environment_name(value: str) -> str | None:
    if not _ENV.fullmatch(value):
        return (
            f"'{value}' is not a valid environment name: use lowercase letters, digits, '-' "
            "and '_', starting with a letter"
        )
    return None


def binding_name(value: str) -> str | None:
    """Bindings become ``env.NAME`` in the worker: a JavaScript identifier."""
    if not _JS_IDENT.fullmatch(value) or value in _RESERVED:
        return (
            f"'{value}' is not a valid binding name: it must be a JavaScript identifier "
            "(letters, digits, _ and $, not starting with a digit, not a reserved word)"
        )
    return None


def js_identifier(value: str, what: str) -> str | None:
    if not _JS_IDENT.fullmatch(value) or value in _RESERVED:
        return f"'{value}' is not a valid {what}: it must be a JavaScript identifier"
    return None


def account_id(value: str) -> str | None:
    if not _HEX32.fullmatch(value):
        return f"'{value}' is not a valid account id: expected 32 hexadecimal characters"
    return None


def kv_id(value: str) -> str | None:
    if not _HEX32.fullmatch(value):
        return f"'{value}' is not a valid KV namespace id: expected 32 hexadecimal characters"
    return None


def d1_id(value: str) -> str | None:
    if not _UUID.fullmatch(value):
        return (
            f"'{value}' is not a valid D1 database id: expected a UUID such as "
            "'00000000-0000-4000-8000-000000000000'"
        )
    return None


def d1_name(value: str) -> str | None:
    if not _D1_NAME.fullmatch(value):
        return (
            f"'{value}' is not a valid D1 database name: use letters, digits, '-' and '_' "
            "(at most 64 characters)"
        )
    return None


def r2_bucket(value: str) -> str | None:
    if not _R2.fullmatch(value):
        return (
            f"'{value}' is not a valid R2 bucket name: 3-63 characters, lowercase letters, digits "
            "and dashes, starting and ending with a letter or digit"
        )
    return None


def queue_name(value: str) -> str | None:
    if not _QUEUE.fullmatch(value):
        return (
            f"'{value}' is not a valid queue name: at most 63 characters, lowercase letters, "
            "digits and dashes, not starting or ending with a dash"
        )
    return None


def vectorize_index(value: str) -> str | None:
    if not _VECTORIZE.fullmatch(value):
        return (
            f"'{value}' is not a valid Vectorize index name: at most 32 characters, lowercase "
            "letters, digits and dashes, starting with a letter"
        )
    return None


def compatibility_date(value: str) -> str | None:
    try:
        if _DATE.fullmatch(value):
            datetime.date.fromisoformat(value)
            return None
    except ValueError:
        pass
    return f"'{value}' is not a valid compatibility date: expected YYYY-MM-DD"


# Cloudflare's documented limits on environment variables
# (https://developers.cloudflare.com/workers/platform/limits/#environment-variables):
# 64 per Worker on the Free plan, 128 on Paid (text and secrets combined), 5 KB each.
VAR_VALUE_MAX_BYTES = 5 * 1024
VARS_MAX = 128
VARS_MAX_FREE = 64
#: Larger integers lose precision in JavaScript (wrangler reads the config as JS numbers).
SAFE_INTEGER_MAX = 2**53 - 1


def var_value(value: object) -> str | None:
    """A plain-text variable's value: at most 5 KB as uploaded (UTF-8 text, or JSON)."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, default=repr)  # UNREADABLE parts
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > VAR_VALUE_MAX_BYTES:
        return (
            f"is {size} bytes long; Cloudflare allows at most {VAR_VALUE_MAX_BYTES} bytes "
            "(5 KB) per variable: keep large data in KV, R2 or a bundled file"
        )
    return None


def hyperdrive_id(value: str) -> str | None:
    if not _HEX32.fullmatch(value):
        return f"'{value}' is not a valid Hyperdrive config id: expected 32 hexadecimal characters"
    return None
