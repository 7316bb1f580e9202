"""Run one external command (wrangler, a build) in its own process group: streamed, bounded, stoppable.

* The child starts a new session, so a terminal's Ctrl-C reaches only dome; dome then stops the
  child's whole group (wrangler's launcher and the node process it spawns): SIGINT, after a
  grace period SIGTERM, then SIGKILL. Descendants that left the group are found with psutil.
* While the child runs, SIGINT and SIGTERM are caught; the run then raises
  :class:`~dome_tasks.errors.Interrupted` whatever the child's exit code (wrangler's launcher
  exits 0 when its child is killed by a signal: the interrupt wins).
* ``timeout``: past it the group is killed and the result says ``timed_out``. It counts from the
  start, or from ``timed_from()`` (a run started before its step counts from the step).
* A SIGKILL in the run's inbox (a run cancelled before it could send anything) kills the group
  at once, without the SIGINT/SIGTERM grace periods.
* Output is streamed line by line through ``redact`` and captured; stdin is fed and closed.

Outside a run, :func:`signals_as_interrupts` (installed by the task boundary) turns SIGTERM
into :class:`SignalInterrupt`, a ``KeyboardInterrupt`` that remembers its signal.
"""

from __future__ import annotations

import contextlib
import os
import select
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from dome_tasks.errors import CommandFailed, Interrupted

if TYPE_CHECKING:  # psutil is imported where a process group is watched: after the spawn
    import psutil

__all__ = [
    "DEFAULT_GRACE",
    "Completed",
    "SignalInterrupt",
    "interrupt_running",
    "interruptible",
    "clear_stop",
    "forwarded",
    "run",
    "signals_as_interrupts",
    "stop_requested",
]

DEFAULT_GRACE = 5.0  # seconds between SIGINT and SIGTERM (and SIGTERM and SIGKILL)
#: The signal inboxes of the runs going on now (threads of a concurrent wave): signals reach
#: only the main thread, which passes them on with :func:`interrupt_running`.
_RUNNING: dict[int, list[int]] = {}  # by id(): two empty inboxes are equal, not the same
_RUNNING_LOCK = threading.Lock()
#: The signal passed on with :func:`interrupt_running`, until :func:`clear_stop`: a run or a
#: wait that begins after it (a lane between two steps) stops at once.
_STOP: list[int] = []
_POLL = 0.05
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Completed:
    """A finished command. ``timed_out``: it was killed at its deadline."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class SignalInterrupt(KeyboardInterrupt):
    """A SIGTERM (or SIGINT) that arrived while no command ran; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise SignalInterrupt(signum)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """For the block: SIGTERM raises :class:`SignalInterrupt` like Ctrl-C raises
    KeyboardInterrupt, so cleanups (``finally``) run and the boundary can exit 143."""
    with _handlers(_raise_interrupt):
        yield


@contextlib.contextmanager
def _handlers(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """Install ``handler`` for SIGINT and SIGTERM (main thread only); restore on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in _SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def _alive(process: psutil.Process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class _Group:
    """The child's process group plus every descendant seen (some may have left the group)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.pgid = popen.pid  # start_new_session: the child leads its own group
        self.known: dict[int, psutil.Process] = {}
        self.look()

    def look(self) -> None:
        """Remember the current descendants (called while the child runs)."""
        import psutil

        try:
            leader = psutil.Process(self.popen.pid)
            found = [leader, *leader.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in found:
            self.known.setdefault(process.pid, process)

    def members(self) -> list[psutil.Process]:
        """Live (non-zombie) members: descendants seen, and whatever still has our group id."""
        import psutil

        self.look()
        found = {p.pid: p for p in self.known.values() if _alive(p)}
        try:
            os.killpg(self.pgid, 0)
        except (ProcessLookupError, PermissionError):
            return list(found.values())
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                mine = process.pid not in found and os.getpgid(process.pid) == self.pgid
                if mine and _alive(process):
                    self.known.setdefault(process.pid, process)
                    found[process.pid] = process
        return list(found.values())

    def signal(self, signum: int) -> None:
        import psutil

        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)
        for process in self.members():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(process.pid) != self.pgid:  # it left the group: signal it alone
                    process.send_signal(signum)

    def wait_empty(self, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while True:
            self.popen.poll()  # reap the leader
            if not self.members():
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(_POLL)

    def stop(self, first: int, grace: float, more: Callable[[], bool] = lambda: False) -> None:
        """``first`` to every member, then the stronger signals (SIGTERM, SIGKILL), ``grace``
        seconds apart, until none is left; ``more()`` (the user asked again) skips the wait."""
        ladder = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
        for signum in ladder[ladder.index(first):]:
            self.signal(signum)
            end = time.monotonic() + (grace if signum != signal.SIGKILL else 5.0)
            while not self.wait_empty(_POLL):
                if time.monotonic() >= end or more():
                    break
            else:
                return


class _ExitWatch:
    """``wait(seconds)`` returns once the child has exited, or after *seconds*.

    On Linux the wait sleeps on a pidfd and wakes the moment the child exits (Popen.wait with a
    timeout polls, waking up to ~25 ms late: a deploy felt it); elsewhere it is Popen.wait."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.fd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # no pidfd: Popen.wait
            self.fd = os.pidfd_open(popen.pid)

    def wait(self, seconds: float) -> None:
        if self.fd is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(seconds)
            return
        select.select([self.fd], [], [], seconds)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _pump(
    source: IO[bytes],
    sink: list[str],
    echo: TextIO | None,
    redact: Callable[[str], str],
) -> None:
    """Read lines until EOF: keep them (raw) and echo them (redacted) as they come."""
    for raw in iter(source.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        sink.append(line)
        if echo is not None:
            with contextlib.suppress(ValueError, OSError):  # a closed stream must not kill us
                echo.write(redact(line))
                echo.flush()
    source.close()


def _feed(sink: IO[bytes], data: str) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        sink.write(data.encode("utf-8"))
    with contextlib.suppress(BrokenPipeError, OSError):
        sink.close()


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    redact: Callable[[str], str] = lambda text: text,
    grace: float = DEFAULT_GRACE,
    pass_fds: Sequence[int] = (),
    on_start: Callable[[], None] | None = None,
    inbox: list[int] | None = None,
    timed_from: Callable[[], float | None] | None = None,
) -> Completed:
    """Run ``argv`` to completion (see the module docstring); echo its output to ``stdout`` /
    ``stderr`` (None: capture only). Raises :class:`Interrupted` on SIGINT/SIGTERM.
    ``pass_fds``: descriptors the command inherits; ``on_start()``: called once it runs;
    ``inbox``: the run's signal inbox, for a run in a thread whose caller waits on the main
    thread (:func:`forwarded`); ``timed_from()``: the monotonic time ``timeout`` counts from
    (None: not yet; default: the start)."""
    with _RUNNING_LOCK:
        received: list[int] = inbox if inbox is not None else []
        received.extend(_STOP)
        _RUNNING[id(received)] = received
    try:
        if received:  # the run is being stopped: start nothing more
            shown = shlex.join([Path(argv[0]).name, *argv[1:]])
            raise Interrupted(received[0], command=redact(shown))
        return _run(argv, cwd, env, stdin, timeout, stdout, stderr, redact, grace, received,
                    tuple(pass_fds), on_start, timed_from)
    finally:
        with _RUNNING_LOCK:
            del _RUNNING[id(received)]


@contextlib.contextmanager
def forwarded(inbox: list[int]) -> Iterator[None]:
    """While the block waits (on the main thread) for a run in another thread, SIGINT and
    SIGTERM go to that run's *inbox*: it stops its command and raises :class:`Interrupted`."""
    with _handlers(lambda signum, _frame: inbox.append(signum)):
        yield


def interrupt_running(signum: int) -> None:
    """Pass *signum* to every command running now (in any thread): each stops its process group
    and raises :class:`Interrupted` in its own thread."""
    with _RUNNING_LOCK:
        if not _STOP:
            _STOP.append(signum)
        for inbox in _RUNNING.values():
            inbox.append(signum)


def stop_requested() -> int | None:
    """The signal passed on with :func:`interrupt_running` (None: none): a lane checks it
    between its steps."""
    with _RUNNING_LOCK:
        return _STOP[0] if _STOP else None


def clear_stop() -> None:
    """Forget the signal passed on (the lanes it stopped have ended)."""
    with _RUNNING_LOCK:
        _STOP.clear()


@contextlib.contextmanager
def interruptible(cancel: threading.Event | None = None) -> Iterator[Callable[[float], None]]:
    """For a wait outside any command (a lock held by another run): yields ``pause(seconds)``,
    which sleeps and raises :class:`Interrupted` once a signal has been passed on with
    :func:`interrupt_running` (the wait runs in a thread of a wave, which signals never reach)."""
    with _RUNNING_LOCK:
        received: list[int] = list(_STOP)
        _RUNNING[id(received)] = received

    def pause(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not received and time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():  # its caller gave up (e.g. after a signal)
                raise Interrupted(signal.SIGINT)
            time.sleep(min(_POLL, max(0.0, deadline - time.monotonic())))
        if received:
            raise Interrupted(received[0])

    try:
        yield pause
    finally:
        with _RUNNING_LOCK:
            del _RUNNING[id(received)]


def _first_signal(received: list[int]) -> int:
    """How a stopped run's group is stopped first: SIGKILL when asked for (nothing to let
    finish), else SIGINT (wrangler may finish what it sends, see :meth:`_Group.stop`)."""
    return signal.SIGKILL if signal.SIGKILL in received else signal.SIGINT


def _expired(timeout: float | None, since: float | None, now: float) -> bool:
    """Whether *timeout* seconds have passed *since* (None: the clock has not started)."""
    return timeout is not None and since is not None and now - since >= timeout


def _run(
    argv: Sequence[str],
    cwd: Path | str | None,
    env: Mapping[str, str] | None,
    stdin: str | None,
    timeout: float | None,
    stdout: TextIO | None,
    stderr: TextIO | None,
    redact: Callable[[str], str],
    grace: float,
    received: list[int],
    pass_fds: tuple[int, ...] = (),
    on_start: Callable[[], None] | None = None,
    timed_from: Callable[[], float | None] | None = None,
) -> Completed:
    started = time.monotonic()
    since = timed_from or (lambda: started)
    captured: tuple[list[str], list[str]] = ([], [])
    with _handlers(lambda signum, _frame: received.append(signum)):
        try:
            popen = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=pass_fds,
            )
        except OSError as error:
            raise CommandFailed(
                f"cannot run `{redact(shlex.join(argv))}`: {error.strerror or error}",
                returncode=127,
                hint="check that the program is installed and the directory exists",
            ) from None
        if on_start is not None:
            on_start()
        group = _Group(popen)
        threads = [
            threading.Thread(target=_pump, args=(pipe, sink, echo, redact), daemon=True)
            for pipe, sink, echo in (
                (popen.stdout, captured[0], stdout),
                (popen.stderr, captured[1], stderr),
            )
        ]
        if stdin is not None:
            threads.append(threading.Thread(target=_feed, args=(popen.stdin, stdin), daemon=True))
        for thread in threads:
            thread.start()
        timed_out = False
        exited = _ExitWatch(popen)
        try:
            looked = time.monotonic()
            while popen.poll() is None:
                now = time.monotonic()
                if received:
                    again = len(received)
                    group.stop(_first_signal(received), grace,
                               more=lambda n=again: len(received) > n)
                    break
                if _expired(timeout, since(), now):
                    timed_out = True
                    group.stop(signal.SIGTERM, min(grace, 2.0))
                    break
                if now - looked >= 0.5:
                    group.look()
                    looked = now
                exited.wait(_POLL)
            # Whatever outlived the leader (wrangler's node child, a build's helpers) goes too.
            if not group.wait_empty(0):
                group.stop(signal.SIGTERM, min(grace, 2.0))
        finally:
            if popen.poll() is None or group.members():  # an exception on our side
                group.stop(signal.SIGKILL, 0)
            popen.wait()
            exited.close()
            for thread in threads:
                thread.join(timeout=5)
    if received:
        shown = shlex.join([Path(argv[0]).name, *argv[1:]])
        raise Interrupted(received[0], command=redact(shown))
    return Completed(
        argv=tuple(argv),
        returncode=popen.returncode,
        stdout="".join(captured[0]),
        stderr="".join(captured[1]),
        seconds=time.monotonic() - started,
        timed_out=timed_out,
    )
