""""Did you mean" for a mistyped flag of any task: ``invoke db-migrate-dev --dry-rn``.

invoke's parser says only ``No idea what '--dry-rn' is!`` when a task without positional
words meets an unknown flag (dome's recipe tasks catch it earlier, see
:mod:`dome_tasks.just.args`). :func:`install` wraps the parser's word handling, once per
process: a word that looks like a flag, where the task's flag is expected and it names none,
becomes the same one-line parse error dome's recipes give, with the closest flag. Everything
else, including invoke's core flags and flag values that start with ``-``, parses as before.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

__all__ = ["install", "unknown_flag"]

_FLAG = re.compile(r"--?[A-Za-z]")


def unknown_flag(task: str, word: str, known: list[str], usage: str | None = None) -> str:
    """The message for ``word``, a flag ``task`` does not have (``known`` are its flags)."""
    close = difflib.get_close_matches(word.split("=", 1)[0], known, n=1, cutoff=0.6)
    hint = f": did you mean {close[0]}?" if close else ""
    where = f"usage: {usage}; " if usage else ""
    return f"'{task}' has no flag {word!r}{hint} ({where}`invoke --help {task}` lists its flags)"


def install() -> None:
    """Wrap invoke's ``ParseMachine.handle`` (idempotent)."""
    from invoke.exceptions import ParseError
    from invoke.parser.parser import ParseMachine

    original = ParseMachine.handle
    if getattr(original, "dome", False):
        return

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
