"""A minimal, read-only Cloudflare API client (urllib): what ``invoke diff`` reads.

The base URL is ``CLOUDFLARE_API_BASE_URL`` (as for wrangler; the emulator sets it), else the
real API. Credentials, in order: ``CLOUDFLARE_API_TOKEN``; ``CLOUDFLARE_API_KEY`` with
``CLOUDFLARE_EMAIL``; the OAuth token of ``wrangler login``. They are sent as headers only and
never appear in a message.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dome_tasks.adopt.read import AdoptError

__all__ = ["DEFAULT_BASE_URL", "ApiCallError", "CloudflareApi"]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
TIMEOUT_S = 30.0
CREDENTIALS_HINT = ("set CLOUDFLARE_API_TOKEN (a token that may read Workers scripts, routes, "
                    "D1 and KV), or run `wrangler login`")


class ApiCallError(AdoptError):
    """The API answered with an error (``code`` is Cloudflare's, 0 when there was none)."""

    def __init__(self, message: str, *, status: int, code: int, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


def _wrangler_oauth_token(environ: Mapping[str, str]) -> str | None:
    """The ``oauth_token`` that ``wrangler login`` stored, if any."""
    xdg = environ.get("XDG_CONFIG_HOME")
    home = Path(environ.get("HOME") or Path.home())
    folders = [Path(xdg) / ".wrangler"] if xdg else []
    folders += [home / ".config" / ".wrangler", home / ".wrangler"]
    for folder in folders:
        path = folder / "config" / "default.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            token = tomllib.loads(text).get("oauth_token")
        except ValueError:
            continue
        if isinstance(token, str) and token:
            return token
    return None


@dataclass
class CloudflareApi:
    """GET requests against the Cloudflare API, unwrapping its ``{success, result}`` envelope."""

    base_url: str
    headers: dict[str, str] = field(repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> CloudflareApi:
        env = os.environ if environ is None else environ
        base = (env.get("CLOUDFLARE_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        headers = {"User-Agent": "dome-tasks", "Accept": "application/json"}
        if env.get("CLOUDFLARE_API_TOKEN"):
            headers["Authorization"] = f"Bearer {env['CLOUDFLARE_API_TOKEN']}"
        elif env.get("CLOUDFLARE_API_KEY") and env.get("CLOUDFLARE_EMAIL"):
            headers["X-Auth-Key"] = env["CLOUDFLARE_API_KEY"]
            headers["X-Auth-Email"] = env["CLOUDFLARE_EMAIL"]
        else:
            token = _wrangler_oauth_token(env)
            if token is None:
                raise AdoptError("no Cloudflare credentials to read what is deployed",
                                 hint=CREDENTIALS_HINT)
            headers["Authorization"] = f"Bearer {token}"
        return cls(base, headers)

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The ``result`` of ``GET path``; :class:`ApiCallError` on an error envelope."""
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        request = urllib.request.Request(url, headers=self.headers, method="GET")
        try:
            with _opener(url).open(request, timeout=TIMEOUT_S) as response:
                payload = json.loads(response.read() or b"null")
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                payload = json.loads(exc.read() or b"null")
            except ValueError:
                payload = None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdoptError(f"cannot reach the Cloudflare API at {self.base_url}: {reason}",
                             hint="check the network (or CLOUDFLARE_API_BASE_URL)") from None
        if isinstance(payload, dict) and payload.get("success") is True:
            return payload.get("result")
        errors = payload.get("errors") if isinstance(payload, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else {}
        code = int(first.get("code", 0)) if isinstance(first, dict) else 0
        message = first.get("message", "") if isinstance(first, dict) else ""
        hint = CREDENTIALS_HINT if status in (401, 403) or code in (10000, 10001) else None
        raise ApiCallError(f"GET {path} failed: HTTP {status}" + (
            f", {message} [code: {code}]" if message else ""), status=status, code=code, hint=hint)

    def get_list(self, path: str, params: Mapping[str, str] | None = None,
                 *, per_page: int = 100, max_pages: int = 50) -> list[Any]:
        """Every item of a paginated list (pages until a short one)."""
        items: list[Any] = []
        for page in range(1, max_pages + 1):
            query = {**(params or {}), "page": str(page), "per_page": str(per_page)}
            chunk = self.get(path, query)
            if not isinstance(chunk, list):
                break
            items += chunk
            if len(chunk) < per_page:
                break
        return items


def _opener(url: str) -> urllib.request.OpenerDirector:
    """No proxies for loopback (the emulator); the environment's proxies otherwise."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()
