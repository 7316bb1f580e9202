"""The process table and ports: the only module here that sends signals or opens sockets.

Linux ``/proc`` is the source of truth: a pid alone is not an identity (pids are reused after
a reboot or a wrap-around), so a process is identified by ``(pid, start ticks)`` and its command
line. Workers run in their own session, so their process group id equals the leader's pid and
one ``killpg`` reaches wrangler's node, esbuild and both workerd processes.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import time
from pathlib import Path

__all__ = [
    "ProcInfo",
    "proc_info",
    "group_members",
    "descendants",
    "kill_group",
    "port_is_free",
    "free_port",
]

PROC = Path("/proc")


class ProcInfo:
    """What ``/proc/<pid>/stat`` and ``cmdline`` say about one process."""

    __slots__ = ("pid", "ppid", "pgid", "state", "start_ticks", "cmdline")

    def __init__(self, pid: int, ppid: int, pgid: int, state: str, start_ticks: int, cmdline: tuple[str, ...]):
        self.pid, self.ppid, self.pgid = pid, ppid, pgid
        self.state, self.start_ticks, self.cmdline = state, start_ticks, cmdline

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")

    def __repr__(self) -> str:
        return f"ProcInfo(pid={self.pid}, pgid={self.pgid}, state={self.state}, cmd={' '.join(self.cmdline)[:80]!r})"


def proc_info(pid: int) -> ProcInfo | None:
    """The process ``pid`` as the kernel sees it now, or None if there is none."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        raw_cmd = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    cmdline = tuple(part.decode(errors="replace") for part in raw_cmd.split(b"\0") if part)
    return ProcInfo(pid, int(fields[1]), int(fields[2]), fields[0], int(fields[19]), cmdline)


def _all_processes() -> list[ProcInfo]:
    infos = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            info = proc_info(int(entry.name))
            if info is not None:
                infos.append(info)
    return infos


def group_members(pgid: int) -> list[ProcInfo]:
    """Live (non-zombie) processes in process group ``pgid``."""
    return [p for p in _all_processes() if p.pgid == pgid and not p.zombie]


def descendants(pid: int) -> list[ProcInfo]:
    """Live descendants of ``pid`` (children, grandchildren, …), whatever their group."""
    children: dict[int, list[ProcInfo]] = {}
    for info in _all_processes():
        children.setdefault(info.ppid, []).append(info)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if not child.zombie:
                found.append(child)
            todo.append(child.pid)
    return found


def _reap(pid: int) -> None:
    """Collect ``pid`` if it is our own exited child, so no zombie is left in our table."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:  # a reused pgid owned by someone else: never ours to kill
        raise OSError(errno.EPERM, f"not allowed to signal process group {pgid}") from exc


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        _reap(pgid)
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def kill_group(pgid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the group, wait up to ``timeout``, then SIGKILL what is left.

    Returns True if the group went away on SIGTERM alone, False if SIGKILL was needed.
    """
    _signal_group(pgid, signal.SIGTERM)
    if _wait_group_gone(pgid, timeout):
        return True
    _signal_group(pgid, signal.SIGKILL)
    _wait_group_gone(pgid, 5.0)
    return False


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the kernel considers free right now (for wrangler's inspector)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
