"""Run one wrangler :class:`~dome_tasks.steps.Command` for the runner: hermetic environment, a
fresh output file per attempt, retries of transient failures, and troubleshooting on failure.

:class:`WranglerExec` is a ``Runner.command_runner``. Commands not flagged ``wrangler=True`` go
to the runner's plain executor. On failure it prints wrangler's own message (already streamed),
then the remedy of the matching troubleshooting case, and raises :class:`WranglerFailed`
carrying wrangler's exit code.
"""

from __future__ import annotations

import io
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dome_tasks.errors import CommandFailed
from dome_tasks.events import Redactor
from dome_tasks.retry import Attempt, RetryPolicy, run_with_retries
from dome_tasks.wrangler_env import hermetic_env
from dome_tasks.wrangler_output import WranglerOutput, read_output

if TYPE_CHECKING:
    from dome_tasks.runner import Runner, StepResult
    from dome_tasks.steps import Command, Step
    from dome_tasks.troubleshoot import Diagnosis

__all__ = ["WranglerExec", "WranglerFailed", "config_worker_name"]


class WranglerFailed(CommandFailed):
    """wrangler exited non-zero; ``exit_code`` is wrangler's own."""

    def __init__(
        self,
        message: str,
        *,
        returncode: int,
        diagnosis: Diagnosis | None = None,
        output: WranglerOutput | None = None,
        stderr: str = "",
    ) -> None:
        hint = None
        if diagnosis is not None:
            hint = f"{diagnosis.case.title}: {diagnosis.case.remedies[0]}"
        super().__init__(message, returncode=returncode, hint=hint)
        self.exit_code = returncode or 1
        self.diagnosis = diagnosis
        self.output = output or WranglerOutput()
        self.stderr = stderr


def config_worker_name(argv: tuple[str, ...]) -> str | None:
    """The ``name`` in the ``--config`` file of a wrangler argv (None if absent/unreadable)."""
    if "--config" not in argv:
        return None
    index = argv.index("--config")
    if index + 1 >= len(argv):
        return None
    try:
        import tomllib

        with open(argv[index + 1], "rb") as handle:
            name = tomllib.load(handle).get("name")
    except (OSError, ValueError, ImportError):
        return None
    return name if isinstance(name, str) else None


@dataclass
class WranglerExec:
    """Runs wrangler commands for a :class:`~dome_tasks.runner.Runner` (see module docstring).

    ``base_env`` defaults to the process environment at call time. ``hide_stdout_events``
    names step events whose stdout is captured, not streamed (``status``: the caller parses
    the JSON). Secret values registered with ``redactor`` are masked in retry logs and
    error messages (wrangler itself never prints them: they travel on stdin).
    """

    state_dir: Path
    base_env: Mapping[str, str] | None = None
    redactor: Redactor = field(default_factory=Redactor)
    retry_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_retries=2))
    hide_stdout_events: frozenset[str] = frozenset({"status"})
    err: TextIO | None = None
    sleep: Callable[[float], None] = time.sleep

    def __call__(self, runner: Runner, step: Step, command: Command) -> StepResult:
        from dome_tasks.runner import StepResult, run_command_once

        if not command.wrangler:
            return run_command_once(runner, step, command)
        print(f"  $ {command.display()}", file=runner.out)
        err = self.err or sys.stderr
        hide = "out" if step.event in self.hide_stdout_events else None

        def attempt() -> Attempt:
            base = dict(os.environ if self.base_env is None else self.base_env)
            env = hermetic_env(base, state_dir=self.state_dir, environment=step.environment or "default")
            env.update(command.env)
            output_file = env["WRANGLER_OUTPUT_FILE_PATH"]
            line = command.display()
            if command.cwd:
                line = f"cd {shlex.quote(str(command.cwd))} && {line}"
            try:
                result = runner.c.run(
                    line,
                    env=env,
                    replace_env=True,
                    warn=True,
                    hide=hide,
                    pty=False,
                    echo=False,
                    in_stream=io.StringIO(command.stdin) if command.stdin is not None else False,
                )
                output = read_output(output_file)
            finally:
                try:
                    os.unlink(output_file)
                except OSError:
                    pass
            return Attempt(result.exited or 0, result.stdout, result.stderr, output)

        retried = run_with_retries(
            attempt,
            self.retry_policy,
            safe_to_repeat=command.retry_safe,
            sleep=self.sleep,
            log=lambda message: print(f"  {self.redactor(message)}", file=err),
        )
        final = retried.final
        if not final.ok:
            records = []
            if final.output.failure is not None:
                failure = final.output.failure
                records.append({"type": "command-failed", "code": failure.code,
                                "message": failure.message})
            from dome_tasks.troubleshoot import classify, explain  # only needed on failure

            diagnosis = classify(
                final.stderr, final.stdout, records, worker=config_worker_name(command.argv)
            )
            if diagnosis is not None:
                print(self.redactor(explain(diagnosis)), file=err)
            raise WranglerFailed(
                self.redactor(f"{step.description} failed: `{command.display()}` exited {final.exit_code}"),
                returncode=final.exit_code,
                diagnosis=diagnosis,
                output=final.output,
                stderr=self.redactor(final.stderr),
            )
        return StepResult(step, "ok", 0, stdout=final.stdout, stderr=final.stderr, value=final.output)
