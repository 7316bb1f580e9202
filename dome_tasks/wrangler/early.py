"""A wrangler command started before its step runs (a one-service deploy's ``wrangler deploy``,
as soon as its config is rendered): Node starts, loads wrangler and bundles the worker while
dome still reads what deciding the deploy needs (declared secrets, applied migrations, the
history). It waits at its :class:`~dome_tasks.wrangler.gate.NetGate` until both the deploy's
lock is held (*ready*) and its step runs (:meth:`EarlyRun.attempt`, which adopts it as the
step's first attempt). A run never adopted (the service was unchanged, a check refused, an
error or a signal came first) is cancelled: its gate closes and its process group is killed
(no grace period to wait out), so it leaves at once, having sent nothing. Its ``timeout`` counts
from its adoption (the step's own time); a signal while it waits at its gate keeps it shut.
What it prints before it is adopted is kept, then written in order after the step's line.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks import process
from dome_tasks._background import in_background
from dome_tasks.errors import Interrupted
from dome_tasks.wrangler.env import run_files
from dome_tasks.wrangler.gate import NetGate
from dome_tasks.wrangler.output import read_output
from dome_tasks.wrangler.retry import Attempt

if TYPE_CHECKING:
    from dome_tasks.plan.steps import Command

__all__ = ["EarlyRun", "NotAdopted"]


class NotAdopted(Exception):
    """Why an early run's gate closed: its step never ran."""


class _Kept:
    """A stream that keeps what is written until :meth:`attach` (then writes through)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: list[str] = []
        self._to: TextIO | None = None
        self._attached = False

    def write(self, text: str) -> int:
        with self._lock:
            if not self._attached:
                self._kept.append(text)
                return len(text)
            to = self._to
        if to is not None:
            to.write(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            to = self._to
        if to is not None:
            to.flush()

    def attach(self, to: TextIO | None) -> None:
        """From now on write to *to* (None: drop), after what was kept."""
        with self._lock:
            kept, self._kept = self._kept, []
            if to is not None and kept:
                to.write("".join(kept))
                to.flush()
            self._to, self._attached = to, True


class EarlyRun:
    """*command* running now with *env*, behind a gate that opens once *ready* resolves and
    the run is adopted."""

    def __init__(self, command: Command, env: Mapping[str, str], ready: Future[Any], *,
                 timeout: float | None, redact: Callable[[str], str], grace: float,
                 argv: Sequence[str] | None = None) -> None:
        self.command = command
        argv = command.argv if argv is None else argv  # how it starts (wrangler.launch)
        self.adopted: Future[None] = Future()
        self.on_answer: Callable[[str, str, int], None] | None = None
        self.gate = NetGate((ready, self.adopted), on_answer=self._answer)
        self.env = self.gate.environ(env)
        self._inbox = self.gate.closes_on([])
        self._adopted_at: float | None = None  # its timeout counts from here
        self._out, self._err = _Kept(), _Kept()
        self._done = in_background(
            lambda: process.run(argv, cwd=command.cwd, env=self.env,
                                stdin=command.stdin, timeout=timeout, stdout=self._out,
                                stderr=self._err, redact=redact, grace=grace,
                                pass_fds=self.gate.pass_fds, on_start=self.gate.started,
                                inbox=self._inbox, timed_from=lambda: self._adopted_at),
            name="dome-early-wrangler")

    def attempt(self, out: TextIO | None, err: TextIO | None) -> Attempt:
        """Adopt the run as the step's first attempt: open its gate (once *ready* resolves too),
        show its output on *out* / *err*, wait for it (a signal meanwhile stops it). Its
        timeout counts from now."""
        self._out.attach(out)
        self._err.attach(err)
        try:
            with process.forwarded(self._inbox):  # first: a signal never finds it adopted, unheard
                self._adopted_at = time.monotonic()
                self.adopted.set_result(None)
                done = self._done.result()
            output = read_output(self.env["WRANGLER_OUTPUT_FILE_PATH"])
        finally:
            self._finish()
        if self.gate.refused is not None:
            raise self.gate.refused  # wrangler left before it sent anything (the lock is busy)
        return Attempt(done.returncode, done.stdout, done.stderr, output, done.timed_out)

    def cancel(self, wait: float = 1.0) -> None:
        """Its step will not run: close its gate and kill it (its gate never opened, so there is
        nothing to let finish: it leaves at once, having sent nothing)."""
        if self.adopted.done():
            return
        self.adopted.set_exception(NotAdopted("its step did not run"))
        self._out.attach(None)
        self._err.attach(None)
        self._inbox.append(signal.SIGKILL)  # no need to wait for it to reach its gate
        try:
            self._done.result(timeout=wait)
        except (Interrupted, Exception):  # noqa: BLE001 - it was stopped: nothing to report
            pass
        finally:
            self._finish()

    def _finish(self) -> None:
        self.gate.close()
        for path in run_files(self.env):
            try:
                os.unlink(path)
            except OSError:
                pass

    def _answer(self, method: str, path: str, status: int) -> None:
        if self.on_answer is not None:
            self.on_answer(method, path, status)
