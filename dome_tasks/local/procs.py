"""Processes and ports, through psutil: the only module here that sends signals or opens sockets.

Works alike on Linux and macOS: nothing reads ``/proc`` or runs ``ps``, ``ss``, ``lsof`` or
``fuser``. A pid alone is not an identity (pids are reused), so a process is identified by
``(pid, creation time)``, as psutil itself does. Workers run in their own session, so their
process group id is the leader's pid; stopping a worker signals that group (which still holds
members whose parent died) and every descendant of the leader (which may have left it).
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from collections.abc import Iterable

import psutil

__all__ = [
    "command_line",
    "created_at",
    "free_port",
    "group_members",
    "is_running",
    "port_is_free",
    "stop_group",
    "tree",
]

#: Two creation times closer than this are the same process: psutil reports them in clock
#: ticks (10 ms) on Linux and in microseconds on macOS; a pid is never reused that fast.
SAME_START = 0.05
#: Waiting for processes to exit: first look soon, then less and less often.
POLL_FIRST, POLL_MAX = 0.005, 0.1


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, ValueError):
        return None


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (a zombie whose parent never reaps it holds no resource)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:  # includes ZombieProcess
        return False
    except psutil.AccessDenied:  # another user's process (macOS): it exists
        return True


def created_at(pid: int) -> float | None:
    """The creation time (seconds since the epoch) of the live process ``pid``, else None."""
    proc = _process(pid)
    if proc is None or not _alive(proc):
        return None
    try:
        return proc.create_time()
    except psutil.Error:
        return None


def command_line(pid: int) -> tuple[str, ...] | None:
    """The argv of ``pid``; None when it cannot be read (gone, a zombie, or not ours to read)."""
    proc = _process(pid)
    if proc is None:
        return None
    try:
        return tuple(proc.cmdline())
    except psutil.Error:
        return None


def is_running(pid: int, created: float, *, marker: str | None = None) -> bool:
    """True if ``pid`` is still the process created at ``created`` and is not a zombie.

    With ``marker``, a readable command line must also contain it in one of its words. An
    unreadable or empty one (the moment between fork and exec, or a process macOS will not
    show) does not count against it: the creation time already tells a reused pid apart.
    """
    now = created_at(pid)
    if now is None or abs(now - created) > SAME_START:
        return False
    if marker is None:
        return True
    argv = command_line(pid)
    return not argv or any(marker in word for word in argv)


def _processes() -> Iterable[psutil.Process]:
    return psutil.process_iter()


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for proc in _processes():
        try:
            if os.getpgid(proc.pid) == pgid and _alive(proc):
                members.append(proc)
        except OSError:  # gone meanwhile, or not visible to us
            continue
    return members


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` itself, its live descendants (whatever their group) and the live members of
    the process group it leads (whatever their parent), each once."""
    found: dict[int, psutil.Process] = {}
    leader = _process(pid)
    if leader is not None and _alive(leader):
        found[pid] = leader
        try:
            for child in leader.children(recursive=True):
                if _alive(child):
                    found.setdefault(child.pid, child)
        except psutil.Error:
            pass
    for member in group_members(pid):
        found.setdefault(member.pid, member)
    return list(found.values())


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own exited child, so no zombie is left in our table."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal(pgid: int, procs: Iterable[psutil.Process], sig: int) -> None:
    """``sig`` to the group ``pgid`` and to each of ``procs`` (checked to still be itself)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:  # a reused pgid owned by someone else: never ours to kill
        raise OSError(errno.EPERM, f"not allowed to signal process group {pgid}") from exc
    for proc in procs:
        try:
            proc.send_signal(sig)  # psutil refuses if the pid now names another process
        except psutil.Error:
            pass


def _wait_gone(pgid: int, procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until ``procs`` and the group ``pgid`` are gone; returns what is still alive."""
    deadline = time.monotonic() + timeout
    pause = POLL_FIRST
    while True:
        _reap(pgid)
        left = [p for p in procs if _alive(p)]
        if not left:
            left = group_members(pgid)  # and nothing forked meanwhile
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, POLL_MAX)


def stop_group(pgid: int, timeout: float = 10.0) -> bool:
    """Stop the process tree led by ``pgid``: SIGTERM to the group and the leader's
    descendants, wait up to ``timeout``, then SIGKILL whatever is left.

    Returns True if everything exited on SIGTERM, False if SIGKILL was needed.
    """
    targets = tree(pgid)
    _signal(pgid, targets, signal.SIGTERM)
    left = _wait_gone(pgid, targets, timeout)
    if not left:
        return True
    _signal(pgid, left, signal.SIGKILL)
    _wait_gone(pgid, left, 5.0)
    return False


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port``.

    Binding with ``SO_REUSEADDR`` ignores sockets in TIME_WAIT (a worker stopped a moment
    ago); on macOS it would also succeed next to a listener on the wildcard address, so a
    connection attempt must be refused as well.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return not accepts_connections(host, port)


def accepts_connections(host: str, port: int) -> bool:
    """True if something listens on ``host:port`` (a connection attempt, never a bind: a
    process about to bind that port must not find it taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        return probe.connect_ex((host, port)) == 0


def port_owner(host: str, port: int) -> str | None:
    """``"pid 123 (python3)"`` for the process listening on ``host:port``, when the system
    tells (Linux does for our own processes; macOS only to root); else None."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            local = conn.laddr
            if (
                conn.status == psutil.CONN_LISTEN
                and conn.pid
                and local
                and local.port == port
                and local.ip in (host, "0.0.0.0", "::", "::ffff:" + host)
            ):
                return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return None


def free_port(host: str) -> int:
    """A port the kernel considers free right now (for wrangler's inspector)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
