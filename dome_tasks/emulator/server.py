"""The HTTP server: auth, fault injection, routing and the request log."""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from dome_tasks.emulator import (
    routes_account,
    routes_d1,
    routes_secrets,
    routes_storage,
    routes_workers,
)
from dome_tasks.emulator.api import ApiError, Request, Response, Router, error

if TYPE_CHECKING:
    from dome_tasks.emulator.emulator import Emulator

__all__ = ["API_PREFIX", "EmulatorHTTPServer", "RequestRecord", "build_router"]

API_PREFIX = "/client/v4"
NPM_PREFIX = "/npm/"


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
    for module in (routes_account, routes_workers, routes_secrets, routes_d1, routes_storage):
        router.include(module.router)
    return router


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
        fault = emulator.faults.take(self.command, api_path) if is_api else None
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and not fault.passes_through:
            answer = fault.response()
            emulator._record(
                RequestRecord(status=answer.status, fault=True, at=time.time(), **record_kwargs)
            )
            if answer.drop:
                self._drop()
            else:
                self._send(Response(answer.status, answer.body, answer.headers))
            return
        response = self._dispatch(split.query, api_path, body, is_api)
        emulator._record(
            RequestRecord(
                status=response.status, fault=fault is not None, at=time.time(), **record_kwargs
            )
        )
        self._send(response)

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
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        if self.headers.get("Authorization") != f"Bearer {emulator.token}":
            return error(401, 10000, "Authentication error")
        parts = path.split("/")
        if len(parts) > 2 and parts[1] == "accounts" and parts[2] != emulator.account_id:
            return error(
                404, 7003, f"Could not route to {path}, perhaps your object identifier is invalid?"
            )
        try:
            resolved = emulator.router.resolve(self.command, path)
            if resolved is None:
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
            return exc.response()
        except Exception:  # noqa: BLE001 (a bug in a handler must not hang wrangler)
            traceback.print_exc(file=sys.stderr)
            return error(500, 10013, "emulator internal error (see its stderr)")

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _drop(self) -> None:
        """Reset the connection without answering."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="cf-emulator", daemon=True)
        thread.start()
        return thread
