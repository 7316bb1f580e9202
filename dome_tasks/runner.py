"""The one executor: runs a plan's steps through invoke's Context.

It is the single place for echo, dry runs and timing; external commands go through a pluggable
``command_runner`` (``wrangler_exec.WranglerExec`` adds the hermetic environment, retries and
troubleshooting for wrangler). Planning never runs anything; this module never decides what to run.
"""

from __future__ import annotations

import io
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks.errors import CommandFailed
from dome_tasks.steps import Call, Command, Step, WriteFile

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
    """Execute steps in order; stop at the first failure (raising it)."""

    c: Context
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    command_runner: Callable[[Runner, Step, Command], StepResult] | None = None
    results: list[StepResult] = field(default_factory=list)

    def run(self, steps: Sequence[Step]) -> list[StepResult]:
        for step in steps:
            self.results.append(self.run_step(step))
        return self.results

    def run_step(self, step: Step) -> StepResult:
        print(f"→ {step.description}", file=self.out)
        if self.dry_run:
            print(f"  {step.display()}", file=self.out)
            return StepResult(step, "skipped", 0)
        started = time.monotonic()
        action = step.action
        if isinstance(action, WriteFile):
            from dome_tasks.render import write_config

            changed = write_config(action.text, action.path)
            result = StepResult(step, "ok", 0, value=changed)
        elif isinstance(action, Call):
            result = StepResult(step, "ok", 0, value=action.func(**action.kwargs))
        else:
            run_command = self.command_runner or run_command_once
            result = run_command(self, step, action)
        result.duration_ms = int((time.monotonic() - started) * 1000)
        return result


def run_command_once(runner: Runner, step: Step, command: Command) -> StepResult:
    """Run one external command, streaming its output; raise :class:`CommandFailed` on failure."""
    print(f"  $ {command.display()}", file=runner.out)
    stdin = io.StringIO(command.stdin) if command.stdin is not None else None
    line = command.display()
    if command.cwd:
        line = f"cd {shlex.quote(str(command.cwd))} && {line}"
    result = runner.c.run(
        line,
        env=dict(command.env),
        warn=True,
        pty=False,
        echo=False,
        in_stream=stdin if stdin is not None else False,
    )
    if result.failed:
        raise CommandFailed(
            f"{step.description} failed: `{command.display()}` exited {result.exited}",
            returncode=result.exited or 1,
        )
    return StepResult(step, "ok", 0, stdout=result.stdout, stderr=result.stderr)
