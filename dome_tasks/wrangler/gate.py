"""A gate on wrangler's network: start wrangler at once, let it reach the API only when dome is
ready (it holds the deploy's lock and has read what serves), and hear each API answer it gets.

``netgate.cjs`` is loaded into wrangler's node processes with ``NODE_OPTIONS=--require``; it
blocks the process's first network connection until dome writes ``go`` on a socket pair (Node
start, module loading, config reading and bundling overlap dome's lock and reads), and reports
``answer METHOD PATH STATUS`` for every answer wrangler receives. When ``ready`` fails (the lock
cannot be had), the socket is closed instead: wrangler exits 75 before it sends anything, and
:attr:`NetGate.refused` holds the reason. A signal to the run (:meth:`NetGate.closes_on`) shuts
the gate the same way, for good: Ctrl-C while wrangler waits sends nothing. Works with the
launcher of every wrangler 4 (the gate is handed to its node child as one more stdio entry).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from pathlib import Path
from typing import Any

from dome_tasks.errors import Interrupted

__all__ = ["PRELOAD", "NetGate"]

PRELOAD = Path(__file__).with_name("netgate.cjs")
REFUSED_EXIT = 75  # the preload's exit code when the gate was closed instead of opened
_POLL = 0.05  # how often a waiting gate looks for a signal in its run's inbox


class NetGate:
    """One wrangler run's gate: opens when *ready* resolves (every one of them, when a sequence:
    it stays closed when one fails); *on_answer(method, path, status)* hears every API answer."""

    def __init__(self, ready: Future[Any] | Sequence[Future[Any]],
                 on_answer: Callable[[str, str, int], None] | None = None) -> None:
        self.ready = (ready,) if isinstance(ready, Future) else tuple(ready)
        self.on_answer = on_answer
        self.refused: BaseException | None = None
        self._ours, self._theirs = socket.socketpair()
        self._ours.set_inheritable(False)
        self._theirs.set_inheritable(True)
        self._threads: list[threading.Thread] = []
        self._inbox: list[int] = []
        self._ended = threading.Event()  # wrangler ended: nothing left to decide

    def closes_on(self, inbox: list[int]) -> list[int]:
        """Keep the gate closed for good once a signal lands in *inbox* (its run's, see
        :func:`dome_tasks.process.run`): wrangler waiting at it leaves at once, having sent
        nothing, and :attr:`refused` is :class:`~dome_tasks.errors.Interrupted`. Returns *inbox*."""
        self._inbox = inbox
        return inbox

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self._theirs.fileno(),)

    def environ(self, env: Mapping[str, str]) -> dict[str, str]:
        """*env* with the preload added to ``NODE_OPTIONS`` and the gate's descriptor named."""
        require = f'--require "{PRELOAD}"' if " " in str(PRELOAD) else f"--require {PRELOAD}"
        options = " ".join(part for part in (env.get("NODE_OPTIONS", ""), require) if part)
        return {**env, "NODE_OPTIONS": options, "DOME_NET_GATE_FD": str(self._theirs.fileno())}

    def started(self) -> None:
        """wrangler runs (it holds its end now): open the gate when ready, hear its answers."""
        self._theirs.close()
        for target, name in ((self._open, "dome-gate"), (self._listen, "dome-gate-answers")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """wrangler ended: stop listening (and waiting)."""
        self._ended.set()
        if self._theirs.fileno() != -1:  # never started
            self._theirs.close()
        try:
            self._ours.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for thread in self._threads[1:]:  # the listener; the opener may wait on ``ready`` still
            thread.join(timeout=5)

    def _open(self) -> None:
        try:
            if not self._wait():
                return  # wrangler ended first
        except BaseException as error:  # noqa: BLE001 - handed to the caller as ``refused``
            self.refused = error
            try:
                self._ours.shutdown(socket.SHUT_WR)  # end of file: wrangler leaves, unheard
            except OSError:
                pass
            return
        try:
            self._ours.sendall(b"go\n")
        except OSError:
            pass  # wrangler already ended (the socket is closed by the garbage collector)

    def _wait(self) -> bool:
        """True once every future resolved with no signal to the run, False when wrangler ended
        first; else raise why the gate stays shut."""
        while not self._inbox:
            if self._ended.is_set():
                return False
            _, pending = wait(self.ready, timeout=_POLL, return_when=FIRST_EXCEPTION)
            if not pending or any(_failed(future) for future in self.ready):
                break
        self._not_stopped()
        for ready in sorted(self.ready, key=lambda future: not _failed(future)):
            ready.result()  # a failed one first: a pending one may never resolve
        self._not_stopped()  # once more, just before ``go``
        return True

    def _not_stopped(self) -> None:
        if self._inbox:  # a signal keeps the gate shut for good
            raise Interrupted(self._inbox[0])

    def _listen(self) -> None:
        with self._ours.makefile("r", encoding="utf-8", errors="replace") as lines:
            try:
                for line in lines:
                    words = line.split()
                    if len(words) == 4 and words[0] == "answer" and words[3].isdigit():
                        if self.on_answer is not None:
                            self.on_answer(words[1], words[2], int(words[3]))
            except (OSError, ValueError):
                return


def _failed(future: Future[Any]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)
