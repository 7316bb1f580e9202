"""A small, direct Cloudflare API client for the reads and writes that need no wrangler.

Reading what serves a worker, the shared deploy history or the live config through wrangler
would cost a Node start (about 1.2 s) per read; these calls take milliseconds. The client speaks
the v4 JSON envelope over HTTPS with urllib, with a timeout on every call, and takes its settings
from the same places wrangler does: ``CLOUDFLARE_API_BASE_URL`` (default
``https://api.cloudflare.com/client/v4``), the credentials of
:mod:`dome_tasks.cloudflare.credentials` (an API token, a global key, or ``wrangler login``) and
``CLOUDFLARE_ACCOUNT_ID`` (an environment's ``account_id`` wins).

Errors become :class:`ApiFailure`, which says whether trying again later can help
(``transient``: no answer, a timeout, 429 or 5xx). Credentials never appear in messages.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from dome_tasks.cloudflare.credentials import LOGIN, Credentials, find_credentials
from dome_tasks.errors import DomeError

__all__ = ["DEFAULT_BASE_URL", "ApiFailure", "CloudflareApi", "path_segment"]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ApiFailure(DomeError):
    """A Cloudflare API call failed; ``transient`` failures may succeed when tried later."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        transient: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code
        self.transient = transient


@dataclass(frozen=True)
class CloudflareApi:
    """The API with one set of credentials. ``call(method, path)`` takes ``path`` below
    ``/accounts/<account_id>``; ``get``/``get_list`` take paths below the API root."""

    account_id: str | None
    credentials: Credentials
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 10.0

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        account_id: str | None = None,
        timeout: float = 10.0,
        wrangler: str | None = None,
        need_account: bool = True,
    ) -> CloudflareApi | None:
        """The API of ``account_id`` (else ``CLOUDFLARE_ACCOUNT_ID``) with the credentials
        wrangler would use; None when there are none, or no account and ``need_account``.
        ``wrangler`` may renew an expired ``wrangler login`` (see ``find_credentials``)."""
        account = account_id or environ.get("CLOUDFLARE_ACCOUNT_ID") or None
        if need_account and not account:
            return None
        credentials = find_credentials(environ, wrangler=wrangler)
        if credentials is None:
            return None
        return cls.with_credentials(environ, credentials, account, timeout=timeout)

    @classmethod
    def with_credentials(
        cls,
        environ: Mapping[str, str],
        credentials: Credentials,
        account_id: str | None,
        *,
        timeout: float = 10.0,
    ) -> CloudflareApi:
        """The API at ``environ``'s ``CLOUDFLARE_API_BASE_URL`` with credentials found before."""
        base = (environ.get("CLOUDFLARE_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        return cls(account_id, credentials, base, timeout)

    @property
    def is_loopback(self) -> bool:
        """Whether this talks to 127.0.0.1 (the emulator of a test or a rehearsal)."""
        return (urlsplit(self.base_url).hostname or "") in _LOOPBACK

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """The full URL of ``path`` (below the API root) with ``query``."""
        suffix = f"?{urlencode({k: v for k, v in (query or {}).items() if v is not None})}"
        return f"{self.base_url}{path}" + (suffix if query else "")

    def call(self, method: str, path: str, **options: Any) -> Any:
        """:meth:`request` of ``path`` below the account (``/accounts/<account_id>``)."""
        if not self.account_id:
            raise ApiFailure(f"{method} {path}: no account id",
                             hint="set account_id on the environment, or CLOUDFLARE_ACCOUNT_ID")
        return self.request(method, f"/accounts/{self.account_id}{path}", **options)

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Any:
        """The ``result`` of ``GET path`` (below the API root)."""
        return self.request("GET", path, query=query)

    def get_list(self, path: str, query: Mapping[str, Any] | None = None,
                 *, per_page: int = 100, max_pages: int = 50) -> list[Any]:
        """Every item of a paginated list below the API root (pages until a short one)."""
        items: list[Any] = []
        for page in range(1, max_pages + 1):
            chunk = self.get(path, {**(query or {}), "page": page, "per_page": per_page})
            if not isinstance(chunk, list):
                break
            items += chunk
            if len(chunk) < per_page:
                break
        return items

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
        raw: bool = False,
        whole: bool = False,
    ) -> Any:
        """The ``result`` of the envelope of ``path`` (below the API root); the raw body bytes
        with ``raw=True``; the whole envelope (``result_info`` too) with ``whole=True``."""
        url = self.url(path, query)
        data = None if json_body is None else json.dumps(json_body).encode("utf-8")
        what = f"{method} {urlsplit(url).path}"
        credentials = self.credentials.headers()
        if credentials is None:
            raise ApiFailure(f"{what}: the token of `wrangler login` has expired and wrangler "
                             "could not renew it", hint="run `wrangler login` again")
        headers = {"User-Agent": "dome-tasks", "Accept": "application/json", **credentials}
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        handlers = [urllib.request.ProxyHandler({})] if self.is_loopback else []
        opener = urllib.request.build_opener(*handlers)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as error:
            body = _read_quietly(error)
            raise self._failure(what, error.code, body) from None
        except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            raise ApiFailure(f"{what}: no answer from {self._origin()} ({reason})",
                             transient=True) from None
        if raw:
            return body
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            raise ApiFailure(f"{what}: the API answered with something that is not JSON",
                             transient=True) from None
        if isinstance(payload, dict) and payload.get("success") is False:
            raise self._failure(what, 200, body)
        if whole or not isinstance(payload, dict) or "result" not in payload:
            return payload
        return payload["result"]

    def _origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def _failure(self, what: str, status: int, body: bytes) -> ApiFailure:
        code, message = None, ""
        try:
            errors = json.loads(body).get("errors") or []
            if errors:
                code, message = errors[0].get("code"), str(errors[0].get("message", ""))
        except (ValueError, AttributeError):
            message = body[:200].decode("utf-8", "replace").strip()
        token = self.credentials.token
        message = message.replace(token, "***") if token else message
        transient = status == 429 or status >= 500
        detail = f"HTTP {status}" + (f" (API error {code})" if code is not None else "")
        hint = None
        if status in (401, 403) or code in (10000, 10001):
            hint = ("run `wrangler login` again" if self.credentials.source == LOGIN else
                    f"check {self.credentials.source} and its permissions (Workers Scripts: Read, "
                    "D1: Edit, Workers KV Storage: Read)")
        return ApiFailure(f"{what}: {detail}" + (f": {message}" if message else ""),
                          status=status, code=code, transient=transient, hint=hint)


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one path segment (KV key names hold slashes)."""
    return quote(value, safe="")


def _read_quietly(error: urllib.error.HTTPError) -> bytes:
    try:
        return error.read()
    except (OSError, http.client.HTTPException):
        return b""
