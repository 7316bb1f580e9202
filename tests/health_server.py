"""A stand-in for the workers' health URLs on 127.0.0.1 (the emulator serves the API, not the
workers): each test says which status a worker's host answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: host -> the HTTP status to answer, or None for a reply that is not HTTP at all
Answer = Callable[[str], "int | None"]


@contextmanager
def health_server(answer: Answer) -> Iterator[str]:
    """Serve ``answer(host)`` for every GET; yields the server's base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = answer(self.headers.get("Host", "").split(":")[0])
            if status is None:  # not HTTP at all: http.client raises BadStatusLine
                self.wfile.write(b"garbage\r\n\r\n")
                self.close_connection = True
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
