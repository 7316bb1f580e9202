"""`Emulator`: start/stop the fake Cloudflare API and read what it recorded.

With `serve_workers=True` it also runs every deployed worker's current version under
workerd (see `serving.WorkerHost`) and answers requests whose `Host` is
`<worker>.<subdomain>.workers.dev` by proxying them to that worker, so the emulator's origin
works as a health-check base URL (`INVOKE_DOME_HEALTH_BASE_URL`).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from dome_tasks.testing.emulator.faults import FaultSet
from dome_tasks.testing.emulator.server import (
    API_PREFIX,
    OAUTH_TOKEN_PATH,
    EmulatorHTTPServer,
    RequestRecord,
    build_router,
)
from dome_tasks.testing.emulator.serving import ServedWorker, ServeError, WorkerHost
from dome_tasks.testing.emulator.state import EmulatorState

__all__ = ["DEFAULT_ACCOUNT_ID", "DEFAULT_TOKEN", "UNROUTED_LOG_ENV", "Emulator"]

#: A file every emulator in this process tree appends its unanswered calls to, one
#: ``METHOD /path`` per line: the tests fail on any (a call wrangler makes that we do not serve).
UNROUTED_LOG_ENV = "DOME_EMULATOR_UNROUTED_LOG"

DEFAULT_TOKEN = "emulator-token"
DEFAULT_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"


class Emulator:
    """A stateful Cloudflare API on 127.0.0.1 that the real wrangler can deploy to.

    >>> with Emulator() as emu:
    ...     env = {**os.environ, **emu.env()}      # then run wrangler with env
    ...     emu.state.worker("silo-staging").current_version().bindings

    With `serve_workers=True`, deployed workers also run (under `wrangler dev`, workerd):

    >>> with Emulator(serve_workers=True) as emu:
    ...     ...                                    # wrangler deploy silo-staging
    ...     emu.worker_url("silo-staging")         # http://127.0.0.1:<port>, its own workerd
    ...     # or through the emulator, like https://silo-staging.emulator.workers.dev/health:
    ...     # GET {emu.origin}/health with Host: silo-staging.emulator.workers.dev
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
        serve_workers: bool = False,
        serve_dir: Path | str | None = None,
        serve_env: Mapping[str, str] | None = None,
        wrangler: Path | str | None = None,
        serve_timeout: float = 60.0,
        latency: float = 0.0,
    ) -> None:
        """`auto_create`: unknown D1 ids and queue names spring into existence on first use
        (set False to get the real API's not-found errors). `latest_wrangler` is what the
        stub npm registry (`npm_registry` in `env()`) reports as wrangler's latest version.

        `serve_workers`: run each deployed worker's current version under `wrangler dev`
        (off by default). `serve_dir`: where their bundles, logs and local data go (default:
        a temporary folder removed on `stop()`). `serve_env`: extra environment variables for
        those `wrangler dev` processes (e.g. `netguard.guard_env`). `wrangler`: the binary
        (default: `node_modules/.bin/wrangler` above the working directory or this package).
        `serve_timeout`: how long one worker may take to start. `latency`: seconds every API
        call waits before it is handled (a far-away API; ``benchmarks/bench_truth_cost.py``)."""
        self.token = token
        self.refresh_token = "emulator-refresh-token"  # renews a `wrangler login` (login_env)
        self.account_id = account_id
        self.host = host
        self.latest_wrangler = latest_wrangler
        self.verbose = verbose
        self.latency = latency
        self.state = EmulatorState(account_id, auto_create=auto_create)
        self.faults = FaultSet()
        self.router = build_router()
        self._requested_port = port
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log: list[RequestRecord] = []
        self.unrouted: list[str] = []  # "METHOD /path" of each call answered "No route"
        self._worker_log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self.serve_workers = serve_workers
        self._serve_options = {
            "root": Path(serve_dir) if serve_dir is not None else None,
            "wrangler": wrangler,
            "env": serve_env,
            "startup_timeout": serve_timeout,
        }
        self.workers: WorkerHost | None = None

    # lifecycle
    def start(self) -> Emulator:
        if self._server is None:
            self.faults.rearm()
            if self.serve_workers and self.workers is None:
                self.workers = WorkerHost(self.state, **self._serve_options).start()  # type: ignore[arg-type]
                self.workers.sync()
            self._server = EmulatorHTTPServer((self.host, self._requested_port), self)
            self._thread = self._server.serve_in_thread()
        return self

    def stop(self) -> None:
        """Stop serving (and every served worker); the state and the request log stay readable.
        Requests held by a delay fault are released at once."""
        self.faults.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.workers is not None:
            self.workers.close()
            self.workers = None

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
        """Environment variables that point wrangler at this emulator and nothing else.

        When workers are served, also `INVOKE_DOME_HEALTH_BASE_URL` (this origin) and
        `INVOKE_DOME_WORKERS_SUBDOMAIN`, so dome-tasks' verification reaches the served workers."""
        loopback = "127.0.0.1,localhost"
        env = {
            "CLOUDFLARE_API_BASE_URL": self.url,
            "CLOUDFLARE_API_TOKEN": self.token,
            "CLOUDFLARE_ACCOUNT_ID": self.account_id,
            "WRANGLER_SEND_METRICS": "false",
            "WRANGLER_SEND_ERROR_REPORTS": "false",
            "npm_registry": self.origin + "/npm/",
            "NO_PROXY": loopback,
            "no_proxy": loopback,
        }
        if self.serve_workers:
            env["INVOKE_DOME_HEALTH_BASE_URL"] = self.origin
            env["INVOKE_DOME_WORKERS_SUBDOMAIN"] = self.state.subdomain
        return env

    def login_env(self) -> dict[str, str]:
        """``env()`` for a machine that used ``wrangler login`` instead of a token: no
        ``CLOUDFLARE_API_TOKEN``, and wrangler renews an expired login here (refresh token
        ``self.refresh_token``; the renewed token is ``self.token``)."""
        env = {k: v for k, v in self.env().items() if k != "CLOUDFLARE_API_TOKEN"}
        env["WRANGLER_AUTH_DOMAIN"] = f"{self.host}:{self.port}"
        env["WRANGLER_TOKEN_URL"] = self.origin + OAUTH_TOKEN_PATH
        return env

    # served workers
    def workers_dev_host(self, name: str) -> str:
        """`<name>.<subdomain>.workers.dev`: the `Host` that reaches `name` via `origin`."""
        return f"{name}.{self.state.subdomain}.workers.dev"

    def worker_name_for_host(self, host: str) -> str | None:
        """The worker a `Host` header names (`<name>.<subdomain>.workers.dev[:port]`), else None."""
        hostname = host.strip().lower().split(":", 1)[0]
        suffix = f".{self.state.subdomain.lower()}.workers.dev"
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            name = hostname[: -len(suffix)]
            return name if "." not in name else None
        return None

    def _serving(self) -> WorkerHost:
        if self.workers is None:
            raise ServeError("workers are not served: use Emulator(serve_workers=True) and start()")
        return self.workers

    def served_worker(self, name: str, *, timeout: float | None = None) -> ServedWorker:
        """The running copy of `name`'s current version, waiting for a pending (re)start.

        LookupError if `name` was never deployed; ServeError if its start failed (the message
        holds the log's last lines) or serving is off; TimeoutError if still starting."""
        return self._serving().wait(name, timeout)

    def worker_url(self, name: str, *, timeout: float | None = None) -> str:
        """`http://127.0.0.1:<port>` of the workerd serving `name`'s current version."""
        return self.served_worker(name, timeout=timeout).url

    def state_changed(self) -> None:
        """Called after each successful change request: (re)start what needs it."""
        if self.workers is not None:
            self.workers.sync()

    # request log
    def record_unrouted(self, method: str, path: str) -> None:
        """A call no route serves (code 7000): kept, and appended to ``$DOME_EMULATOR_UNROUTED_LOG``."""
        line = f"{method} {path}"
        with self._log_lock:
            self.unrouted.append(line)
        target = os.environ.get(UNROUTED_LOG_ENV)
        if target:
            with open(target, "a", encoding="utf-8") as log:
                log.write(line + "\n")

    def record_request(self, record: RequestRecord) -> None:
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
            self._worker_log.clear()

    def record_worker_request(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._worker_log.append(record)

    @property
    def worker_requests(self) -> list[RequestRecord]:
        """Requests proxied to served workers (path = `<host><path>`), in arrival order."""
        with self._log_lock:
            return list(self._worker_log)

    def __repr__(self) -> str:
        where = self.url if self._server else "stopped"
        return f"<Emulator {where} account={self.account_id}>"
