"""What every task needs: settings read once, its words resolved once, the confirmation of
protected environments, the dry-run switch, the error boundary, and the same command-line
manners (:func:`task` and :func:`recipe`: no generated short flags, only the deliberate ones in
:data:`SHORT_FLAGS`)."""

from __future__ import annotations

import copy
import functools
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from invoke.exceptions import Exit, ParseError
from invoke.parser import Argument
from invoke.tasks import Task

from dome_tasks.errors import DomeError, Refused, UsageError
from dome_tasks.just.args import JustArgument, JustTask, _parser_phase
from dome_tasks.settings import Settings, load_manifest

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.manifest.model import Environment
    from dome_tasks.plan.target import ResolvedRequest

__all__ = [
    "SHORT_FLAGS",
    "Settings",
    "boundary",
    "confirm_protected",
    "is_dry",
    "load_manifest",
    "parse_whole",
    "recipe",
    "request_for",
    "task",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The only short flags dome's tasks have, the same on every task that has the long one.
SHORT_FLAGS = {"dry_run": "n", "yes": "y", "jobs": "j", "force": "f"}


class _CheapCopy:
    """invoke deep-copies every task (loading the namespace) and every argument (twice per run,
    building its parsers) of the ~60 tasks a dome namespace has: most of ``invoke --list``'s
    time. Their only state that changes is the parsed value, the help dict (read destructively
    by ``get_arguments``) and list values, so a shallow copy of the rest is enough."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        twin = copy.copy(self)
        memo[id(self)] = twin
        for name, value in vars(self).items():
            if isinstance(value, (list, dict, set)):
                setattr(twin, name, copy.deepcopy(value, memo))
        return twin


class _Argument(_CheapCopy, Argument):
    """A flag of a dome task."""


class _WholeNumber(_CheapCopy, Argument):
    """An ``INT`` flag whose bad value is one clear parse error, not a traceback."""

    def set_value(self, value: Any, cast: bool = True) -> None:
        try:
            super().set_value(value, cast)
        except ValueError:
            flag = "--" + self.names[0]
            raise ParseError(
                f"{flag} {value!r} is not a whole number (e.g. {flag} 4)"
            ) from None


class _JustArgument(_CheapCopy, JustArgument):
    """A positional word of a dome recipe: a word that looks like a flag is a mistyped flag,
    never a value (no service or environment starts with ``-``)."""

    @property  # type: ignore[override]
    def value(self) -> Any:
        state = _parser_phase()
        if state is not None and state[0] == "place":
            _refuse_unknown_flag(self, state[1], state[2])
        return JustArgument.value.fget(self)  # type: ignore[attr-defined]

    @value.setter
    def value(self, arg: Any) -> None:
        JustArgument.value.fset(self, arg)  # type: ignore[attr-defined]


def _refuse_unknown_flag(arg: JustArgument, machine: Any, word: Any) -> None:
    """One clear parse error for ``--dry-rn``: the flag is unknown; the closest flag suggested."""
    if not isinstance(word, str) or not re.match(r"-[-A-Za-z]", word) or machine.ignore_unknown:
        return
    context = machine.context
    known = [*context.flags, *context.inverse_flags]
    if word in known or (machine.initial is not None and word in machine.initial.flags):
        return
    from dome_tasks.cli.flag_hints import unknown_flag

    raise ParseError(
        unknown_flag(arg.task_name, word, known, arg.signature),
        context,
    )


_CHEAP = {Argument: _Argument, JustArgument: _JustArgument}


class _Manners(_CheapCopy):
    """No generated short flags (``-h`` must never mean ``--rehearse``); the deliberate ones;
    whole-number flags that explain a bad value; cheap copies."""

    def argspec(self, body: Callable[..., Any]) -> Any:
        """invoke reads the body's signature for every use of the task: read it once."""
        known = self.__dict__.get("_argspec")
        if known is None or known[0] is not body:
            known = (body, super().argspec(body))  # type: ignore[misc]
            self.__dict__["_argspec"] = known
        return known[1]

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        args = super().get_arguments(ignore_unknown_help)  # type: ignore[misc]
        for arg in args:
            short = SHORT_FLAGS.get(arg.name)
            if short and not arg.positional and short not in arg.names:
                arg.names = (*arg.names, short)
            if arg.kind is int and type(arg) is Argument:
                arg.__class__ = _WholeNumber
            elif type(arg) in _CHEAP:
                arg.__class__ = _CHEAP[type(arg)]
        return args


class DomeTask(_Manners, Task):
    """A plain invoke task with dome's manners."""


class DomeRecipe(_Manners, JustTask):
    """A task whose positional words bind like just's, with dome's manners; the docstring's
    ``Example:`` line is shown last, after the usage line."""

    @functools.cached_property
    def signature(self) -> str:  # type: ignore[override]
        """Read once: every argument of the task asks for it (``invoke --list`` builds them)."""
        return JustTask.signature.fget(self)  # type: ignore[attr-defined]

    def _display_doc(self) -> str:
        text = super()._display_doc()
        examples = [line for line in text.splitlines() if line.startswith("Example: ")]
        if not examples:
            return text
        kept = "\n".join(line for line in text.splitlines() if line not in examples)
        return re.sub(r"\n{3,}", "\n\n", kept).rstrip() + "\n" + "\n".join(examples) + "\n"


def task(*args: Any, **kwargs: Any) -> Any:
    """``invoke.task`` with dome's manners (same keywords)."""
    from invoke import task as invoke_task

    kwargs.setdefault("auto_shortflags", False)
    return invoke_task(*args, klass=DomeTask, **kwargs)


def recipe(**kwargs: Any) -> Callable[[Callable[..., Any]], DomeRecipe]:
    """``dome_tasks.just.args.recipe`` with dome's manners (``help``, ``name`` …)."""
    kwargs.setdefault("auto_shortflags", False)

    def decorate(body: Callable[..., Any]) -> DomeRecipe:
        return DomeRecipe(body, **kwargs)

    return decorate


def is_dry(c: Context, dry_run: bool = False) -> bool:
    """``--dry-run`` on the task, or invoke's own ``--dry``."""
    return bool(dry_run or c.config.run.dry)


def request_for(
    manifest: Manifest, service: str, env: str | Environment, *, wrangler: str,
    remote_only: str | None = None,
) -> ResolvedRequest:
    """The task's words resolved once: ``""``/``"all"`` mean every service."""
    from dome_tasks.plan.target import resolve

    services = None if not service or service == "all" else [service]
    return resolve(manifest, services, env, wrangler=wrangler, remote_only=remote_only)


def confirm_protected(
    environment: Environment, services: Sequence[str], settings: Settings, yes: bool = False
) -> None:
    """Protected environments ask on a terminal; without one, ``--yes`` (or ``dome.yes`` in
    invoke's configuration, e.g. ``INVOKE_DOME_YES=1`` for ``just deploy`` in a script) is
    required."""
    env = environment
    if not env.protected or yes or settings.assume_yes:
        return
    what = f"{len(services)} service(s) ({', '.join(services)}) to {env.name}"
    if not sys.stdin.isatty():
        raise Refused(
            f"refusing to deploy {what}: {env.name} is protected and there is no terminal "
            "to confirm",
            hint="pass --yes (or set INVOKE_DOME_YES=1) to confirm non-interactively",
        )
    answer = input(f"Deploy {what}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Refused("deploy cancelled")


def parse_whole(
    value: int | str, flag: str, *, low: int, high: int | None = None, example: str = ""
) -> int:
    """A whole-number flag (invoke hands it over as text), else one clear :class:`UsageError`."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = None
    if number is None or number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise UsageError(
            f"{flag} {value!r} is not a whole number {bounds}",
            hint=f"e.g. {example or f'{flag} {low}'}",
        )
    return number


def boundary(func: F) -> F:
    """Turn library errors into one clear message and a non-zero exit: no traceback.

    Ctrl-C and SIGTERM stop the task (a running command's whole process group with it) and
    exit 128 + the signal: 130 for SIGINT, 143 for SIGTERM. The last task of an ``invoke``
    run leaves at once when it succeeds (:mod:`dome_tasks._leave`).
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from dome_tasks.events import stderr_as_events
        from dome_tasks.process import signals_as_interrupts

        with stderr_as_events(_logs_json(args, kwargs)) as events:
            try:
                with signals_as_interrupts():
                    result = func(*args, **kwargs)
            except DomeError as error:
                from dome_tasks.events import Redactor  # credentials never reach the last line

                message = Redactor.from_environ().text(f"error: {error}")
                if events is not None:
                    events.event("error", message=message, exit_code=error.exit_code)
                    raise Exit(code=error.exit_code) from None
                raise Exit(message, code=error.exit_code) from None
            except KeyboardInterrupt as interrupt:  # a signal that came between commands
                signum = getattr(interrupt, "signum", signal.SIGINT)
                print(f"interrupted by {signal.Signals(signum).name}", file=sys.stderr)
                raise Exit(code=128 + signum) from None
            except BrokenPipeError:  # `invoke history --json | head`: the reader has it all
                _quiet_stdout()
                raise Exit(code=0) from None
        from dome_tasks._leave import leave_if_last

        leave_if_last(func)  # the last task of the run: exit now, without the teardown
        return result

    return wrapper  # type: ignore[return-value]


def _logs_json(args: Sequence[Any], kwargs: dict[str, Any]) -> bool:
    """Does this task run with ``--log-format json`` (the flag, else invoke's configuration,
    else the deprecated ``DOME_LOG_FORMAT``)? Then every stderr line is one JSON event."""
    flag = kwargs.get("log_format")
    if flag:
        return flag == "json"
    if "log_format" not in kwargs:  # a task without the flag keeps plain stderr
        return False
    config = getattr(args[0], "config", None) if args else None
    dome = (config.get("dome", {}) if config is not None else {}) or {}
    return (dome.get("log_format") or os.environ.get("DOME_LOG_FORMAT")) == "json"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush of a closed pipe raises
    nothing more (Python's documented way to end quietly on SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
