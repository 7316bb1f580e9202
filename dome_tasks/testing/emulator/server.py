"""The HTTP server: auth, fault injection, routing and the request log.

Requests whose `Host` is `<worker>.<subdomain>.workers.dev` are not API calls: they go to the
served worker (`Emulator(serve_workers=True)`), proxied as they are (method, path, headers,
body, the `Host` kept) to its `wrangler dev`, after waiting for a pending (re)start.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, urlsplit

from dome_tasks.testing.emulator import (
    routes_account,
    routes_assets,
    routes_d1,
    routes_resource,
    routes_secrets,
    routes_storage,
    routes_triggers,
    routes_workers,
)
from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, error
from dome_tasks.testing.emulator.serving import ServeError

if TYPE_CHECKING:
    from dome_tasks.testing.emulator.faults import FaultSet
    from dome_tasks.testing.emulator.serving import WorkerHost
    from dome_tasks.testing.emulator.state import EmulatorState


class ServerOwner(Protocol):
    """What the HTTP server needs from the emulator that owns it (no import of it: no cycle)."""

    state: EmulatorState
    faults: FaultSet
    account_id: str
    token: str
    refresh_token: str
    latest_wrangler: str
    verbose: bool
    workers: WorkerHost | None
    router: Router

    def worker_name_for_host(self, host: str) -> str | None: ...
    def record_request(self, record: RequestRecord) -> None: ...
    def record_unrouted(self, method: str, path: str) -> None: ...
    def record_worker_request(self, record: RequestRecord) -> None: ...
    def state_changed(self) -> None: ...


__all__ = ["API_PREFIX", "OAUTH_TOKEN_PATH", "EmulatorHTTPServer", "RequestRecord", "build_router"]

API_PREFIX = "/client/v4"
NPM_PREFIX = "/npm/"
OAUTH_TOKEN_PATH = "/oauth2/token"  # wrangler login's token endpoint (WRANGLER_TOKEN_URL)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it. `status` is 0 for a dropped connection."""

    method: str
    path: str
    query: str
    status: int
    content_type: str
    body: bytes
    fault: bool
    at: float

    @property
    def line(self) -> str:
        """`METHOD /path?query`, as in wrangler's own messages."""
        return f"{self.method} {self.path}" + (f"?{self.query}" if self.query else "")

    def json(self) -> object:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.line} -> {self.status}" + (" (fault)" if self.fault else "")


def build_router() -> Router:
    router = Router()
    for module in (routes_account, routes_workers, routes_secrets, routes_d1, routes_storage,
                   routes_triggers, routes_assets, routes_resource):
        router.include(module.router)
    return router


def _oauth_token(emulator: ServerOwner, body: bytes) -> Response:
    """Renew a ``wrangler login``: the emulator's refresh token buys its API token for an hour."""
    form = parse_qs(body.decode("utf-8", "replace"))
    grant, refresh = form.get("grant_type", [""])[0], form.get("refresh_token", [""])[0]
    if grant != "refresh_token" or refresh != emulator.refresh_token:
        payload: dict[str, object] = {"error": "invalid_grant",
                                      "error_description": "the refresh token is not valid"}
        return Response(400, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    payload = {"access_token": emulator.token, "expires_in": 3600, "token_type": "bearer",
               "refresh_token": emulator.refresh_token, "scope": "account:read workers:write"}
    return Response(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: object) -> None:
        if self.server.emulator.verbose:
            sys.stderr.write(f"emulator: {format % args}\n")

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        body = self._read_body()
        worker = emulator.worker_name_for_host(self.headers.get("Host", ""))
        if worker is not None:
            self._proxy(worker, body)
            return
        path = split.path
        is_api = path.startswith(API_PREFIX)
        api_path = path[len(API_PREFIX) :] or "/" if is_api else path
        record_kwargs = {
            "method": self.command,
            "path": api_path,
            "query": split.query,
            "content_type": self.headers.get("Content-Type", ""),
            "body": body,
        }
        if is_api and emulator.latency:
            emulator.faults.wait(emulator.latency)  # every API call: a far-away API
        fault = emulator.faults.take(self.command, api_path, body) if is_api else None
        if fault is not None and fault.delay:
            emulator.faults.wait(fault.delay)
            if self._client_gone():  # it hung up while we waited
                if fault.lands and fault.passes_through:  # … but the request lands all the same
                    self._land(split.query, api_path, body, is_api, record_kwargs)
                    return
                emulator.record_request(RequestRecord(status=0, fault=True, at=time.time(), **record_kwargs))
                self.close_connection = True
                return
        if fault is not None and not fault.passes_through:
            answer = fault.response()
            emulator.record_request(
                RequestRecord(status=answer.status, fault=True, at=time.time(), **record_kwargs)
            )
            if answer.drop:
                self._drop()
            else:
                self._send(Response(answer.status, answer.body, answer.headers), answer.cut_after)
            return
        response = self._dispatch(split.query, api_path, body, is_api)
        emulator.record_request(
            RequestRecord(
                status=response.status, fault=fault is not None, at=time.time(), **record_kwargs
            )
        )
        if is_api and self.command != "GET" and response.status < 400:
            emulator.state_changed()
        self._send(response, fault.cut_after if fault is not None else None)

    def _land(self, query: str, api_path: str, body: bytes, is_api: bool,
              record_kwargs: dict) -> None:
        """Make the change of a request whose client is gone (as a real API does with a request
        already in flight); it is logged with status 0, like any unanswered request."""
        emulator = self.server.emulator
        response = self._dispatch(query, api_path, body, is_api)
        emulator.record_request(RequestRecord(status=0, fault=True, at=time.time(), **record_kwargs))
        if self.command != "GET" and response.status < 400:
            emulator.state_changed()
        self.close_connection = True

    def _proxy(self, worker: str, body: bytes) -> None:
        """Forward this request to the served worker and relay its answer."""
        emulator = self.server.emulator
        if emulator.workers is None:
            self._proxied(body, _plain(404, "worker serving is off: use serve_workers=True"))
            return
        with emulator.state.lock:
            known = emulator.state.workers.get(worker)
            enabled = known is not None and known.subdomain_enabled
        if known is not None and not enabled:
            message = f"emulator: {worker} has no workers.dev route (workers_dev = false)"
            self._proxied(body, _plain(404, message))
            return
        try:
            served = emulator.workers.wait(worker)
        except LookupError:
            self._proxied(body, _plain(404, f"There is nothing here yet: no worker {worker!r}"))
            return
        except TimeoutError as exc:
            self._proxied(body, _plain(503, f"emulator: {exc}"))
            return
        except ServeError as exc:
            self._proxied(body, _plain(502, f"emulator: could not serve {worker}: {exc}"))
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        split = urlsplit(self.path)  # origin-form, also when a client sent an absolute URL
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=60)
        try:
            connection.request(self.command, target, body=body or None, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            relayed = [
                (key, value)
                for key, value in answer.getheaders()
                if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length"
            ]
        except OSError as exc:
            self._proxied(body, _plain(502, f"emulator: {worker} did not answer: {exc}"))
            return
        finally:
            connection.close()
        self._record_proxied(body, answer.status)
        self.send_response(answer.status, answer.reason)
        for key, value in relayed:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _proxied(self, body: bytes, response: Response) -> None:
        self._record_proxied(body, response.status)
        self._send(response)

    def _record_proxied(self, body: bytes, status: int) -> None:
        """Log a proxied request before answering it (a client may check the log at once)."""
        split = urlsplit(self.path)
        self.server.emulator.record_worker_request(
            RequestRecord(
                method=self.command,
                path=self.headers.get("Host", "") + split.path,
                query=split.query,
                status=status,
                content_type=self.headers.get("Content-Type", ""),
                body=body,
                fault=False,
                at=time.time(),
            )
        )

    def _dispatch(self, query: str, path: str, body: bytes, is_api: bool) -> Response:
        emulator = self.server.emulator
        if not is_api:
            if path.startswith(NPM_PREFIX) and self.command == "GET":
                name = path[len(NPM_PREFIX) :]
                tags = {"latest": emulator.latest_wrangler}
                payload = {"name": name, "dist-tags": tags}
                return Response(
                    200, json.dumps(payload).encode(), {"Content-Type": "application/json"}
                )
            if path == OAUTH_TOKEN_PATH and self.command == "POST":
                return _oauth_token(emulator, body)
            if path.startswith(routes_d1.UPLOAD_PREFIX) and self.command == "PUT":
                return routes_d1.receive_upload(
                    emulator.state, path[len(routes_d1.UPLOAD_PREFIX):], body)
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        if self.headers.get("Authorization") != f"Bearer {emulator.token}" and not (
            routes_assets.upload_authorized(emulator.state, path, self.headers)
        ):
            return error(401, 10000, "Authentication error")
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "accounts" and parts[2] != emulator.account_id:
            return error(
                404, 7003, f"Could not route to {path}, perhaps your object identifier is invalid?"
            )
        try:
            resolved = emulator.router.resolve(self.command, path)
            if resolved is None:
                emulator.record_unrouted(self.command, path)
                return error(404, 7000, "No route for that URI")
            handler, params = resolved
            request = Request(
                method=self.command,
                path=path,
                query=parse_qs(query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                params=params,
            )
            return handler(emulator.state, request)
        except ApiError as exc:
            if exc.status == 405:  # the path is known, but not with this method
                emulator.record_unrouted(self.command, path)
            return exc.response()
        except Exception:  # noqa: BLE001 (a bug in a handler must not hang wrangler)
            traceback.print_exc(file=sys.stderr)
            return error(500, 10013, "emulator internal error (see its stderr)")

    def _send(self, response: Response, cut_after: int | None = None) -> None:
        """Answer; with ``cut_after``, only that many bytes of the body, then hang up."""
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut_after is None:
            self.wfile.write(response.body)
            return
        self.wfile.write(response.body[: max(0, cut_after)])
        self.wfile.flush()
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _client_gone(self) -> bool:
        """Whether the client closed its end (EOF or reset) while the request was pending."""
        try:
            ready, _, _ = select.select([self.connection], [], [], 0)
            if not ready:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _drop(self) -> None:
        """Reset the connection without answering."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def _plain(status: int, text: str) -> Response:
    return Response(status, (text + "\n").encode(), {"Content-Type": "text/plain; charset=utf-8"})


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: ServerOwner) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="cf-emulator", daemon=True)
        thread.start()
        return thread
