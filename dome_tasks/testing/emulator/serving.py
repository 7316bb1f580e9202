"""Serve deployed workers under workerd, so health checks can run against "remote" workers.

Opt-in (`Emulator(serve_workers=True)`). Whenever a worker's current deployment changes
(`wrangler deploy`, `versions deploy`, `rollback`, a secret change, `delete`), `WorkerHost`
(re)starts that worker's *current* version under `wrangler dev --local` (workerd) on a
127.0.0.1 port, or stops it when the worker is gone. The current version is the one with
100% of the traffic; during a split, the one with the highest percentage (ties: the first
listed). Only that version serves; a split is not reproduced.

How a version is run: its stored modules are written byte for byte to
`<root>/bundles/<worker>/<version id>/`, next to a generated `wrangler.json` (name,
`main` = the upload's main module, `no_bundle`, compatibility date and flags) whose bindings
map the uploaded metadata onto wrangler dev's local simulators:

| uploaded binding | served as |
|---|---|
| `plain_text`, `json`, `secret_text`; the worker's secrets | `vars` (secrets are plain vars locally) |
| `d1` | a local D1 database (empty: the emulator's own D1 data is not copied) |
| `kv_namespace`, `r2_bucket`, queue producers (`queue`) | local KV, R2, queue producers |
| `service` | a service binding: it reaches the target when that worker is served too (same dev registry) |
| anything else (durable objects, vectorize, AI, …) | omitted; listed in `ServedWorker.notes` |

Which upload types are served, and as what, comes from the binding kinds' one description
(`dome_tasks.manifest.bindings`: each kind's `upload` and `served`).

All served workers share one `LocalEnv` (`dome_tasks.local`): a state folder with their pid
records, logs (`<root>/state/logs/<worker>.log`), local data and dev registry. Each
`wrangler dev` runs in its own process group with `WRANGLER_SEND_METRICS=false`,
`CLOUDFLARE_CF_FETCH_ENABLED=false`, `NO_PROXY` covering loopback and a private TMPDIR
whose update-check cache says "checked just now", so it contacts no host; the emulator's
own `CLOUDFLARE_API_*` variables are not passed on. A worker counts as started once it answers
`GET /` with any status (its health may be red on purpose). Starts happen one at a time on a
background thread; `wait(name)` blocks until the current version serves. A start that failed
is not retried until the worker's deployment changes again; a served process that dies later
is not restarted (requests then get a 502).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dome_tasks.testing.emulator.state import EmulatorState, Version

__all__ = ["ServeError", "ServedWorker", "WorkerHost", "render_config"]

#: Variables of the emulator's own process that a served `wrangler dev` must not inherit.
_DROPPED_ENV = (
    "CLOUDFLARE_API_BASE_URL",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_KEY",
    "CLOUDFLARE_EMAIL",
    "CLOUDFLARE_ACCOUNT_ID",
    "CF_API_BASE_URL",
    "WRANGLER_OUTPUT_FILE_PATH",
    "WRANGLER_OUTPUT_FILE_DIRECTORY",
    "WRANGLER_LOG",
)

_MODULE_RULES = {
    "application/javascript+module": "ESModule",
    "text/javascript+module": "ESModule",
    "application/javascript": "CommonJS",
    "text/javascript": "CommonJS",
    "application/wasm": "CompiledWasm",
    "text/plain": "Text",
    "application/octet-stream": "Data",
}


class ServeError(RuntimeError):
    """A served worker could not be started (or serving is off)."""


@dataclass(frozen=True)
class ServedWorker:
    """One running `wrangler dev` serving a worker's current version."""

    name: str
    version_id: str
    version_number: int
    url: str  # http://127.0.0.1:<port>
    port: int
    pid: int  # also its process group id
    log: Path
    config: Path
    notes: tuple[str, ...] = field(default=())


def render_config(
    name: str,
    version: Version,
    *,
    secrets: Mapping[str, str] | None = None,
    d1_names: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The `wrangler.json` that runs `version` locally, and notes on what was left out."""
    main = version.main_module
    if not main:
        raise ServeError(
            f"{name}: version {version.id} has no main module (service-worker format?)"
        )
    notes: list[str] = []
    config: dict[str, Any] = {
        "name": name,
        "main": main,
        "no_bundle": True,
        "compatibility_date": version.compatibility_date or "2024-01-01",
        "compatibility_flags": version.compatibility_flags,
        "workers_dev": True,
    }
    if len(version.modules) > 1:
        config["find_additional_modules"] = True
        globs: dict[str, list[str]] = {}
        for module in version.modules.values():
            kind = _MODULE_RULES.get(module.content_type.split(";")[0].strip())
            if kind and module.name != main:
                globs.setdefault(kind, []).append(module.name)
        config["rules"] = [{"type": kind, "globs": names} for kind, names in globs.items()]
    from dome_tasks.manifest.bindings import BY_UPLOAD

    vars_: dict[str, Any] = {}
    for binding in version.bindings:
        kind, bname = binding.get("type"), binding.get("name")
        served = BY_UPLOAD.get(kind)
        if kind in ("plain_text", "secret_text"):
            vars_[bname] = binding.get("text", "")
        elif kind == "json":
            vars_[bname] = binding.get("json")
        elif kind == "inherit":
            pass  # a secret carried over: comes from `secrets` below
        elif served is not None:
            entry = served.served_entry(binding)
            if served.attr == "d1_databases":  # wrangler dev wants the name too
                database_id = entry.setdefault("database_id", bname)
                entry["database_name"] = (d1_names or {}).get(database_id, database_id)
            _add(config, served.table, entry, single=served.form == "single")
        else:
            notes.append(f"binding {bname} ({kind}) is not served locally; omitted")
    for secret, text in (secrets or {}).items():
        vars_.setdefault(secret, text)
    if vars_:
        config["vars"] = vars_
    return config, notes


def _add(config: dict[str, Any], table: tuple[str, ...], entry: dict[str, Any], *,
         single: bool) -> None:
    """Put one binding entry at its place in a wrangler config (``("queues", "producers")``)."""
    for part in table[:-1]:
        config = config.setdefault(part, {})
    if single:
        config[table[-1]] = entry
    else:
        config.setdefault(table[-1], []).append(entry)


class WorkerHost:
    """Keeps one `wrangler dev` per deployed worker running its current version.

    `sync()` compares each worker's current version with what runs and queues (re)starts;
    the emulator calls it after every successful change request. `wait(name)` blocks until
    the worker's current version serves (or its start failed). `close()` stops everything.
    """

    def __init__(
        self,
        state: EmulatorState,
        *,
        root: Path | None = None,
        wrangler: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.state = state
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="dome-serve-"))
        self.root = self.root.resolve()
        self.wrangler = Path(wrangler) if wrangler else Path(_find_wrangler())
        self.extra_env = dict(env or {})
        self.startup_timeout = startup_timeout
        self._cond = threading.Condition()
        self._desired: dict[str, str] = {}  # worker -> version id that should serve
        self._running: dict[str, ServedWorker] = {}
        self._failed: dict[str, tuple[str, str]] = {}  # worker -> (version id, message)
        self._closed = False
        self._thread: threading.Thread | None = None
        self._ports: dict[str, int] = {}

    # --- control ---------------------------------------------------------------------------

    def start(self) -> WorkerHost:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="cf-emulator-serve", daemon=True
            )
            self._thread.start()
            atexit.register(self.close)
        return self

    def sync(self) -> None:
        """Queue a (re)start for every worker whose current version is not the one running."""
        desired: dict[str, str] = {}
        with self.state.lock:
            for name, worker in self.state.workers.items():
                try:
                    desired[name] = worker.current_version().id
                except LookupError:
                    continue
        with self._cond:
            if desired != self._desired:
                self._desired = desired
                self._cond.notify_all()

    def wait(self, name: str, timeout: float | None = None) -> ServedWorker:
        """The served copy of `name`'s current version, once it runs.

        LookupError: no such worker, or never deployed. ServeError: its start failed.
        TimeoutError: still starting after `timeout` (default: the startup timeout + 5 s).
        """
        self.sync()
        limit = self.startup_timeout + 5 if timeout is None else timeout
        with self._cond:
            if name not in self._desired:
                raise LookupError(f"worker {name!r} is not deployed")
            done = self._cond.wait_for(lambda: self._settled(name) or self._closed, limit)
            if self._closed:
                raise ServeError("the emulator was stopped")
            if not done:
                raise TimeoutError(f"worker {name!r} did not start within {limit:g}s")
            version_id = self._desired.get(name)
            if version_id is None:
                raise LookupError(f"worker {name!r} is not deployed")
            failed = self._failed.get(name)
            if failed and failed[0] == version_id:
                raise ServeError(failed[1])
            return self._running[name]

    def current(self, name: str) -> ServedWorker | None:
        """What serves `name` right now (maybe an older version while a restart is pending)."""
        with self._cond:
            return self._running.get(name)

    def close(self) -> None:
        """Stop every served worker (and a start in progress) and remove owned folders."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        atexit.unregister(self.close)
        from dome_tasks.local import stop

        stop(self._local_env())  # also ends a start in progress: its process exits
        if self._thread is not None:
            self._thread.join(timeout=15)
        stop(self._local_env())
        with self._cond:
            self._running.clear()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- the background loop ------------------------------------------------------------------

    def _settled(self, name: str) -> bool:
        version_id = self._desired.get(name)
        if version_id is None:
            return name not in self._running
        running = self._running.get(name)
        if running is not None and running.version_id == version_id:
            return True
        failed = self._failed.get(name)
        return failed is not None and failed[0] == version_id

    def _next(self) -> tuple[str, str | None] | None:
        for name in sorted(set(self._desired) | set(self._running)):
            if not self._settled(name):
                return name, self._desired.get(name)
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or self._next() is not None)
                if self._closed:
                    return
                name, version_id = self._next()  # type: ignore[misc]
            served: ServedWorker | None = None
            error: str | None = None
            try:
                if version_id is None:
                    self._stop(name)
                else:
                    served = self._start(name, version_id)
            except Exception as exc:  # noqa: BLE001 (reported to whoever waits for it)
                error = str(exc) or type(exc).__name__
            with self._cond:
                if served is not None:
                    self._running[name] = served
                    self._failed.pop(name, None)
                else:
                    self._running.pop(name, None)
                    if version_id is not None:
                        self._failed[name] = (version_id, error or "start failed")
                self._cond.notify_all()

    # --- one worker ---------------------------------------------------------------------------

    def _local_env(self, port: int | None = None) -> Any:
        from dome_tasks.local import LocalEnv, PortRange
        from dome_tasks.local.procs import free_port

        base = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
        base.update(self.extra_env)
        # wrangler dev talks to its own workerd over loopback: never through a proxy.
        loopback = ",".join(filter(None, [base.get("NO_PROXY", ""), "127.0.0.1,localhost"]))
        base["NO_PROXY"] = base["no_proxy"] = loopback
        chosen = port or free_port("127.0.0.1")
        return LocalEnv(
            state_dir=self.root / "state",
            wrangler=self.wrangler,
            ports=PortRange(chosen, chosen),
            health_timeout=self.startup_timeout,
            base_env=tuple(base.items()),
        )

    def _stop(self, name: str) -> None:
        from dome_tasks.local import stop

        stop(self._local_env(), [name])
        self._ports.pop(name, None)

    def _start(self, name: str, version_id: str) -> ServedWorker:
        from dome_tasks.local import LocalService, PortInUse, start

        with self.state.lock:
            worker = self.state.worker(name)
            version = worker.version(version_id)
            secrets = dict(version.secrets)  # a version runs with its own secrets
            d1_names = {db.uuid: db.name for db in self.state.d1.values()}
        config, notes = render_config(name, version, secrets=secrets, d1_names=d1_names)
        folder = self.root / "bundles" / name / version_id
        config_path = self._write(folder, version, config)
        service = LocalService(name, name, config_path, health_path="/", ready_on_any_status=True)
        try:
            record = start(self._local_env(self._ports.get(name)), service)
        except PortInUse:  # the previous port was taken meanwhile: any free one will do
            record = start(self._local_env(), service)
        self._ports[name] = record.port
        return ServedWorker(
            name=name,
            version_id=version.id,
            version_number=version.number,
            url=record.url,
            port=record.port,
            pid=record.pid,
            log=Path(record.log),
            config=config_path,
            notes=tuple(notes),
        )

    @staticmethod
    def _write(folder: Path, version: Version, config: dict[str, Any]) -> Path:
        import json

        folder.mkdir(parents=True, exist_ok=True)
        for module in version.modules.values():
            target = (folder / module.name).resolve()
            if folder.resolve() not in target.parents:
                raise ServeError(f"module name {module.name!r} escapes the bundle folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(module.body)
        path = folder / "wrangler.json"
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return path


def _find_wrangler() -> str:
    """The pinned wrangler: in `node_modules/.bin` above the working directory, else above
    this package (a checkout of dome-tasks), else on PATH."""
    from dome_tasks.errors import ToolMissingError
    from dome_tasks.tools import find_wrangler

    for start in (Path.cwd(), Path(__file__).parent):
        try:
            return find_wrangler(start)
        except ToolMissingError:
            continue
    raise ServeError("serving workers needs wrangler: none in node_modules/.bin or on PATH")
