"""Run one wrangler :class:`~dome_tasks.plan.steps.Command` for the runner: hermetic environment, a
fresh output file per attempt, a deadline, retries of transient failures, and troubleshooting.

:class:`WranglerExec` is a ``Runner.command_runner``. Commands not flagged ``wrangler=True`` go
to the runner's plain executor. Every attempt runs through :func:`dome_tasks.process.run`: its
own process group, stopped with dome on Ctrl-C or SIGTERM (:class:`~dome_tasks.errors.Interrupted`)
and killed at ``command_timeout`` (:class:`CommandTimedOut`). Everything wrangler prints is
streamed through the :class:`~dome_tasks.events.Redactor`, which also learns the API token the
attempt runs with. On failure it prints the remedy of the matching troubleshooting case and
raises :class:`WranglerFailed` carrying wrangler's exit code.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks import process
from dome_tasks.errors import CommandFailed
from dome_tasks.events import Redactor
from dome_tasks.wrangler.early import EarlyRun
from dome_tasks.wrangler.env import hermetic_env, run_files
from dome_tasks.wrangler.launch import direct_argv
from dome_tasks.wrangler.output import WranglerOutput, read_output
from dome_tasks.wrangler.retry import Attempt, RetryPolicy, run_with_retries

if TYPE_CHECKING:
    from concurrent.futures import Future

    from dome_tasks.plan.steps import Command, Step
    from dome_tasks.runner import Runner, StepResult
    from dome_tasks.wrangler.gate import NetGate
    from dome_tasks.wrangler.troubleshoot import Diagnosis

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT",
    "CommandTimedOut",
    "WranglerExec",
    "WranglerFailed",
    "config_worker_name",
    "migration_path",
]

DEFAULT_COMMAND_TIMEOUT = 600.0  # seconds one wrangler run may take (dome.command_timeout)
TIMED_OUT_EXIT = 124  # as timeout(1)


class WranglerFailed(CommandFailed):
    """wrangler exited non-zero; ``exit_code`` is wrangler's own. ``after_upload``: the upload
    had gone through before the failure, so the new version may be live. ``kind``: the retry
    classification of the final failure (``network``, ``timeout``: no answer came, so whether
    the call in flight changed anything is unknown)."""

    def __init__(
        self,
        message: str,
        *,
        returncode: int,
        diagnosis: Diagnosis | None = None,
        output: WranglerOutput | None = None,
        stderr: str = "",
        after_upload: bool = False,
        hint: str | None = None,
        kind: str | None = None,
    ) -> None:
        if hint is None and diagnosis is not None:
            hint = f"{diagnosis.case.title}: {diagnosis.remedies[0]}"
        super().__init__(message, returncode=returncode, hint=hint)
        self.exit_code = returncode or 1
        self.diagnosis = diagnosis
        self.output = output or WranglerOutput()
        self.stderr = stderr
        self.after_upload = after_upload
        self.kind = kind

    @property
    def unanswered(self) -> bool:
        """No answer came to the call that failed (dropped connection, deadline)."""
        return self.kind in ("network", "timeout")


class CommandTimedOut(WranglerFailed):
    """wrangler did not finish within ``timeout`` seconds; its process group was killed."""

    def __init__(self, message: str, *, timeout: float, stderr: str = "") -> None:
        super().__init__(
            message,
            returncode=TIMED_OUT_EXIT,
            stderr=stderr,
            kind="timeout",
            hint=(
                f"the Cloudflare API did not answer within {timeout:g} s: check "
                "https://www.cloudflarestatus.com and run again, or raise dome.command_timeout "
                "(INVOKE_DOME_COMMAND_TIMEOUT)"
            ),
        )
        self.timeout = timeout


def _config(argv: tuple[str, ...]) -> tuple[Path, dict] | None:
    """The ``--config`` file of a wrangler argv and its parsed TOML (None if absent/unreadable)."""
    if "--config" not in argv:
        return None
    index = argv.index("--config")
    if index + 1 >= len(argv):
        return None
    try:
        import tomllib

        path = Path(argv[index + 1])
        with open(path, "rb") as handle:
            return path, tomllib.load(handle)
    except (OSError, ValueError, ImportError):
        return None


def config_worker_name(argv: tuple[str, ...]) -> str | None:
    """The ``name`` in the ``--config`` file of a wrangler argv (None if absent/unreadable)."""
    found = _config(argv)
    name = found[1].get("name") if found else None
    return name if isinstance(name, str) else None


def migration_path(argv: tuple[str, ...], migration: str, cwd: Path | None = None) -> str:
    """Where the migration file named by wrangler lives, for ``d1 migrations apply DB``: the
    database's ``migrations_dir`` (relative to the config file), shown relative to ``cwd``
    (default: the current directory) when inside it; the bare name if unknown."""
    found = _config(argv)
    if found is None or "apply" not in argv or argv.index("apply") + 1 >= len(argv):
        return migration
    path, config = found
    database = argv[argv.index("apply") + 1]
    for entry in config.get("d1_databases") or ():
        if database in (entry.get("database_name"), entry.get("binding")):
            folder = entry.get("migrations_dir") or "migrations"
            where = (path.parent / folder / migration).resolve()
            try:
                return str(where.relative_to((cwd or Path.cwd()).resolve()))
            except ValueError:
                return str(where)
    return migration


@dataclass
class WranglerExec:
    """Runs wrangler commands for a :class:`~dome_tasks.runner.Runner` (see module docstring).

    ``base_env`` defaults to the process environment at call time. ``hide_stdout_events``
    names step events whose stdout is captured, not streamed (``status``: the caller parses
    the JSON). Secret values registered with ``redactor`` are masked in everything printed.
    ``command_timeout`` (seconds, None for no limit) bounds each attempt; ``grace`` is the
    time wrangler gets between SIGINT and SIGTERM when dome is interrupted.
    """

    state_dir: Path
    base_env: Mapping[str, str] | None = None
    redactor: Redactor = field(default_factory=Redactor)
    retry_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(max_retries=2))
    # Per command, before its first attempt: a check "did this failed attempt already go live?"
    # (lifecycle.reconcile.Reconciler.probe); such a failure is not retried.
    landed_probe: Callable[[Command], Callable[[Attempt], bool] | None] | None = None
    # Per attempt (a retry obeys the same rules): a gate on its network (lifecycle.session:
    # wrangler starts at once and reaches the API once the deploy's lock is held), or the run
    # started early behind one (adopted as the first attempt); None: no gate.
    gate: Callable[[Command], NetGate | EarlyRun | None] | None = None
    hide_stdout_events: frozenset[str] = frozenset({"status"})
    err: TextIO | None = None
    out: TextIO | None = None
    sleep: Callable[[float], None] = time.sleep
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT
    grace: float = process.DEFAULT_GRACE

    def __call__(self, runner: Runner, step: Step, command: Command) -> StepResult:
        from dome_tasks.runner import StepResult, run_command_once

        if not command.wrangler:
            return run_command_once(runner, step, command, redact=self.redactor.text)
        print(f"  $ {self.redactor(command.display())}", file=runner.out)
        err = self.err or runner.stderr or sys.stderr
        hidden = step.event in self.hide_stdout_events
        out = None if hidden else (self.out or runner.stdout or sys.stdout)

        def attempt() -> Attempt:
            gate = self.gate(command) if self.gate is not None else None  # every attempt's
            if isinstance(gate, EarlyRun):  # started before the step: adopted here
                return gate.attempt(out, err)
            return self._attempt(step, command, gate, out, err)

        retried = run_with_retries(
            attempt,
            self.retry_policy,
            safe_to_repeat=command.retry_safe,
            sleep=self.sleep,
            log=lambda message: print(f"  {self.redactor(message)}", file=err, flush=True),
            landed=self.landed_probe(command) if self.landed_probe is not None else None,
        )
        final = retried.final
        if final.timed_out:
            raise CommandTimedOut(
                self.redactor(
                    f"{step.description} failed: `{command.display()}` did not finish within "
                    f"{self.command_timeout:g} s (stopped it)"
                ),
                timeout=self.command_timeout or 0,
                stderr=self.redactor(final.stderr),
            )
        if not final.ok:
            raise self._failed(step, command, retried.attempts, final, err)
        return StepResult(step, "ok", 0, stdout=final.stdout, stderr=final.stderr, value=final.output)

    def _attempt(self, step: Step, command: Command, gate: NetGate | None, out: TextIO | None,
                 err: TextIO) -> Attempt:
        """Run *command* once, behind *gate* when given (a signal meanwhile keeps it shut)."""
        env = self._env(step, command)
        output_file = env["WRANGLER_OUTPUT_FILE_PATH"]
        inbox = gate.closes_on([]) if gate is not None else None
        try:
            done = process.run(
                self._launch(command, env),
                cwd=command.cwd,
                env=gate.environ(env) if gate is not None else env,
                stdin=command.stdin,
                timeout=self.command_timeout,
                stdout=out,
                stderr=err,
                redact=self.redactor.text,
                grace=self.grace,
                pass_fds=gate.pass_fds if gate is not None else (),
                on_start=gate.started if gate is not None else None,
                inbox=inbox,
            )
            output = read_output(output_file)
        finally:
            if gate is not None:
                gate.close()
            for path in run_files(env):
                try:
                    os.unlink(path)
                except OSError:
                    pass
        if gate is not None and gate.refused is not None:
            raise gate.refused  # wrangler left before it sent anything (e.g. the lock is busy)
        return Attempt(done.returncode, done.stdout, done.stderr, output, done.timed_out)

    def _env(self, step: Step, command: Command) -> dict[str, str]:
        """The environment of one attempt: hermetic, with a fresh output file (the token it
        runs with is taught to the redactor)."""
        base = dict(os.environ if self.base_env is None else self.base_env)
        env = hermetic_env(base, state_dir=self.state_dir, environment=step.environment or "default")
        env.update(command.env)
        self.redactor.add_credentials(env)
        return env

    def start_early(self, step: Step, command: Command, ready: Future[Any]) -> EarlyRun:
        """Start *step*'s *command* now, behind a gate that opens once *ready* resolves and the
        step runs (:class:`~dome_tasks.wrangler.early.EarlyRun`: hand it out from ``gate``)."""
        env = self._env(step, command)
        return EarlyRun(command, env, ready, timeout=self.command_timeout,
                        redact=self.redactor.text, grace=self.grace,
                        argv=self._launch(command, env))

    def _launch(self, command: Command, env: Mapping[str, str]) -> list[str]:
        """How *command* starts: wrangler's launcher replaced by the node it would start
        (:mod:`dome_tasks.wrangler.launch`)."""
        from dome_tasks.tools import known_node_version

        cache = Path(self.state_dir) / "node-versions"
        return direct_argv(command.argv, env, lambda node: known_node_version(node, cache))

    def _failed(
        self,
        step: Step,
        command: Command,
        attempts: tuple[Attempt, ...],
        final: Attempt,
        err: TextIO,
    ) -> WranglerFailed:
        from dome_tasks.wrangler.retry import classify as classify_retry
        from dome_tasks.wrangler.troubleshoot import classify, explain  # only needed on failure

        records = []
        if final.output.failure is not None:
            failure = final.output.failure
            records.append({"type": "command-failed", "code": failure.code,
                            "message": failure.message})
        diagnosis = classify(
            final.stderr, final.stdout, records, worker=config_worker_name(command.argv)
        )
        if diagnosis is not None:
            migration = (
                migration_path(command.argv, diagnosis.migration)
                if diagnosis.migration
                else None
            )
            diagnosis = diagnosis.with_context(migration=migration, retries=len(attempts) - 1)
            print(self.redactor(explain(diagnosis)), file=err, flush=True)
        failure = classify_retry(final)
        return WranglerFailed(
            self.redactor(f"{step.description} failed: `{command.display()}` exited {final.exit_code}"),
            returncode=final.exit_code,
            diagnosis=diagnosis,
            output=final.output,
            stderr=self.redactor(final.stderr),
            after_upload=bool(failure and failure.after_upload),
            kind=failure.kind if failure else None,
        )
