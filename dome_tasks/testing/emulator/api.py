"""Request/response values, the Cloudflare JSON envelope and a tiny regex router."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dome_tasks.testing.emulator.multipart import Part, parse_multipart
from dome_tasks.testing.emulator.state import EmulatorState

__all__ = ["ApiError", "Request", "Response", "Router", "error", "not_found_script", "ok"]


@dataclass(frozen=True)
class Request:
    """An API request; `path` is relative to `/client/v4` and has no query string."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, 10026, f"could not parse JSON body: {exc}") from exc

    def parts(self) -> list[Part]:
        try:
            return parse_multipart(self.body, self.headers.get("content-type", ""))
        except ValueError as exc:
            raise ApiError(400, 10021, f"bad multipart body: {exc}") from exc


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """Raised by handlers; becomes a `success:false` envelope."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        return error(self.status, self.code, self.message)


def _json(status: int, payload: dict[str, Any]) -> Response:
    return Response(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def ok(result: Any, *, result_info: dict[str, Any] | None = None, status: int = 200) -> Response:
    """The success envelope."""
    payload: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        payload["result_info"] = result_info
    return _json(status, payload)


def paged(items: list[Any], req: Request | None = None) -> Response:
    """A list with the `result_info` wrangler's paginators read.

    With the request, its `page` and `per_page` are honoured (pages past the end are empty:
    the Cloudflare SDK's paginators in wrangler ask for pages until one comes back empty)."""
    n = len(items)
    if req is None:
        info = {"page": 1, "per_page": max(n, 20), "count": n, "total_count": n, "total_pages": 1}
        return ok(items, result_info=info)
    page = _positive(req.arg("page"), 1)
    per_page = _positive(req.arg("per_page"), 20)
    chunk = items[(page - 1) * per_page: page * per_page]
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": n,
            "total_pages": max(1, -(-n // per_page))}
    return ok(chunk, result_info=info)


def _positive(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default


def error(status: int, code: int, message: str) -> Response:
    """The failure envelope."""
    return _json(
        status,
        {
            "success": False,
            "errors": [{"code": code, "message": message}],
            "messages": [],
            "result": None,
        },
    )


def not_found_script(name: str) -> ApiError:
    return ApiError(
        404,
        10007,
        f"This Worker ({name}) does not exist on your account. "
        "[workers.api.error.script_not_found]",
    )


Handler = Callable[[EmulatorState, Request], Response]


class Router:
    """Maps (method, path regex) to handlers; `{name}` segments become named groups."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        # `{name}` is one segment; `{name:path}` the rest of the path (an R2 object key)
        regex = re.compile("^" + re.sub(r"\{(\w+):path\}", r"(?P<\1>.+)",
                                        re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)) + "$")

        def register(fn: Handler) -> Handler:
            self._routes.append((method.upper(), regex, fn))
            return fn

        return register

    def include(self, other: Router) -> None:
        self._routes.extend(other._routes)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """The handler and path params, None if no route matches the path at all."""
        path_known = False
        for route_method, regex, fn in self._routes:
            match = regex.match(path)
            if match:
                path_known = True
                if route_method == method.upper():
                    return fn, match.groupdict()
        if path_known:
            raise ApiError(405, 10405, f"method {method} not allowed on {path}")
        return None
