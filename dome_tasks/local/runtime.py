"""Start, stop, inspect and migrate workers running under ``wrangler dev`` (workerd).

Layout of a state folder (``state_dir``, e.g. ``.dome/local``)::

    v3/                 local D1, KV, R2, queue data (``--persist-to``), shared by all services
    registry/           wrangler's dev registry (WRANGLER_REGISTRY_PATH): service bindings
    run/<service>.json  pid record: pid, process start ticks, port, URL, config, log, start time
    logs/<service>.log  stdout+stderr of that service's ``wrangler dev``

Every function takes a :class:`LocalEnv` (where and with what) and :class:`LocalService`
values (what), returns plain data and raises :class:`LocalError` subclasses; none prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dome_tasks.errors import CommandFailed, DomeError
from dome_tasks.local import procs
from dome_tasks.local.wrangler import (
    d1_targets,
    dev_argv,
    migrations_apply_argv,
    parse_applied_migrations,
    registry_dir,
    strip_ansi,
    wrangler_env,
)

__all__ = [
    "PortRange",
    "LocalEnv",
    "LocalService",
    "ProcessRecord",
    "ServiceStatus",
    "MigrationResult",
    "LocalError",
    "PortInUse",
    "StartupFailed",
    "migrate",
    "migrate_all",
    "start",
    "deploy",
    "start_stack",
    "stop",
    "status",
    "format_status",
]

LOG_TAIL_LINES = 40


class LocalError(DomeError):
    """The local environment could not do what was asked."""

    exit_code = 1


class PortInUse(LocalError):
    def __init__(self, message: str, *, port: int, **kwargs: str | None):
        super().__init__(message, **kwargs)
        self.port = port


class StartupFailed(LocalError):
    """A worker exited or never answered its health path; ``log_tail`` says why."""

    def __init__(self, message: str, *, log_tail: str, **kwargs: str | None):
        super().__init__(f"{message}\n--- last lines of the log ---\n{log_tail}", **kwargs)
        self.log_tail = log_tail


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    @classmethod
    def parse(cls, spec: str | int) -> PortRange:
        """``8787`` or ``"8787"`` (one port) or ``"8787-8799"`` (take the next free one)."""
        text = str(spec).strip()
        first, _, last = text.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise LocalError(f"bad port setting {text!r}", hint='use a port ("8787") or a range ("8787-8799")') from None
        if not (0 < low <= high < 65536):
            raise LocalError(f"bad port range {text!r}", hint="ports go from 1 to 65535, low-high")
        return cls(low, high)

    @property
    def single(self) -> bool:
        return self.first == self.last

    def __iter__(self):
        return iter(range(self.first, self.last + 1))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __str__(self) -> str:
        return str(self.first) if self.single else f"{self.first}-{self.last}"


@dataclass(frozen=True)
class LocalEnv:
    """Where local workers live and how they are run.

    ``state_dir`` should be absolute (it is passed to wrangler, whose working directory is
    each config's folder).
    """

    state_dir: Path
    wrangler: Path
    ports: PortRange = PortRange(8787, 8799)
    host: str = "127.0.0.1"
    health_timeout: float = 60.0
    stop_timeout: float = 10.0
    base_env: tuple[tuple[str, str], ...] | None = None  # None: os.environ at call time

    def env(self) -> dict[str, str]:
        base = dict(self.base_env) if self.base_env is not None else dict(os.environ)
        return wrangler_env(self.state_dir, base)

    def record_path(self, service: str) -> Path:
        return self.state_dir / "run" / f"{service}.json"

    def log_path(self, service: str) -> Path:
        return self.state_dir / "logs" / f"{service}.log"


@dataclass(frozen=True)
class LocalService:
    """One service's rendered local config: ``name`` as in the manifest, ``worker`` as deployed."""

    name: str
    worker: str
    config: Path
    health_path: str = "/health"
    #: Started once the health path answers at all (any HTTP status), not only with 200:
    #: for code whose health may be red on purpose (the emulator serving deployed versions).
    ready_on_any_status: bool = False


@dataclass(frozen=True)
class ProcessRecord:
    """What ``run/<service>.json`` holds about a started ``wrangler dev``."""

    service: str
    worker: str
    pid: int  # also the process group id (own session)
    start_ticks: int  # /proc/<pid>/stat field 22: tells a reused pid apart
    port: int
    inspector_port: int
    url: str
    health_path: str
    config: str
    log: str
    started_at: float  # time.time()

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        """True if the recorded process still runs: same pid and same start time.

        ``(pid, start ticks)`` is the identity; the command line is checked only when it can
        be read: it is briefly empty while the process execs (``env`` → ``node``), and a
        record must never be dropped for a process that is still running.
        """
        info = procs.proc_info(self.pid)
        if info is None or info.zombie or info.start_ticks != self.start_ticks:
            return False
        if not info.cmdline:
            return True
        return any("wrangler" in part for part in info.cmdline)


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str  # running | stopped | stale (a dead or reused pid; its record was removed)
    worker: str | None = None
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    healthy: bool | None = None
    uptime: float | None = None  # seconds


@dataclass(frozen=True)
class MigrationResult:
    service: str
    database: str
    applied: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        if not self.applied:
            return f"{self.service}: {self.database}: no migrations to apply"
        return f"{self.service}: {self.database}: applied {', '.join(self.applied)}"


# --- migrations -------------------------------------------------------------------------------


def migrate(env: LocalEnv, service: LocalService) -> list[MigrationResult]:
    """Apply the service's local D1 migrations to the state folder its worker uses.

    Safe while the worker runs, and idempotent: a second run reports no migrations applied.
    """
    results = []
    for target in d1_targets(service.config):
        argv = migrations_apply_argv(env.wrangler, service.config, target.database_name, env.state_dir)
        done = subprocess.run(
            argv,
            cwd=service.config.parent,
            env=env.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if done.returncode != 0:
            raise CommandFailed(
                f"migrating {target.database_name} failed (exit {done.returncode}):\n{_tail(strip_ansi(done.stdout))}",
                returncode=done.returncode,
                where=service.name,
                hint=f"fix the migration in {target.migrations_dir}",
            )
        results.append(MigrationResult(service.name, target.database_name, parse_applied_migrations(done.stdout)))
    return results


def migrate_all(env: LocalEnv, services: Iterable[LocalService]) -> list[MigrationResult]:
    """``db-migrate-local``: every service's local D1 migrations, in the given order."""
    return [result for service in services for result in migrate(env, service)]


# --- records ----------------------------------------------------------------------------------


def _records(env: LocalEnv) -> dict[str, ProcessRecord]:
    run = env.state_dir / "run"
    found = {}
    for path in sorted(run.glob("*.json")) if run.is_dir() else []:
        record = ProcessRecord.load(path)
        if record is not None:
            found[record.service] = record
        else:
            path.unlink(missing_ok=True)  # unreadable: cannot point at any process
    return found


def _forget(env: LocalEnv, record: ProcessRecord) -> None:
    env.record_path(record.service).unlink(missing_ok=True)
    # A SIGKILLed wrangler cannot unregister itself; others would keep routing to it.
    (registry_dir(env.state_dir) / record.worker).unlink(missing_ok=True)


def _live_records(env: LocalEnv) -> dict[str, ProcessRecord]:
    """Records of processes that still run; stale ones are removed on the way."""
    live = {}
    for name, record in _records(env).items():
        if record.alive():
            live[name] = record
        else:
            _stop_record(env, record)
    return live


# --- start ------------------------------------------------------------------------------------


def _choose_port(env: LocalEnv, service: str, preferred: int | None, taken: dict[int, str]) -> int:
    candidates = list(env.ports)
    if preferred in env.ports:
        candidates.remove(preferred)
        candidates.insert(0, preferred)
    for port in candidates:
        if port not in taken and procs.port_is_free(env.host, port):
            return port
    if env.ports.single:
        port = env.ports.first
        owner = f"the local service {taken[port]!r}" if port in taken else "another process"
        raise PortInUse(
            f"port {port} on {env.host} is already in use by {owner}",
            port=port,
            where=service,
            hint="stop what uses it, or give the local environment a port range such as 8787-8799",
        )
    raise PortInUse(
        f"no free port in {env.ports} on {env.host} (all in use)",
        port=env.ports.last,
        where=service,
        hint="stop some local services or widen the local port range",
    )


def _healthy(url: str, timeout: float = 2.0, *, any_status: bool = False) -> bool:
    """True if ``url`` answers 200 (any HTTP status with ``any_status``)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return any_status or response.status == 200
    except urllib.error.HTTPError:
        return any_status
    except (urllib.error.URLError, OSError, ValueError):
        return False


_GO_DUMP = re.compile(r"^(goroutine \d+ \[.*\]:|\t.*|created by .*|[\w.*/()\[\]-]+\(.*\)( \+0x[0-9a-f]+)?)$")


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank lines, without Go goroutine dumps (esbuild's service prints one
    when wrangler exits under it, and it would bury wrangler's own error)."""
    kept = [line for line in text.splitlines() if line.strip() and not _GO_DUMP.match(line)]
    return "\n".join(kept[-lines:])


def _log_tail(path: Path) -> str:
    try:
        return _tail(strip_ansi(path.read_text(errors="replace")))
    except OSError:
        return "(no log)"


def _stop_record(env: LocalEnv, record: ProcessRecord) -> None:
    """Kill the record's process group if it is ours, then forget the record.

    A group is ours if its leader is the recorded process, or if the leader is gone while
    members remain (wrangler's outer node killed, its inner node and workerd orphaned): Linux
    does not hand out a pid that is still some group's id, so those members can only be the
    orphans of our group. A pid now used by another program is never signalled.
    """
    if record.alive() or (procs.proc_info(record.pid) is None and procs.group_members(record.pid)):
        procs.kill_group(record.pid, env.stop_timeout)
    _forget(env, record)


def start(env: LocalEnv, service: LocalService) -> ProcessRecord:
    """Run ``service`` under ``wrangler dev`` in the background until its health path answers.

    A copy that already runs is stopped first and its port reused when possible, so a
    redeploy never leaves two. On a crash, a timeout or Ctrl-C, the process group is killed,
    the record removed, and :class:`StartupFailed` carries the log's last lines.
    """
    launched = [_launch(env, service)]
    try:
        launched[0] = _wait_healthy_retrying(env, service, *launched[0])
    except BaseException:
        _abort(env, *launched[0])
        raise
    return launched[0][1]


def _launch(
    env: LocalEnv, service: LocalService, reserved: dict[int, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen, ProcessRecord]:
    """Stop a running copy, choose a port, spawn ``wrangler dev`` and record it (no waiting).

    ``reserved`` holds ports already handed out by the caller (not yet listening); ``port``
    pins the port (a relaunch after a startup race)."""
    live = _live_records(env)
    previous = live.pop(service.name, None)
    if previous is not None:
        _stop_record(env, previous)
    taken = {record.port: name for name, record in live.items()}
    taken.update(reserved or {})
    if port is None:
        port = _choose_port(env, service.name, previous.port if previous else None, taken)
    inspector_port = procs.free_port(env.host)
    log_path = env.log_path(service.name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = dev_argv(env.wrangler, service.config, env.state_dir, host=env.host, port=port, inspector_port=inspector_port)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=service.config.parent,
            env=env.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    info = procs.proc_info(process.pid)
    record = ProcessRecord(
        service=service.name,
        worker=service.worker,
        pid=process.pid,
        start_ticks=info.start_ticks if info else 0,
        port=port,
        inspector_port=inspector_port,
        url=f"http://{env.host}:{port}",
        health_path=service.health_path,
        config=str(service.config),
        log=str(log_path),
        started_at=time.time(),
    )
    record.save(env.record_path(service.name))
    return process, record


def _abort(env: LocalEnv, process: subprocess.Popen, record: ProcessRecord) -> None:
    procs.kill_group(process.pid, env.stop_timeout)
    process.wait()
    _forget(env, record)


#: Startup failures that are races between ``wrangler dev`` processes sharing one state folder
#: (workerd opening the same SQLite files at once); starting that process again succeeds.
TRANSIENT_STARTUP_ERRORS = ("SQLITE_BUSY", "database is locked")
STARTUP_ATTEMPTS = 3
#: How often a starting worker's health path is asked: soon at first (a quick start is seen
#: quickly), then less often (a worker that answers errors does not flood its log).
HEALTH_POLL_FIRST, HEALTH_POLL_MAX = 0.05, 0.5


def _wait_healthy_retrying(
    env: LocalEnv, service: LocalService, process: subprocess.Popen, record: ProcessRecord
) -> tuple[subprocess.Popen, ProcessRecord]:
    """Wait until healthy; relaunch (on the same port) after a transient startup race."""
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        try:
            _wait_healthy(env, service, process, record)
            return process, record
        except StartupFailed as error:
            transient = any(marker in error.log_tail for marker in TRANSIENT_STARTUP_ERRORS)
            if attempt == STARTUP_ATTEMPTS or not transient or process.poll() is None:
                raise
            _abort(env, process, record)
            process, record = _launch(env, service, reserved={}, port=record.port)
    raise AssertionError("unreachable")


def _wait_healthy(env: LocalEnv, service: LocalService, process: subprocess.Popen, record: ProcessRecord) -> None:
    health_url = record.url + service.health_path
    deadline = time.monotonic() + env.health_timeout
    pause = HEALTH_POLL_FIRST
    while True:
        code = process.poll()
        if code is not None:
            raise StartupFailed(
                f"wrangler dev exited with code {code} before {health_url} answered",
                log_tail=_log_tail(Path(record.log)),
                where=service.name,
                hint=f"full log: {record.log}",
            )
        if _healthy(health_url, any_status=service.ready_on_any_status):
            return
        if time.monotonic() >= deadline:
            raise StartupFailed(
                f"{health_url} did not answer 200 within {env.health_timeout:g}s",
                log_tail=_log_tail(Path(record.log)),
                where=service.name,
                hint=f"full log: {record.log}",
            )
        time.sleep(pause)
        pause = min(pause * 1.5, HEALTH_POLL_MAX)


def deploy(env: LocalEnv, service: LocalService) -> tuple[list[MigrationResult], ProcessRecord]:
    """``deploy-env SERVICE local``: apply its D1 migrations, then (re)start it."""
    return migrate(env, service), start(env, service)


def start_stack(
    env: LocalEnv, services: Sequence[LocalService], *, migrate_first: bool = True, parallel: bool = True
) -> list[ProcessRecord]:
    """Deploy ``services`` in the given (dependency) order and return their records.

    Migrations run first, service by service. With ``parallel`` (the default) every
    ``wrangler dev`` is launched, in order, before waiting for any health path: service
    bindings resolve through the dev registry at request time, so a caller may start before
    its callee, and the stack comes up in about the time of its slowest service. On any
    failure or Ctrl-C, every process started by this call is stopped before the error
    propagates.
    """
    if migrate_first:
        migrate_all(env, services)
    if not parallel:
        started: list[ProcessRecord] = []
        try:
            for service in services:
                started.append(start(env, service))
        except BaseException:
            stop(env, [record.service for record in reversed(started)])
            raise
        return started
    launched: list[tuple[LocalService, subprocess.Popen, ProcessRecord]] = []
    try:
        reserved: dict[int, str] = {}
        for service in services:
            launched.append((service, *_launch(env, service, reserved)))
            reserved[launched[-1][2].port] = service.name
        for index, (service, process, record) in enumerate(launched):
            launched[index] = (service, *_wait_healthy_retrying(env, service, process, record))
    except BaseException:
        for _, process, record in reversed(launched):
            _abort(env, process, record)
        raise
    return [record for _, _, record in launched]


# --- stop and status --------------------------------------------------------------------------


def stop(env: LocalEnv, services: Iterable[str] | None = None) -> list[str]:
    """Stop recorded services (all when ``services`` is None), newest first; returns their
    names. Stale records are cleaned; a service with no record is skipped."""
    records = _records(env)
    if services is None:
        chosen = sorted(records.values(), key=lambda r: r.started_at, reverse=True)
    else:
        chosen = [records[name] for name in services if name in records]
    stopped = []
    for record in chosen:
        was_alive = record.alive()
        _stop_record(env, record)
        if was_alive:
            stopped.append(record.service)
    return stopped


def status(env: LocalEnv, services: Iterable[str] | None = None) -> list[ServiceStatus]:
    """Each service's pid, port, URL, health and uptime. Records whose process is gone (or
    whose pid now belongs to another program) are removed and reported as ``stale``."""
    records = _records(env)
    names = list(services) if services is not None else sorted(records)
    result = []
    now = time.time()
    for name in names:
        record = records.get(name)
        if record is None:
            result.append(ServiceStatus(name, "stopped"))
        elif not record.alive():
            _stop_record(env, record)
            result.append(ServiceStatus(name, "stale", record.worker, record.pid, record.port, record.url))
        else:
            result.append(
                ServiceStatus(
                    name,
                    "running",
                    record.worker,
                    record.pid,
                    record.port,
                    record.url,
                    _healthy(record.url + record.health_path),
                    now - record.started_at,
                )
            )
    return result


def format_status(statuses: Iterable[ServiceStatus]) -> str:
    """A plain table: service, state, URL, health, pid, uptime."""
    rows = [("service", "state", "url", "health", "pid", "uptime")]
    for s in statuses:
        health = "-" if s.healthy is None else ("ok" if s.healthy else "FAIL")
        uptime = "-" if s.uptime is None else f"{int(s.uptime)}s"
        rows.append((s.service, s.state, s.url or "-", health, str(s.pid or "-"), uptime))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)
