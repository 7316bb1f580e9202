"""The one executor: runs a plan's steps.

It is the single place for echo, dry runs and timing; external commands go through a pluggable
``command_runner`` (``wrangler.exec.WranglerExec`` adds the hermetic environment, retries and
troubleshooting for wrangler), and every command runs through :func:`dome_tasks.process.run`
(its own process group, a deadline, Ctrl-C/SIGTERM stop it). Planning never runs anything;
this module never decides what to run.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks import process
from dome_tasks.errors import CommandFailed
from dome_tasks.plan.steps import Call, Command, Step, WriteFile

if TYPE_CHECKING:
    from invoke import Context


@dataclass
class StepResult:
    step: Step
    outcome: str  # ok | failed | skipped
    duration_ms: int
    stdout: str = ""
    stderr: str = ""
    value: Any = None  # what a Call returned, or facts learned from wrangler's output file


@dataclass
class Runner:
    """Execute steps in order; stop at the first failure (raising it).

    ``out`` gets the step lines; ``stdout``/``stderr`` get the commands' own output (None: this
    process's); ``on_step`` hears of each step as it starts (the progress display).
    ``command_timeout``: seconds a plain command (a build) may run; None means no limit.
    """

    c: Context
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    on_step: Callable[[Step], None] | None = None
    command_runner: Callable[[Runner, Step, Command], StepResult] | None = None
    #: In-process actions by type (e.g. Verify, WriteRecord), supplied by whoever runs the plan.
    handlers: Mapping[type, Callable[[Step], Any]] = field(default_factory=dict)
    results: list[StepResult] = field(default_factory=list)
    command_timeout: float | None = None

    def run(self, steps: Sequence[Step]) -> list[StepResult]:
        for step in steps:
            self.results.append(self.run_step(step))
        return self.results

    def run_step(self, step: Step) -> StepResult:
        if self.on_step is not None:
            self.on_step(step)
        print(f"→ {step.description}", file=self.out)
        if self.dry_run:
            print(f"  {step.display()}", file=self.out)
            return StepResult(step, "skipped", 0)
        started = time.monotonic()
        action = step.action
        handler = self.handlers.get(type(action))
        if handler is not None:
            result = StepResult(step, "ok", 0, value=handler(step))
        elif isinstance(action, WriteFile):
            from dome_tasks.render.companions import link_companions
            from dome_tasks.render.config import write_config

            changed = write_config(action.text, action.path)
            if action.service_dir is not None:
                linked = link_companions(action.path.parent, action.service_dir)
                changed = changed or bool(linked)
            result = StepResult(step, "ok", 0, value=changed)
        elif isinstance(action, Call):
            result = StepResult(step, "ok", 0, value=action.func(**action.kwargs))
        else:
            run_command = self.command_runner or run_command_once
            result = run_command(self, step, action)
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result


def run_command_once(
    runner: Runner,
    step: Step,
    command: Command,
    *,
    redact: Callable[[str], str] = lambda text: text,
) -> StepResult:
    """Run one external command, streaming its output; raise :class:`CommandFailed` on failure
    (and :class:`~dome_tasks.errors.Interrupted` on Ctrl-C or SIGTERM)."""
    print(f"  $ {redact(command.display())}", file=runner.out)
    done = process.run(
        command.argv,
        cwd=command.cwd,
        env={**os.environ, **command.env},
        stdin=command.stdin,
        timeout=runner.command_timeout,
        stdout=runner.stdout or sys.stdout,
        stderr=runner.stderr or sys.stderr,
        redact=redact,
    )
    if done.timed_out:
        raise CommandFailed(
            redact(f"{step.description} failed: `{command.display()}` did not finish within "
                   f"{runner.command_timeout:g} s (stopped it)"),
            returncode=124,
            hint="find out why it hangs, or raise the time limit",
        )
    if not done.ok:
        raise CommandFailed(
            redact(f"{step.description} failed: `{command.display()}` exited {done.returncode}"),
            returncode=done.returncode or 1,
        )
    return StepResult(step, "ok", 0, stdout=done.stdout, stderr=done.stderr)


# --- concurrent lanes: one wave's services side by side -----------------------------------------


@dataclass
class LaneResult:
    """How one lane of :func:`run_lanes` ended. ``started`` False: a failure elsewhere stopped
    the wave before this lane began."""

    name: str
    value: Any = None
    error: BaseException | None = None
    started: bool = False
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return self.started and self.error is None


@dataclass(frozen=True)
class Lane:
    """Work for one service of a wave: ``work(out)`` writes everything it prints to ``out``."""

    name: str
    work: Callable[[TextIO], Any]


def default_jobs() -> int:
    """How many lanes run at once by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_lanes(
    lanes: Sequence[Lane],
    *,
    jobs: int,
    out: TextIO,
    block: Callable[[str, str], None] | None = None,
    started: Callable[[str], None] | None = None,
    buffer: bool = False,
) -> list[LaneResult]:
    """Run *lanes* at most *jobs* at a time (threads: the work is subprocesses).

    With one job or one lane, each lane runs here and prints straight to *out* (into a buffer
    too with ``buffer``: a live display owns the terminal). Otherwise each
    lane prints into its own buffer, handed to ``block(name, text)`` (default: printed to *out*
    in one piece) when the lane ends, so a service's lines stay together. After a lane fails,
    lanes not yet started are not started. Results come back in the lanes' order; errors are
    returned, not raised. Ctrl-C or SIGTERM (``KeyboardInterrupt`` here) is passed to the
    commands the lanes run; it is raised again once they have stopped and recorded it.
    """
    lock = threading.Lock()

    def show(name: str, text: str) -> None:
        with lock:
            if block is not None:
                block(name, text)
            elif text:
                out.write(text if text.endswith("\n") else text + "\n")
                out.flush()

    stop = threading.Event()

    def run_one(lane: Lane, stream: TextIO) -> LaneResult:
        result = LaneResult(lane.name)
        if stop.is_set():
            return result
        result.started = True
        if started is not None:
            started(lane.name)
        begun = time.monotonic()
        try:
            result.value = lane.work(stream)
        except Exception as error:  # noqa: BLE001 - reported in the result, raised by the caller
            result.error = error
            stop.set()
        finally:
            result.duration_ms = int((time.monotonic() - begun) * 1000)
        return result

    def buffered(lane: Lane) -> LaneResult:
        text = io.StringIO()
        try:
            return run_one(lane, text)
        finally:
            show(lane.name, text.getvalue())

    if jobs <= 1 or len(lanes) <= 1:
        return [buffered(lane) if buffer else run_one(lane, out) for lane in lanes]

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(lanes)), thread_name_prefix="dome-lane")
    futures = [pool.submit(buffered, lane) for lane in lanes]
    try:
        return [future.result() for future in futures]
    except KeyboardInterrupt as interrupt:  # signals reach this thread only: pass them on
        stop.set()
        for future in futures:
            future.cancel()
        process.interrupt_running(getattr(interrupt, "signum", signal.SIGINT))
        try:
            pool.shutdown(wait=True)  # the running lanes stop their commands, waits, checks
        finally:
            process.clear_stop()
        raise
    finally:
        pool.shutdown(wait=True)
