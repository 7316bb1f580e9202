"""A small, direct Cloudflare API client for the reads and writes that need no wrangler.

Reading what serves a worker, or the shared deploy history, through wrangler would cost a Node
start (about 1.2 s) per read; these calls take milliseconds. The client speaks the v4 JSON
envelope over HTTPS with urllib, with a timeout on every call, and takes its settings from the
same variables wrangler reads: ``CLOUDFLARE_API_BASE_URL`` (default
``https://api.cloudflare.com/client/v4``), ``CLOUDFLARE_API_TOKEN`` (or ``CLOUDFLARE_API_KEY``
with ``CLOUDFLARE_EMAIL``) and ``CLOUDFLARE_ACCOUNT_ID`` (an environment's ``account_id`` wins).

Errors become :class:`ApiFailure`, which says whether trying again later can help
(``transient``: no answer, a timeout, 429 or 5xx). Credentials never appear in messages.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

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
    """One account's API: ``call(method, path)`` with ``path`` below ``/accounts/<id>``."""

    account_id: str
    token: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 10.0
    email: str | None = field(default=None, repr=False)  # with a global API key as ``token``

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        account_id: str | None = None,
        timeout: float = 10.0,
    ) -> CloudflareApi | None:
        """The API of ``account_id`` (else ``CLOUDFLARE_ACCOUNT_ID``) with the environment's
        credentials; None when there is no credential or no account to talk to."""
        account = account_id or environ.get("CLOUDFLARE_ACCOUNT_ID")
        token = environ.get("CLOUDFLARE_API_TOKEN") or environ.get("CF_API_TOKEN")
        email = None
        if not token and environ.get("CLOUDFLARE_API_KEY") and environ.get("CLOUDFLARE_EMAIL"):
            token, email = environ["CLOUDFLARE_API_KEY"], environ["CLOUDFLARE_EMAIL"]
        if not account or not token:
            return None
        base = (environ.get("CLOUDFLARE_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        return cls(account, token, base, timeout, email)

    @property
    def is_loopback(self) -> bool:
        """Whether this talks to 127.0.0.1 (the emulator of a test or a rehearsal)."""
        return (urlsplit(self.base_url).hostname or "") in _LOOPBACK

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        """The full URL of ``path`` (below the account) with ``query``."""
        suffix = f"?{urlencode({k: v for k, v in (query or {}).items() if v is not None})}"
        return f"{self.base_url}/accounts/{self.account_id}{path}" + (suffix if query else "")

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
        raw: bool = False,
        whole: bool = False,
    ) -> Any:
        """The ``result`` of the envelope; the raw body bytes with ``raw=True``; the whole
        envelope (``result_info`` too) with ``whole=True``."""
        url = self.url(path, query)
        data = None if json_body is None else json.dumps(json_body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers())
        if data is not None:
            request.add_header("Content-Type", "application/json")
        what = f"{method} {urlsplit(url).path}"
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

    def _headers(self) -> dict[str, str]:
        headers = {"User-Agent": "dome-tasks", "Accept": "application/json"}
        if self.email:
            headers.update({"X-Auth-Key": self.token, "X-Auth-Email": self.email})
        else:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

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
        message = message.replace(self.token, "***") if self.token else message
        transient = status == 429 or status >= 500
        detail = f"HTTP {status}" + (f" (API error {code})" if code is not None else "")
        hint = None
        if status in (401, 403) or code in (10000, 10001):
            hint = "check CLOUDFLARE_API_TOKEN and its permissions (Workers KV Storage: Edit, " \
                   "Workers Scripts: Read)"
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
