"""One deploy or migration at a time on this machine: advisory locks shared by every process.

A scope is one worker in one environment of one account for deploys, rollbacks and canary
steps (:func:`machine_scope`), and one environment for D1 migrations. The folder is the
machine's (:func:`machine_lock_dir`), not the checkout's: two checkouts of one repository
deploying the same worker wait for each other. Each scope has two files:

* ``<scope>.lock``: the file ``fcntl.flock`` locks. The kernel releases the lock when its holder
  exits, however it exits (``kill -9`` included), so a lock can never outlive its process. The
  file itself is never deleted: deleting a flock file lets two processes lock two inodes.
* ``<scope>.json``: who holds it (pid, command line, since when, host), written atomically
  after the lock is taken and removed on release. A holder that died leaves it behind: the next
  taker sees a free lock with a stale info file and says that it takes over.

A second process waits, printing once who it is waiting for (again if the holder changes); with
``wait=False`` it refuses at once with :class:`LockBusy` naming the holder. The same process can
take a scope it already holds (re-entrant per :class:`Locks` object): the automatic rollback
inside a deploy does not deadlock on the deploy's own lock.

Across machines the account lock (:mod:`dome_tasks.lifecycle.account_lock`, a row in the
account's D1) plays this part; this one stays, so that two runs of one machine never ask D1 at
once and a machine without API access is still serialized.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from dome_tasks._atomic import write_atomic
from dome_tasks.errors import DomeError
from dome_tasks.process import interruptible

__all__ = [
    "Holder",
    "LockBusy",
    "LockError",
    "Locks",
    "command_line",
    "deploy_scope",
    "machine_lock_dir",
    "machine_scope",
    "migration_scope",
    "process_started",
]


class LockError(DomeError):
    """The lock cannot be taken (its folder cannot be written, …)."""

    exit_code = 1


class LockBusy(LockError):
    """Another process holds the lock and waiting was not allowed (or timed out)."""


def deploy_scope(environment: str, service: str) -> str:
    """The scope of deploys, rollbacks and canary steps of one service in one environment."""
    return f"{_slug(environment)}--{_slug(service)}"


def migration_scope(environment: str) -> str:
    """The scope of D1 migrations of one environment (migrations of all its services)."""
    return f"{_slug(environment)}--migrations"


def machine_scope(scope: str, *, account: str | None, api: str | None) -> str:
    """``scope`` made unique on the machine: the same worker name in another account (or
    behind another API, an emulator's) is another lock."""
    where = hashlib.sha256(f"{api or ''}|{account or ''}".encode()).hexdigest()[:12]
    return f"{scope}--{where}"


def machine_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """This user's lock folder on this machine: ``$XDG_RUNTIME_DIR/dome-tasks/locks``, else
    ``<temp>/dome-tasks-<uid>/locks`` (made private to the user; refused when someone else
    owns it)."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        base = Path(runtime) / "dome-tasks"
    else:
        base = Path(tempfile.gettempdir()) / f"dome-tasks-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(base)
    except OSError as error:
        raise LockError(f"cannot make the lock folder {base}: {error}",
                        hint="set TMPDIR to a folder you can write") from error
    if info.st_uid != os.getuid() or not os.path.isdir(base) or os.path.islink(base) or (
            info.st_mode & 0o022):
        raise LockError(f"the lock folder {base} is not yours alone (owner uid {info.st_uid})",
                        hint="remove it, or set TMPDIR to a folder of your own")
    return base / "locks"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "_"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock; ``started`` (the process start time) tells a reused pid apart."""

    pid: int
    command: str
    since: str  # ISO 8601 UTC
    host: str
    started: float | None = None

    @classmethod
    def me(cls, command: str | None = None) -> Holder:
        from dome_tasks._time import utc_now

        return cls(
            pid=os.getpid(),
            command=command if command is not None else command_line(),
            since=utc_now(),
            host=socket.gethostname(),
            started=process_started(os.getpid()),
        )

    @classmethod
    def read(cls, path: Path) -> Holder | None:
        """The holder written in ``path`` (None when absent or unreadable)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(data["pid"]), str(data.get("command", "?")), str(data.get("since", "?")),
                       str(data.get("host", "?")), data.get("started"))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def alive(self) -> bool:
        """Whether this process still runs here (same pid and start time, same host)."""
        if self.host != socket.gethostname():
            return True  # cannot tell: assume it does
        started = process_started(self.pid)
        if started is None:
            return False
        return self.started is None or abs(started - self.started) < 1.0

    def describe(self) -> str:
        where = "" if self.host == socket.gethostname() else f" on {self.host}"
        return f"pid {self.pid}{where} (`{self.command}`) since {self.since}"


def process_started(pid: int) -> float | None:
    """The start time of the running process ``pid`` (None: no such process)."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def command_line() -> str:
    """This process's command line, redacted, on one line of at most 200 characters."""
    argv = getattr(sys, "orig_argv", None) or sys.argv
    words = [Path(argv[0]).name if i == 0 else word for i, word in enumerate(argv)]
    from dome_tasks.events import Redactor

    line = " ".join(Redactor.from_environ()(shlex.join(words)).split())  # one line
    return line if len(line) <= 200 else line[:199] + "…"


@dataclass
class _Held:
    fd: int
    depth: int = 1


@dataclass
class Locks:
    """The locks of one workspace (``directory``: usually ``<root>/.dome/locks``).

    ``wait``: queue behind a holder (default) or refuse at once; ``timeout``: give up waiting
    after this many seconds (None: wait as long as it takes; Ctrl-C stops the wait).
    Messages (waiting, taking over) go to ``out``.
    """

    directory: Path
    wait: bool = True
    timeout: float | None = None
    out: TextIO | None = None
    command: str | None = None  # the command line to record (default: this process's)
    poll: float = 0.1
    sleep: Callable[[float], None] | None = None  # None: a pause Ctrl-C/SIGTERM ends, any thread
    clock: Callable[[], float] = time.monotonic
    _held: dict[str, _Held] = field(default_factory=dict, repr=False)

    def paths(self, scope: str) -> tuple[Path, Path]:
        return self.directory / f"{scope}.lock", self.directory / f"{scope}.json"

    def holder(self, scope: str) -> Holder | None:
        """Who holds ``scope`` now according to its info file (None: nobody we know of)."""
        return Holder.read(self.paths(scope)[1])

    @contextmanager
    def hold(self, scope: str, *, what: str | None = None) -> Iterator[Holder]:
        """Hold ``scope`` for the ``with`` block; ``what`` names it in messages."""
        if scope in self._held:
            self._held[scope].depth += 1
            try:
                yield Holder.read(self.paths(scope)[1]) or Holder.me(self.command)
            finally:
                self._held[scope].depth -= 1
            return
        me = self._acquire(scope, what or scope.replace("--", "/"))
        try:
            yield me
        finally:
            self._release(scope, me)

    def _acquire(self, scope: str, what: str) -> Holder:
        lock_path, info_path = self.paths(scope)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise LockError(f"cannot open the lock of {what}: {error}", where=str(lock_path),
                            hint="check that .dome/ can be written") from error
        try:
            self._lock(fd, scope, what)
        except BaseException:
            os.close(fd)
            raise
        stale = Holder.read(info_path)
        if stale is not None and stale.pid != os.getpid():
            self._say(f"lock {what}: taking over from {stale.describe()}, which is no longer "
                      "running (it left its lock behind)")
        me = Holder.me(self.command)
        try:
            write_atomic(info_path, json.dumps(asdict(me), indent=1) + "\n", durable=False)
        except OSError:
            pass  # the lock holds without its info; waiters then name "another process"
        self._held[scope] = _Held(fd)
        return me

    def _lock(self, fd: int, scope: str, what: str) -> None:
        started = self.clock()
        announced: Holder | str | None = None
        delay = self.poll
        with interruptible() as pause:  # a wave's thread: signals reach it this way
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    pass
                holder = self.holder(scope)
                if holder is not None and not holder.alive():
                    holder = None  # an old info file; the real holder has not written its own yet
                kill = f"; if it hangs, stop it (kill {holder.pid})" if holder else ""
                if not self.wait:
                    raise LockBusy(
                        f"{what} is locked by {_who(holder)}",
                        hint="wait for it to finish, or run again without --no-wait to queue "
                        "behind it" + kill,
                    )
                waited = self.clock() - started
                if self.timeout is not None and waited >= self.timeout:
                    raise LockBusy(
                        f"{what} is still locked by {_who(holder)} after {self.timeout:g}s",
                        hint="try again later" + kill)
                if holder is not None and holder != announced:
                    self._say(f"lock {what}: waiting for {holder.describe()} to finish")
                    announced = holder
                elif holder is None and announced is None and waited >= 1.0:
                    self._say(f"lock {what}: waiting for another process to finish")
                    announced = "unknown"
                (self.sleep or pause)(delay)
                delay = min(delay * 1.5, 1.0)

    def _release(self, scope: str, me: Holder) -> None:
        held = self._held.pop(scope)
        _lock_path, info_path = self.paths(scope)
        try:
            if Holder.read(info_path) == me:
                info_path.unlink()
        except OSError:
            pass
        finally:
            fcntl.flock(held.fd, fcntl.LOCK_UN)
            os.close(held.fd)

    def _say(self, message: str) -> None:
        print(message, file=self.out or sys.stderr, flush=True)


def _who(holder: Holder | None) -> str:
    return holder.describe() if holder is not None else "another process"
