"""`Emulator`: start/stop the fake Cloudflare API and read what it recorded."""

from __future__ import annotations

import re
import threading
from types import TracebackType

from dome_tasks.emulator.faults import FaultSet
from dome_tasks.emulator.server import API_PREFIX, EmulatorHTTPServer, RequestRecord, build_router
from dome_tasks.emulator.state import EmulatorState

__all__ = ["DEFAULT_ACCOUNT_ID", "DEFAULT_TOKEN", "Emulator"]

DEFAULT_TOKEN = "emulator-token"
DEFAULT_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


class Emulator:
    """A stateful Cloudflare API on 127.0.0.1 that the real wrangler can deploy to.

    >>> with Emulator() as emu:
    ...     env = {**os.environ, **emu.env()}      # then run wrangler with env
    ...     emu.state.worker("silo-staging").current_version().bindings
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_create: bool = True,
        latest_wrangler: str = "0.0.0",
        verbose: bool = False,
    ) -> None:
        """`auto_create`: unknown D1 ids and queue names spring into existence on first use
        (set False to get the real API's not-found errors). `latest_wrangler` is what the
        stub npm registry (`npm_registry` in `env()`) reports as wrangler's latest version."""
        self.token = token
        self.account_id = account_id
        self.host = host
        self.latest_wrangler = latest_wrangler
        self.verbose = verbose
        self.state = EmulatorState(account_id, auto_create=auto_create)
        self.faults = FaultSet()
        self.router = build_router()
        self._requested_port = port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()

    # lifecycle
    def start(self) -> Emulator:
        if self._server is None:
            self._server = EmulatorHTTPServer((self.host, self._requested_port), self)
            self._thread = self._server.serve_in_thread()
        return self

    def stop(self) -> None:
        """Stop serving; the state and the request log stay readable."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:  # noqa: PYI034
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # addresses
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start()")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The `CLOUDFLARE_API_BASE_URL` value."""
        return self.origin + API_PREFIX

    def env(self) -> dict[str, str]:
        """Environment variables that point wrangler at this emulator and nothing else."""
        loopback = "127.0.0.1,localhost"
        return {
            "CLOUDFLARE_API_BASE_URL": self.url,
            "CLOUDFLARE_API_TOKEN": self.token,
            "CLOUDFLARE_ACCOUNT_ID": self.account_id,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "npm_registry": self.origin + "/npm/",
            "NO_PROXY": loopback,
            "no_proxy": loopback,
        }

    # request log
    def _record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, in arrival order (a copy)."""
        with self._log_lock:
            return list(self._log)

    def requests_matching(self, method: str | None = None, path: str = "") -> list[RequestRecord]:
        """Requests whose method equals `method` (if given) and whose path `re.search`es `path`."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and re.search(path, r.path)
        ]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def __repr__(self) -> str:
        where = self.url if self._server else "stopped"
        return f"<Emulator {where} account={self.account_id}>"
