"""Is it a URL we can GET, or a route Cloudflare accepts? Checked when the manifest loads (with
file:line) and for ``--base-url``, so verification after a deploy never meets a bad URL."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_HOST = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$")
_ROUTE_HOST = re.compile(r"^(\*|\*?[A-Za-z0-9-]*)(\.[A-Za-z0-9-]+)*$")


def _bad_character(text: str) -> str | None:
    for index, char in enumerate(text):
        if char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F:
            shown = {" ": "a space", "\t": "a tab", "\n": "a newline"}.get(char, repr(char))
            return f"contains {shown} at position {index + 1} (write a space in a path as %20)"
    return None


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` as a URL to GET (None when it is usable)."""
    if not isinstance(url, str) or not url.strip():
        return "must be a URL such as https://api.example.com/health"
    bad = _bad_character(url)
    if bad:
        return f"{url!r} {bad}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"{url!r} is not a valid URL: {error}"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} must start with https:// (or http://)"
    host = parts.hostname or ""
    if not host:
        return f"{url!r} has no host"
    if parts.username or parts.password:
        return f"{url!r} must not carry credentials (user:password@)"
    if ":" not in host:  # IPv6 literals are checked by urlsplit
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_host = ""
        if not _HOST.match(ascii_host):
            return f"{url!r}: {host!r} is not a valid host name"
    if port == 0:
        return f"{url!r}: port 0 is not a port"
    return None


def route_problem(pattern: str, *, custom_domain: bool = False) -> str | None:
    """What is wrong with a route pattern (``api.example.com/*``, ``*.example.com/v1/*``)."""
    if not isinstance(pattern, str) or not pattern.strip():
        return "a route needs a pattern such as api.example.com/*"
    bad = _bad_character(pattern)
    if bad:
        return f"route {pattern!r} {bad}"
    rest = pattern.split("://", 1)[1] if "://" in pattern else pattern
    if "://" in pattern and pattern.split("://", 1)[0] not in ("http", "https"):
        return f"route {pattern!r}: only http:// or https:// may precede the host"
    host, slash, _ = rest.partition("/")
    host = host.split(":", 1)[0] if host.count(":") == 1 else host
    if not host:
        return f"route {pattern!r} has no host (e.g. api.example.com/*)"
    if custom_domain and ("*" in pattern or slash):
        return f"custom domain {pattern!r} must be a bare host name (no path, no wildcard)"
    if not _ROUTE_HOST.match(host):
        return f"route {pattern!r}: {host!r} is not a host name (a leading '*' is the only wildcard)"
    return None
