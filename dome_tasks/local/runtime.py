"""One service under ``wrangler dev`` (workerd): (re)start it, wait for health, stop it, report.

Every function takes a :class:`LocalEnv` (where and with what) and :class:`LocalService`
values (what), returns plain data and raises :class:`LocalError` subclasses; none prints.
Several services are started together by :mod:`dome_tasks.local.stack`.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from dome_tasks.local import procs
from dome_tasks.local.logs import log_tail
from dome_tasks.local.migrations import Cancelled, migrate
from dome_tasks.local.model import (
    LocalEnv,
    LocalError,
    LocalService,
    MigrationResult,
    PortInUse,
    ProcessRecord,
    ServiceStatus,
    StartupFailed,
)
from dome_tasks.local.wrangler import dev_argv, registry_dir

__all__ = [
    "PortBook",
    "Starting",
    "abort",
    "bring_up",
    "deploy",
    "format_status",
    "launch",
    "start",
    "status",
    "stop",
    "wait_booted",
    "wait_ready",
]

#: Startup failures that are races between ``wrangler dev`` processes sharing one state folder
#: (workerd opening the same SQLite files at once); starting that process again succeeds.
TRANSIENT_STARTUP_ERRORS = ("SQLITE_BUSY", "database is locked")
STARTUP_ATTEMPTS = 3
#: How often a starting worker's health path is asked: soon at first (a quick start is seen
#: quickly), then less often (a worker that answers errors does not flood its log). When
#: wrangler logs "Ready on …", it is asked again at once.
HEALTH_POLL_FIRST, HEALTH_POLL_MAX = 0.05, 0.5
#: How often the process and its log are looked at between health requests.
WATCH_TICK = 0.02


class PortBook:
    """Ports being handed out by concurrent starts, behind one lock, so that two services of
    a wave never choose the same port. ``reserved`` maps a port to the service keeping it
    (a running copy's port while that copy stops)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reserved: dict[int, str] = {}

    def plan(self, env: LocalEnv, services: Iterable[LocalService]) -> None:
        """Reserve a port for each of ``services``, in the given (dependency) order: its
        running copy's port, else the first free one. Services started side by side then get
        the same URLs on every cold start, whichever boots first."""
        with self.lock:
            live = _live_records(env)
            taken = {record.port for record in live.values()} | set(self.reserved)
            for service in services:
                previous = live.get(service.name)
                if previous is not None:
                    self.reserved[previous.port] = service.name
                    continue
                for port in env.ports:
                    if port not in taken and procs.port_is_free(env.host, port):
                        self.reserved[port] = service.name
                        taken.add(port)
                        break


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
    """Remove ``record`` (only if it is still the one on disk: never another run's)."""
    current = ProcessRecord.load(env.record_path(record.service))
    if current is not None and (current.pid, current.created) != (record.pid, record.created):
        return
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


def _stop_record(env: LocalEnv, record: ProcessRecord) -> None:
    """Stop the record's process tree if it is ours, then forget the record.

    A group is ours if its leader is the recorded process, or if the leader is gone while
    members remain (:meth:`ProcessRecord.orphans`). A pid now used by another program is never
    signalled.
    """
    if record.alive() or record.orphans():
        procs.stop_group(record.group, env.stop_timeout)
    _forget(env, record)


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
        if port in taken:
            owner = f"the local service {taken[port]!r}"
        else:
            known = procs.port_owner(env.host, port)
            owner = f"another process ({known})" if known else "another process"
        raise PortInUse(
            f"port {port} on {env.host} is already in use by {owner}",
            port=port,
            where=service,
            hint="stop what uses it, or give the local environment a port range in dome.yaml "
                 "(environments.local.ports: \"8787-8799\")",
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


class Starting:
    """A ``wrangler dev`` launched here and not yet known to be healthy (a relaunch after a
    startup race replaces ``process`` and ``record``)."""

    def __init__(self, service: LocalService, process: subprocess.Popen, record: ProcessRecord):
        self.service, self.process, self.record = service, process, record


def bring_up(
    env: LocalEnv,
    service: LocalService,
    *,
    migrations: bool = True,
    ports: PortBook | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[MigrationResult], ProcessRecord]:
    """Apply the service's D1 migrations (skipped when unchanged), then (re)start it.

    Migrations run while a previous copy still serves, so a failing one leaves it running.
    That copy is then stopped and its port reused when possible, so a redeploy never leaves
    two. On a crash, a timeout, ``cancel`` or Ctrl-C, the new process tree is stopped, its
    record removed, and :class:`StartupFailed` carries the log's last lines.
    """
    applied = migrate(env, service, skip_unchanged=True, cancel=cancel) if migrations else []
    ports = ports or PortBook()
    starting = launch(env, service, ports)
    try:
        return applied, wait_ready(env, starting, ports, cancel)
    except BaseException:
        abort(env, starting)
        raise


def start(env: LocalEnv, service: LocalService) -> ProcessRecord:
    """Run ``service`` under ``wrangler dev`` in the background until its health path answers
    (a running copy is replaced); see :func:`bring_up`."""
    return bring_up(env, service, migrations=False)[1]


def deploy(env: LocalEnv, service: LocalService) -> tuple[list[MigrationResult], ProcessRecord]:
    """``deploy-env SERVICE local``: apply its D1 migrations, then (re)start it."""
    return bring_up(env, service)


def launch(
    env: LocalEnv, service: LocalService, ports: PortBook, port: int | None = None
) -> Starting:
    """Stop a running copy, choose a port, spawn ``wrangler dev`` and record it (no waiting).

    ``port`` pins the port (a relaunch after a startup race)."""
    with ports.lock:
        previous = _live_records(env).get(service.name)
        if previous is not None:
            ports.reserved[previous.port] = service.name
    if previous is not None:
        _stop_record(env, previous)  # outside the lock: the rest of the wave goes on meanwhile
    with ports.lock:
        try:
            live = _live_records(env)
            live.pop(service.name, None)
            taken = {record.port: name for name, record in live.items()}
            taken.update((p, name) for p, name in ports.reserved.items() if name != service.name)
            if port is None:
                planned = [p for p, name in ports.reserved.items() if name == service.name]
                preferred = previous.port if previous else (planned[0] if planned else None)
                port = _choose_port(env, service.name, preferred, taken)
            inspectors = {record.inspector_port for record in live.values()}
            inspector_port = procs.free_port(env.host)
            while inspector_port in inspectors or inspector_port == port:
                inspector_port = procs.free_port(env.host)
            return _spawn(env, service, port, inspector_port)
        finally:
            for held in [p for p, name in ports.reserved.items() if name == service.name]:
                del ports.reserved[held]


#: ``argv`` behind a gate: ``sh`` reads a line from its stdin (a pipe from the launcher) first,
#: then execs it with stdin closed (same pid, same process group). When the launcher dies before
#: opening the gate, ``sh`` reads end of file and exits without ever starting wrangler.
_GATE = ("/bin/sh", "-c", 'read -r go || exit 0; exec "$@" </dev/null', "wrangler-gate")


def _spawn(env: LocalEnv, service: LocalService, port: int, inspector_port: int) -> Starting:
    """Start ``wrangler dev``; its record (pid, group, creation time) is on disk before the
    process may run wrangler at all, so no worker ever serves unrecorded."""
    log_path = env.log_path(service.name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = dev_argv(
        env.wrangler,
        service.config,
        env.state_dir,
        host=env.host,
        port=port,
        inspector_port=inspector_port,
    )
    gate, opener = os.pipe()
    try:
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                (*_GATE, *argv),
                cwd=service.config.parent,
                env=env.env(),
                stdin=gate,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except BaseException:
        os.close(opener)
        raise
    finally:
        os.close(gate)
    record = ProcessRecord(
        service=service.name,
        worker=service.worker,
        pid=process.pid,
        pgid=process.pid,  # its own session
        created=procs.created_at(process.pid) or 0.0,
        port=port,
        inspector_port=inspector_port,
        url=f"http://{env.host}:{port}",
        health_path=service.health_path,
        health_any_status=service.ready_on_any_status,
        config=str(service.config),
        log=str(log_path),
        started_at=time.time(),
    )
    try:
        record.save(env.record_path(service.name))
        os.write(opener, b"go\n")
    except OSError as error:
        os.close(opener)  # the gate reads end of file: wrangler never starts
        process.wait()
        raise LocalError(f"cannot record the process of {service.name}: {error}",
                         where=str(env.record_path(service.name)),
                         hint=f"check that {env.state_dir} can be written") from None
    except BaseException:
        os.close(opener)
        process.wait()
        raise
    os.close(opener)
    return Starting(service, process, record)


def abort(env: LocalEnv, starting: Starting) -> None:
    """Stop a launched ``wrangler dev`` and forget it."""
    procs.stop_group(starting.process.pid, env.stop_timeout)
    starting.process.wait()
    _forget(env, starting.record)


def wait_ready(
    env: LocalEnv, starting: Starting, ports: PortBook, cancel: threading.Event | None = None
) -> ProcessRecord:
    """Wait until healthy and record when; relaunch (on the same port) after a transient
    startup race. Raises :class:`StartupFailed` (the caller aborts ``starting``)."""
    for attempt in range(1, STARTUP_ATTEMPTS + 1):
        try:
            ready = _wait_healthy(env, starting.service, starting.process, starting.record, cancel)
        except StartupFailed as error:
            transient = any(marker in error.log_tail for marker in TRANSIENT_STARTUP_ERRORS)
            if attempt == STARTUP_ATTEMPTS or not transient or starting.process.poll() is None:
                raise
            abort(env, starting)
            again = launch(env, starting.service, ports, port=starting.record.port)
            starting.process, starting.record = again.process, again.record
            continue
        starting.record = replace(starting.record, ready_at=ready)
        starting.record.save(env.record_path(starting.service.name))
        return starting.record
    raise AssertionError("unreachable")


class _ReadyLine:
    """Watches a wrangler log for the line it prints when it starts serving ("Ready on …"),
    reading only what was appended since the last look."""

    MARK = b"Ready on "

    def __init__(self, path: Path):
        self.path, self.offset, self.carry = path, 0, b""

    def seen(self) -> bool:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                chunk = log.read()
        except OSError:
            return False
        self.offset += len(chunk)
        text, self.carry = self.carry + chunk, (self.carry + chunk)[-len(self.MARK) :]
        return self.MARK in text


def wait_booted(env: LocalEnv, starting: Starting, cancel: threading.Event | None = None) -> None:
    """Wait until the launched ``wrangler dev`` is past its CPU-bound start (Node, esbuild,
    workerd): it logged "Ready on …", its port accepts connections, or it exited (then
    :func:`wait_ready` reports why). Sends no request. Raises :class:`StartupFailed` when
    none of that happens within the health timeout."""
    ready_line = _ReadyLine(Path(starting.record.log))
    deadline = time.monotonic() + env.health_timeout
    while not (
        starting.process.poll() is not None
        or ready_line.seen()
        or procs.accepts_connections(env.host, starting.record.port)
    ):
        if cancel is not None and cancel.is_set():
            raise Cancelled(starting.service.name)
        if time.monotonic() >= deadline:
            record = starting.record
            raise StartupFailed(
                f"{record.url + starting.service.health_path} did not answer 200 within {env.health_timeout:g}s",
                log_tail=log_tail(Path(record.log)),
                where=starting.service.name,
                hint=f"full log: {record.log}",
            )
        time.sleep(WATCH_TICK)


def _wait_healthy(
    env: LocalEnv,
    service: LocalService,
    process: subprocess.Popen,
    record: ProcessRecord,
    cancel: threading.Event | None,
) -> float:
    """Poll the health path until it answers; returns the time (``time.time()``) it did.

    Requests back off (``HEALTH_POLL_FIRST`` … ``HEALTH_POLL_MAX``), but one is sent at once
    when wrangler logs "Ready on …" (it then serves), so a start is seen without delay.
    """
    health_url = record.url + service.health_path
    log = Path(record.log)
    deadline = time.monotonic() + env.health_timeout
    pause = HEALTH_POLL_FIRST
    next_ask = time.monotonic()
    ready_line = _ReadyLine(log)
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled(service.name)
        code = process.poll()
        if code is not None:
            raise StartupFailed(
                f"wrangler dev exited with code {code} before {health_url} answered",
                log_tail=log_tail(log),
                where=service.name,
                hint=f"full log: {record.log}",
            )
        now = time.monotonic()
        if ready_line.seen():
            pause, next_ask = HEALTH_POLL_FIRST, now
        if now >= next_ask:
            if _healthy(health_url, any_status=service.ready_on_any_status):
                return time.time()
            next_ask = time.monotonic() + pause
            pause = min(pause * 1.5, HEALTH_POLL_MAX)
        if time.monotonic() >= deadline:
            raise StartupFailed(
                f"{health_url} did not answer 200 within {env.health_timeout:g}s",
                log_tail=log_tail(log),
                where=service.name,
                hint=f"full log: {record.log}",
            )
        time.sleep(WATCH_TICK)


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
        was_alive = record.alive() or bool(record.orphans())
        _stop_record(env, record)
        if was_alive:
            stopped.append(record.service)
    return stopped


def _answering(name: str, state: str, record: ProcessRecord, now: float,
               pids: tuple[int, ...] = ()) -> ServiceStatus:
    """The status of a service whose processes still run: its health asked once."""
    healthy = _healthy(record.url + record.health_path, any_status=record.health_any_status)
    return ServiceStatus(name, state, record.worker, record.pid, record.port, record.url,
                         healthy, now - record.started_at, pids=pids)


def status(env: LocalEnv, services: Iterable[str] | None = None) -> list[ServiceStatus]:
    """Each service's pid, port, URL, health and uptime. A recorded process that is gone while
    processes of its group still run is ``orphaned`` (their pids; ``stop`` stops them). Records
    whose process is gone (or whose pid now belongs to another program) and left nothing
    running are removed and reported as ``stale``."""
    records = _records(env)
    names = list(services) if services is not None else sorted(records)
    result = []
    now = time.time()
    for name in names:
        record = records.get(name)
        if record is None:
            result.append(ServiceStatus(name, "stopped"))
        elif not record.alive() and (orphans := record.orphans()):
            result.append(_answering(name, "orphaned", record, now, pids=tuple(orphans)))
        elif not record.alive():
            _forget(env, record)
            result.append(
                ServiceStatus(name, "stale", record.worker, record.pid, record.port, record.url)
            )
        else:
            result.append(_answering(name, "running", record, now))
    return result


def format_status(statuses: Iterable[ServiceStatus]) -> str:
    """A plain table: service, state, URL, health, pid, uptime."""
    rows = [("service", "state", "url", "health", "pid", "uptime")]
    for s in statuses:
        health = "-" if s.healthy is None else ("ok" if s.healthy else "FAIL")
        uptime = "-" if s.uptime is None else f"{int(s.uptime)}s"
        pid = ",".join(map(str, s.pids)) if s.pids else str(s.pid or "-")
        rows.append((s.service, s.state, s.url or "-", health, pid, uptime))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )
