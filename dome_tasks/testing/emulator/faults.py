"""Fault injection: make matching requests fail, slow down or drop, N times or forever.

A rule matches on method, API path and (``body_matches``) the request body, after letting the
first ``skip`` matching requests through. What it does:

* ``status`` / ``code`` / ``message`` / ``body``: answer with an error instead of the real API;
* ``delay``: wait first (slow API). A client that hangs up meanwhile is not served: its
  request is logged with status 0 and changes nothing (as if the request never completed),
  unless ``lands=True``: then its change is made all the same (a request already in flight on
  a real API, e.g. an activation that lands after the caller timed out);
* ``drop``: reset the connection without answering;
* ``cut_after``: send the headers and only that many bytes of the body (of the error, or of
  the real answer when no error is set: the change is then made), then close the connection.

Examples (``emulator.faults.add(...)``)::

    add(method="PUT", path=r"/workers/scripts/silo-staging$", delay=30)        # slow upload
    add(path=r"/workers/subdomain$", status=500, times=None)                   # after the upload
    add(method="POST", path=r"/d1/database/[^/]+/query$", body_matches="0002_", status=500)
    add(method="POST", path=r"/query$", skip=3, cut_after=10)                  # answer cut short
    add(method="POST", path=r"/deployments$", delay=30, lands=True)            # lands after a timeout
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "FaultResponse", "FaultSet"]

_DEFAULT_CODES = {
    401: (10001, "Unable to authenticate request"),
    403: (10000, "Authentication error"),
    429: (971, "Please wait and consider throttling your request speed"),
    500: (10013, "An unknown error has occurred"),
    503: (10013, "Service unavailable"),
}
_HTML = {
    502: "<html><body><h1>502 Bad Gateway</h1></body></html>",
    504: "<html><body><h1>504 Gateway Time-out</h1></body></html>",
}


@dataclass(frozen=True)
class FaultResponse:
    """What the server sends instead of the real answer (`drop` closes the socket)."""

    status: int
    body: bytes
    headers: dict[str, str]
    drop: bool = False
    cut_after: int | None = None  # bytes of the body sent before closing the connection


@dataclass
class Fault:
    """One rule. `path` is a regex searched in the API path (no `/client/v4`, no query),
    or a glob when `glob=True`; `body_matches` a regex searched in the request body. The first
    `skip` matching requests pass untouched; then it applies `times` times (None: forever)."""

    path: str
    method: str | None = None
    status: int | None = None
    code: int | None = None
    message: str | None = None
    body: str | bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: float | None = None
    delay: float = 0.0
    lands: bool = False  # with ``delay``: the change is made even when the client hung up
    drop: bool = False
    cut_after: int | None = None
    body_matches: str | None = None
    times: int | None = 1
    glob: bool = False
    skip: int = 0
    hits: int = 0
    seen: int = 0

    def matches(self, method: str, path: str, body: bytes = b"") -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        if self.body_matches is not None and not re.search(self.body_matches.encode(), body):
            return False
        if self.glob:
            return fnmatch.fnmatchcase(path, self.path)
        return re.search(self.path, path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    @property
    def passes_through(self) -> bool:
        """A delay or a cut: the request is then handled (and answered) by the real API."""
        return not self.drop and self.status is None and self.code is None and self.body is None

    def response(self) -> FaultResponse:
        headers = dict(self.headers)
        if self.retry_after is not None:
            value = self.retry_after
            headers["Retry-After"] = str(int(value)) if float(value).is_integer() else str(value)
        if self.drop:
            return FaultResponse(0, b"", headers, drop=True)
        status = self.status or (403 if self.code == 10000 else 400)
        body = self.body
        if body is None and status in _HTML and self.code is None:
            body = _HTML[status]
        if body is None:
            code, message = _DEFAULT_CODES.get(status, (10013, "An unknown error has occurred"))
            code = self.code if self.code is not None else code
            if self.code == 10000 and self.message is None:
                message = "Authentication error"
            body = {
                "success": False,
                "errors": [{"code": code, "message": self.message or message}],
                "messages": [],
                "result": None,
            }
        if isinstance(body, dict):
            headers.setdefault("Content-Type", "application/json")
            raw = json.dumps(body).encode()
        else:
            headers.setdefault("Content-Type", "text/html" if status in _HTML else "text/plain")
            raw = body.encode() if isinstance(body, str) else body
        return FaultResponse(status, raw, headers, cut_after=self.cut_after)


class FaultSet:
    """The emulator's active faults; the first live matching rule wins."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._released = threading.Event()

    def add(self, path: str = ".*", method: str | None = None, **kwargs: Any) -> Fault:
        """Add a rule, e.g. `add(method="PUT", path=r"/scripts/[^/]+$", status=429, retry_after=1)`.

        Keyword arguments are `Fault` fields: status, code, message, body, headers,
        retry_after, delay, lands, drop, cut_after, body_matches, skip, times (None = forever),
        glob.
        """
        fault = Fault(path=path, method=method, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        """The rule that applies to this request (its hit is counted), if any."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.matches(method, path, body):
                    fault.seen += 1
                    if fault.seen <= fault.skip:
                        continue
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def wait(self, seconds: float) -> None:
        """Sleep for a delay fault; returns at once when the emulator stops (:meth:`release`)."""
        self._released.wait(seconds)

    def release(self) -> None:
        """End every delay in progress (and any later one): the emulator is stopping."""
        self._released.set()

    def rearm(self) -> None:
        self._released.clear()

    def __iter__(self):  # type: ignore[no-untyped-def]
        with self._lock:
            return iter(list(self._faults))

    def __len__(self) -> int:
        return len(self._faults)
