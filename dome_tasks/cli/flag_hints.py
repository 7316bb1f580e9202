""""Did you mean" for a mistyped flag of any task (``invoke db-migrate-dev --dry-rn``), and what
a task still needs when a positional word is missing (``invoke logs silo``).

invoke's parser says only ``No idea what '--dry-rn' is!`` when a task without positional
words meets an unknown flag (dome's recipe tasks catch it earlier, see
:mod:`dome_tasks.just.args`). :func:`install` wraps the parser's word handling, once per
process: a word that looks like a flag, where the task's flag is expected and it names none,
becomes the same one-line parse error dome's recipes give, with the closest flag. Everything
else, including invoke's core flags and flag values that start with ``-``, parses as before.
A task that ends with a positional word missing gets, instead of invoke's ``did not receive
required positional arguments``, one message naming the word, with the task's usage, its
example and the manifest's choices for it (:func:`missing_words`).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoke import Collection

__all__ = ["install", "missing_words", "unknown_flag"]

_FLAG = re.compile(r"--?[A-Za-z]")


def unknown_flag(task: str, word: str, known: list[str], usage: str | None = None) -> str:
    """The message for ``word``, a flag ``task`` does not have (``known`` are its flags)."""
    close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else ""
    where = f"usage: {usage}; " if usage else ""
    return f"'{task}' has no flag {word!r}{hint} ({where}`invoke --help {task}` lists its flags)"


def missing_words(
    task: str, missing: list[str], usage: str | None = None, example: str | None = None,
    choices: dict[str, list[str]] | None = None,
) -> str:
    """The message for ``task`` run without its positional words ``missing`` (upper case, as
    the usage line names them); ``choices``: the values a word may take."""
    names = " and ".join([", ".join(missing[:-1]), missing[-1]] if len(missing) > 1 else missing)
    lines = [f"'{task}' needs {names}" + (f" (usage: {usage})" if usage else "")]
    if example:
        lines.append(f"  e.g. {example}")
    lines += [f"  {word}: {', '.join(choices[word])}" for word in missing if (choices or {}).get(word)]
    lines.append(f"  (`invoke --help {task}` explains each)")
    return "\n".join(lines)


def install(collection: Collection | None = None, manifest: str | Path | None = None) -> None:
    """Wrap invoke's ``ParseMachine.handle`` and ``complete_context`` (once per process; the
    latest *collection* and *manifest* give a missing word's example and choices)."""
    from invoke.exceptions import ParseError
    from invoke.parser.parser import ParseMachine

    _where.update(collection=collection, manifest=manifest)
    original = ParseMachine.handle
    if getattr(original, "dome", False):
        return
    _install_missing(ParseMachine, ParseError)

    def handle(self: Any, token: str) -> None:
        context = self.context
        if (
            context is not None
            and context.name
            and not self.ignore_unknown
            and self.current_state != "unknown"
            and _FLAG.match(token)
            and token not in context.flags
            and token not in context.inverse_flags
            and not self.waiting_for_flag_value
            and not context.missing_positional_args
            and not (self.initial is not None and token in self.initial.flags)
        ):
            known = sorted({*context.flags, *context.inverse_flags})
            raise ParseError(unknown_flag(context.name, token, known), context)
        original(self, token)

    handle.dome = True  # type: ignore[attr-defined]
    ParseMachine.handle = handle  # type: ignore[method-assign]


#: The namespace and manifest of this process (what :func:`install` was last given).
_where: dict[str, Any] = {}


def _install_missing(machine: Any, parse_error: type[Exception]) -> None:
    original = machine.complete_context

    def complete_context(self: Any) -> None:
        context = self.context
        if context is not None and context.name and context.missing_positional_args:
            args = context.missing_positional_args
            raise parse_error(_missing_message(context.name, args), context)
        original(self)

    machine.complete_context = complete_context


def _missing_message(task: str, args: list[Any]) -> str:
    from dome_tasks.cli.completion import ENV_PARAMS, SERVICE_PARAMS, manifest_names

    words = [arg.name.upper().replace("_", "-") for arg in args]
    services, environments = manifest_names(_where.get("manifest"))
    choices = {}
    for arg, word in zip(args, words):
        if arg.name in SERVICE_PARAMS and services:
            choices[word] = [*services, "all"] if task.endswith("deploy-env") else services
        elif arg.name in ENV_PARAMS and environments:
            choices[word] = [f"{name} ({', '.join(aliases)})" if aliases else name
                             for name, aliases in environments.items()]
    usage, example = getattr(args[0], "signature", None), _example(task)
    plain = task.rsplit(".", 1)[-1]
    if plain != task:  # called as dome.NAME (NAME may be the user's own recipe): say so
        usage = usage and (task + usage[len(plain):] if usage.startswith(plain) else usage)
        example = example and example.replace(f"invoke {plain} ", f"invoke {task} ", 1)
    return missing_words(task, words, usage, example, choices)


def _example(task: str) -> str | None:
    """The ``Example:`` line of *task*'s docstring, if it has one."""
    collection = _where.get("collection")
    try:
        body = collection[task] if collection is not None else None
    except (KeyError, ValueError):
        return None
    for line in (getattr(body, "__doc__", None) or "").splitlines():
        if line.strip().startswith("Example: "):
            return line.strip().removeprefix("Example: ")
    return None
