"""The local environment's values and errors: where workers live, what runs, what went wrong.

Layout of a state folder (``state_dir``, e.g. ``.dome/local``)::

    v3/                 local D1, KV, R2, queue data (``--persist-to``), shared by all services
    registry/           wrangler's dev registry (WRANGLER_REGISTRY_PATH): service bindings
    run/<service>.json  pid record: pid, process group, creation time, port, URL, config, log,
                        times; written before the process may start serving
    locks/              one deploy at a time (``deploy-env … local``, ``stop``)
    run/migrated/       what ``deploy-env … local`` last applied, so an unchanged folder is skipped
    logs/<service>.log  stdout+stderr of that service's ``wrangler dev``
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dome_tasks._atomic import write_atomic
from dome_tasks.errors import DomeError
from dome_tasks.local import procs
from dome_tasks.local.wrangler import wrangler_env

__all__ = [
    "LocalEnv",
    "LocalError",
    "LocalService",
    "MigrationResult",
    "Outcome",
    "PortInUse",
    "PortRange",
    "ProcessRecord",
    "ServiceStatus",
    "StackFailed",
    "StartupFailed",
]


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
            raise LocalError(
                f"bad port setting {text!r}", hint='use a port ("8787") or a range ("8787-8799")'
            ) from None
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

    def migrated_path(self, service: str) -> Path:
        return self.state_dir / "run" / "migrated" / f"{service}.json"


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
    created: float  # the process's creation time (psutil): tells a reused pid apart
    port: int
    inspector_port: int
    url: str
    health_path: str
    config: str
    log: str
    started_at: float  # time.time() when it was launched
    ready_at: float | None = None  # time.time() when its health path first answered
    health_any_status: bool = False  # health_path: null: any HTTP answer counts as healthy
    pgid: int | None = None  # its process group (its own session: the pid; None in old records)

    @property
    def group(self) -> int:
        return self.pgid or self.pid

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=2) + "\n", durable=False)

    @classmethod
    def load(cls, path: Path) -> ProcessRecord | None:
        try:
            data = json.loads(path.read_text())
            if "start_ticks" in data:  # written by dome-tasks before psutil (Linux only)
                data["created"] = _created_from_ticks(data.pop("start_ticks"))
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None

    def alive(self) -> bool:
        """True if the recorded process still runs: same pid, same creation time, and (when
        its command line can be read) a ``wrangler`` command. A record is never dropped for a
        process that still runs: the command line is briefly empty while ``env`` execs node."""
        return procs.is_running(self.pid, self.created, marker="wrangler")

    def orphans(self) -> list[int]:
        """The pids still running in its process group once the recorded process itself is gone
        (wrangler's launcher killed: its node child and workerd keep serving). POSIX never
        hands out a pid that is still a group's id, so they can only be this record's."""
        if procs.created_at(self.pid) is not None:
            return []
        return sorted(member.pid for member in procs.group_members(self.group))


def _created_from_ticks(ticks: int) -> float:
    """A Linux start time in clock ticks since boot, as psutil's creation time."""
    import psutil

    return psutil.boot_time() + int(ticks) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    #: running | orphaned (the recorded process is gone, processes of its group still run:
    #: ``pids``; ``stop`` stops them) | stopped | stale (a dead or reused pid; record removed)
    state: str
    worker: str | None = None
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    healthy: bool | None = None
    uptime: float | None = None  # seconds
    pids: tuple[int, ...] = ()  # orphaned: the processes of its group still running


@dataclass(frozen=True)
class MigrationResult:
    service: str
    database: str
    applied: tuple[str, ...] = field(default=())
    skipped: bool = False  # nothing changed since the last run: wrangler was not started

    def describe(self) -> str:
        if self.skipped:
            return f"{self.service}: {self.database}: migrations unchanged since the last apply"
        if not self.applied:
            return f"{self.service}: {self.database}: no migrations to apply"
        return f"{self.service}: {self.database}: applied {', '.join(self.applied)}"


@dataclass(frozen=True)
class Outcome:
    """How one service of a bring-up fared: its record when it started, else its error; with
    neither, it was not started because an earlier wave failed."""

    service: str
    seconds: float
    record: ProcessRecord | None = None
    migrations: tuple[MigrationResult, ...] = ()
    error: DomeError | None = None
    wave: int = 0  # index of its dependency wave
    waited: float = 0.0  # seconds it waited (a free slot, the earlier waves), not in ``seconds``

    def describe(self) -> str:
        """One block per service (never mixed with another service's lines)."""
        if self.error is not None:
            head = f"{self.service}: FAILED after {self.seconds:.1f}s"
        elif self.record is None:
            return f"{self.service}: not started (an earlier wave failed)"
        else:
            head = f"{self.service}: ready at {self.record.url} in {self.seconds:.1f}s"
            if self.waited >= 0.1:
                head += f" (after waiting {self.waited:.1f}s for its turn)"
        applied = [m.describe().split(": ", 1)[1] for m in self.migrations if m.applied]
        return head + "".join(f"\n  {line}" for line in applied)


class StackFailed(LocalError):
    """Services of one wave failed; the waves after it were not started."""

    def __init__(self, failures: list[Outcome], not_started: list[str]):
        parts = [str(o.error) if o.error.where else f"{o.service}: {o.error}" for o in failures]
        message = "\n".join(parts)
        if not_started:
            message += f"\nnot started (an earlier wave failed): {', '.join(not_started)}"
        super().__init__(message)  # each part carries its own where and hint
        self.failures = failures
        self.not_started = not_started
