"""just's parameter semantics for invoke tasks, with the stock ``invoke`` command.

A task declared with :func:`recipe` binds its positional words the way ``just``
binds a recipe's parameters::

    from invoke import Collection
    from dome_tasks.just.args import recipe

    @recipe(help={"service": "Service to deploy (default: all)"})
    def deploy(c, service=""):
        '''Deploy SERVICE (or every service) to production.'''

    @recipe
    def test(c, *packages, verbose=False):
        '''Run the tests of PACKAGES (default: all).'''

    ns = Collection(deploy, test)   # a plain Collection: nothing else to do

==========================  ==========================  =====================
Python parameter            just parameter              ``invoke`` words
==========================  ==========================  =====================
``service``                 ``service``                 ``SERVICE`` (required)
``service=""``              ``service=""``              ``[SERVICE]``
``*packages``               ``*packages``               ``[PACKAGES...]``
``*packages`` + ``plus``    ``+packages``               ``PACKAGES...``
``verbose=False`` / kw-only  (no equivalent)             ``--verbose`` flag only
==========================  ==========================  =====================

``invoke deploy``, ``invoke deploy silo`` and ``invoke deploy --service silo``
all work; ``invoke --list`` shows ``deploy  [SERVICE] — Deploy …``. Binding is
greedy, as in just: a task takes as many following words as it has room for
(a variadic takes every remaining word), and only then does the next word name
another task. See ``docs/just-compatibility.md`` for every rule and where it
differs from plain invoke.

Mechanism: invoke's parser fills a task's positional `Argument` objects while
``ParserContext.missing_positional_args`` (``arg.value is None``) says they
are missing, and refuses to finish a context while any are. :class:`JustTask`
hands the parser :class:`JustArgument` objects whose ``value`` answers
"still hungry?" while the parser is placing a word and "satisfied?" when it
wraps a task up; it tells the two apart by finding the parser frame that asked
(`_parser_phase`). Nothing global is patched, so plain ``@task`` tasks in the
same collection parse exactly as before. Tested with invoke 2.2 and 3.0.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple

from invoke.exceptions import ParseError
from invoke.parser import Argument
from invoke.parser.parser import ParseMachine
from invoke.tasks import Task

__all__ = [
    "JustArgument",
    "JustTask",
    "Param",
    "bind",
    "params_from_signature",
    "recipe",
    "usage",
]

Kind = Literal["singular", "plus", "star"]

#: Words that never bind to an optional or variadic parameter, so that
#: ``invoke deploy --help`` shows help instead of deploying "--help".
HELP_WORDS = frozenset({"-h", "--help"})


class Param(NamedTuple):
    """One just-style positional parameter."""

    name: str
    kind: Kind = "singular"
    default: str | None = None
    has_default: bool = False

    @property
    def required(self) -> bool:
        """True when the parameter needs at least one word."""
        return not self.has_default and self.kind != "star"

    @property
    def variadic(self) -> bool:
        return self.kind != "singular"

    def metavar(self) -> str:
        """The parameter as just's ``--usage`` shows it, upper-cased."""
        word = self.name.upper().replace("_", "-")
        if self.variadic:
            word += "..."
        return word if self.required else f"[{word}]"

    def just_syntax(self) -> str:
        """The parameter as a justfile declares it: ``name``, ``name="x"``, ``+name``."""
        prefix = {"singular": "", "plus": "+", "star": "*"}[self.kind]
        text = prefix + self.name
        if self.has_default:
            text += "=" + _just_string(str(self.default))
        return text


def _just_string(value: str) -> str:
    """Quote ``value`` as a just string literal."""
    if "'" not in value and "\\" not in value:
        return f"'{value}'" if value else '""'
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def usage(name: str, params: Sequence[Param], options: bool = False) -> str:
    """The signature line just would print: ``deploy [SERVICE]``."""
    words = [name] + (["[OPTIONS]"] if options else []) + [p.metavar() for p in params]
    return " ".join(words)


def bind(
    name: str, params: Sequence[Param], words: Sequence[str]
) -> tuple[dict[str, Any], list[str]]:
    """Bind ``words`` to ``params`` as just does; return ``(binding, leftover)``.

    The recipe takes ``min(len(words), max)`` words (all of them when it has a
    variadic); the leftover words are the next recipes. Raises `ParseError`
    (invoke's wording) when too few words are given.
    """
    fixed = [p for p in params if not p.variadic]
    variadic = next((p for p in params if p.variadic), None)
    take = len(words) if variadic else min(len(words), len(fixed))
    taken, rest = list(words[:take]), list(words[take:])
    binding: dict[str, Any] = {}
    missing = []
    for i, param in enumerate(fixed):
        if i < len(taken):
            binding[param.name] = taken[i]
        elif param.has_default:
            binding[param.name] = param.default
        else:
            missing.append(param.name)
    if variadic is not None:
        extra = taken[len(fixed) :]
        if not extra and variadic.has_default:
            extra = str(variadic.default).split()
        if not extra and variadic.kind == "plus":
            missing.append(variadic.name)
        binding[variadic.name] = extra
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        raise ParseError(f"'{name}' did not receive required positional arguments: {names}")
    return binding, rest


# --------------------------------------------------------------------------
# parser hook


def _parser_phase() -> tuple[str, ParseMachine, Any] | None:
    """Which parser step is asking for an argument's value, if any.

    Returns ``("place", machine, word)`` while the parser decides where a word
    goes, ``("finish", machine, None)`` while it checks a task is complete, and
    None outside the parser (e.g. ``ParserContext.as_kwargs``).
    """
    frame = sys._getframe(2)
    for _ in range(8):
        if frame is None:
            return None
        phase = _PHASES.get(frame.f_code.co_name)
        if phase is not None:
            machine = frame.f_locals.get("self")
            if isinstance(machine, ParseMachine):
                word = frame.f_locals.get("token", frame.f_locals.get("value"))
                return phase, machine, word
        frame = frame.f_back
    return None


_PHASES = {
    "handle": "place",
    "see_positional_arg": "place",
    "complete_context": "finish",
    "check_ambiguity": "finish",
}


def _help_requested(machine: ParseMachine) -> bool:
    initial = machine.initial
    if initial is None or "--help" not in initial.flags:
        return False
    return bool(initial.flags["--help"].value)


class _Filled:
    """Non-None stand-in the parser sees for a satisfied argument."""

    def __repr__(self) -> str:
        return "<filled>"


_FILLED = _Filled()


class JustArgument(Argument):
    """A positional `Argument` that binds like a just parameter."""

    def __init__(self, *, param: Param, task_name: str, signature: str, **kwargs: Any) -> None:
        kwargs.pop("kind", None)
        default = kwargs.pop("default", None)
        kind = type(default) if isinstance(default, int) and not param.variadic else str
        super().__init__(kind=kind, default=default, positional=True, **kwargs)
        self.param = param
        self.task_name = task_name
        self.signature = signature
        self.items: list[Any] = []

    # What the parser asks -------------------------------------------------
    @property  # type: ignore[override]
    def value(self) -> Any:
        state = _parser_phase()
        if state is None:
            return self.final_value()
        phase, machine, word = state
        if phase == "place":
            if isinstance(word, str) and word in HELP_WORDS and machine.initial is not None:
                return _FILLED
            if self.hungry():
                return None
            self._refuse_extra(machine, word)
            return _FILLED
        if self.satisfied() or _help_requested(machine):
            return _FILLED
        return None

    @value.setter
    def value(self, arg: Any) -> None:
        self.set_value(arg, cast=True)

    def set_value(self, value: Any, cast: bool = True) -> None:
        self.raw_value = value
        if cast and isinstance(value, str):
            value = self.kind(value)
        if self.param.variadic:
            self.items.append(value)
            self._value = list(self.items)
        else:
            self._value = value

    @property
    def got_value(self) -> bool:
        return bool(self.items) if self.param.variadic else self._value is not None

    # Binding state ----------------------------------------------------------
    def hungry(self) -> bool:
        """Would this parameter take one more positional word?"""
        return self.param.variadic or self._value is None

    def satisfied(self) -> bool:
        """May the task finish without more words for this parameter?"""
        if self.param.variadic:
            return bool(self.items) or self.param.kind == "star" or self.param.has_default
        return self._value is not None or self.param.has_default

    def final_value(self) -> Any:
        """The value handed to the task body."""
        if self.param.variadic:
            return list(self.items)
        if self._value is not None:
            return self._value
        return self.default

    def _refuse_extra(self, machine: ParseMachine, word: Any) -> None:
        """Name the task and the extra word when it cannot start another task."""
        context = machine.context
        slots = [a for a in context.positional_args if isinstance(a, JustArgument)]
        if not slots or slots[-1] is not self or any(a.hungry() for a in slots):
            return
        if machine.ignore_unknown or not isinstance(word, str) or word in machine.contexts:
            return
        if machine.initial is not None and word in machine.initial.flags:
            return
        raise ParseError(
            f"'{self.task_name}' received an unexpected extra positional argument: "
            f"'{word}' (usage: {self.signature})",
            context,
        )


# --------------------------------------------------------------------------
# tasks


def params_from_signature(func: Callable[..., Any], plus: bool = False) -> tuple[Param, ...]:
    """The just-style positional parameters of ``func`` (after its Context).

    Positional parameters without a default are required, those with a
    non-bool default are optional, ``*args`` is ``*args`` (``+args`` when
    ``plus``). Bool defaults and keyword-only parameters stay invoke flags.
    """
    sig = inspect.signature(func)
    result = []
    for param in list(sig.parameters.values())[1:]:
        if param.kind is param.VAR_KEYWORD:
            raise TypeError(f"{func.__name__}: **{param.name} cannot be a task parameter")
        if param.kind is param.KEYWORD_ONLY:
            continue
        if param.kind is param.VAR_POSITIONAL:
            result.append(Param(param.name, "plus" if plus else "star"))
            continue
        if param.default is param.empty:
            result.append(Param(param.name))
        elif isinstance(param.default, bool):
            continue
        else:
            default = None if param.default is None else param.default
            result.append(Param(param.name, default=default, has_default=True))
    _check_order(func.__name__, result)
    return tuple(result)


def _check_order(name: str, params: Sequence[Param]) -> None:
    """Refuse what just refuses: a required parameter after a defaulted one."""
    seen_default = None
    for param in params:
        if param.has_default or param.kind == "star":
            seen_default = seen_default or param.name
        elif seen_default is not None:
            raise TypeError(
                f"{name}: non-default parameter `{param.name}` follows default parameter "
                f"`{seen_default}` (just rejects this order)"
            )


class JustTask(Task):
    """An invoke `Task` whose positional parameters bind like a just recipe's."""

    def __init__(
        self,
        body: Callable[..., Any],
        *args: Any,
        plus: bool = False,
        params: Sequence[Param] | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("positional") is not None or kwargs.get("optional"):
            raise TypeError("@recipe reads positional parameters from the signature")
        super().__init__(body, *args, **kwargs)
        self.params = tuple(params) if params is not None else params_from_signature(body, plus)
        self.positional = [p.name for p in self.params]
        self.doc = inspect.getdoc(body) or ""
        self.__doc__ = self._display_doc()

    @property
    def signature(self) -> str:
        """``deploy [SERVICE]``: the task's usage line, as just prints it."""
        names = {p.name for p in self.params}
        options = any(n not in names for n in self.argspec(self.body).parameters)
        return usage(self.name, self.params, options)

    def _display_doc(self) -> str:
        lines = self.doc.splitlines() or [""]
        args = self.signature.split(" ", 1)[1] if " " in self.signature else ""
        first = f"{args} — {lines[0]}" if args and lines[0] else (args or lines[0])
        body = "\n".join([first, *lines[1:]]).rstrip()
        return f"{body}\n\nUsage: {self.signature}\n"

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        by_name = {p.name: p for p in self.params}
        out = []
        for arg in args:
            param = by_name.get(arg.name)
            if param is None:
                out.append(arg)
                continue
            out.append(
                JustArgument(
                    param=param,
                    task_name=self.name,
                    signature=self.signature,
                    names=arg.names,
                    default=None if param.variadic else arg.default,
                    help=arg.help,
                    attr_name=arg.attr_name,
                )
            )
        return out

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        variadic = next((p.name for p in self.params if p.variadic), None)
        if variadic is not None and variadic in kwargs:
            # invoke hands every value over as a keyword; *args must go positionally.
            extra = list(kwargs.pop(variadic) or ())
            lead = list(args)
            fixed = [p for p in self.params if not p.variadic]
            sig = inspect.signature(self.body).parameters
            for param in fixed[len(lead) - 1 :]:
                if param.name in kwargs:
                    lead.append(kwargs.pop(param.name))
                else:
                    lead.append(sig[param.name].default if param.name in sig else param.default)
            args = (*lead, *extra)
        return super().__call__(*args, **kwargs)


def recipe(
    *args: Any,
    plus: bool = False,
    **kwargs: Any,
) -> Any:
    """Decorate a task function so its positional parameters bind like just's.

    Use bare (``@recipe``) or with `invoke.task` keywords (``help``, ``name``,
    ``aliases``, ``pre``, ``post``, ``default``...). ``plus=True`` makes
    ``*args`` one-or-more (just's ``+args``) instead of zero-or-more.
    """
    if len(args) == 1 and callable(args[0]) and not isinstance(args[0], Task):
        return JustTask(args[0], plus=plus, **kwargs)
    pre = list(args) or kwargs.pop("pre", None)

    def decorate(body: Callable[..., Any]) -> JustTask:
        return JustTask(body, plus=plus, pre=pre, **kwargs)

    return decorate


def just_tasks(tasks: Iterable[Task]) -> list[JustTask]:
    """The `JustTask` objects among ``tasks``."""
    return [t for t in tasks if isinstance(t, JustTask)]
