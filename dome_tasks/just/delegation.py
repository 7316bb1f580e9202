"""Recipe lines that delegate to invoke: ``invoke TASK ARGS…`` (also ``inv``, ``{{dome_invoke}}``)."""

from __future__ import annotations

import os
import re
import shlex
from typing import NamedTuple

from dome_tasks.just.dump import Justfile

__all__ = ["Delegation", "delegations"]

#: invoke's core flags that take a value (skipped when looking for the task name).
_VALUE_CORE_FLAGS = {"-c", "--collection", "-r", "--search-root", "-f", "--config"}
_INVOKE_WORDS = {"invoke", "inv"}
#: A just variable standing for invoke, e.g. ``{{invoke}}`` or ``{{dome_invoke}}``.
_INVOKE_VARIABLE = re.compile(r"\{\{\s*[A-Za-z_][\w-]*invoke\s*\}\}")


class Delegation(NamedTuple):
    """A recipe line that runs ``invoke TASK ARGS…``."""

    recipe: str
    task: str
    args: tuple[str, ...]
    line: str

    def target(self, prefix: str) -> str:
        """The task's name without the ``prefix.`` namespace: ``dome.deploy`` → ``deploy``."""
        return self.task.removeprefix(prefix + ".")


def delegations(justfile: Justfile) -> list[Delegation]:
    """Every recipe line of ``justfile`` that delegates to an invoke task."""
    found = []
    for recipe in justfile.recipes.values():
        for line in recipe.body:
            if "inv" not in line:  # cheap: most lines run something else
                continue
            words = _split(line.lstrip().lstrip("@-").strip())
            for i, word in enumerate(words):
                if not _is_invoke(word):
                    continue
                rest = words[i + 1 :]
                j = 0
                while j < len(rest) and rest[j].startswith("-"):
                    j += 2 if rest[j] in _VALUE_CORE_FLAGS else 1
                if j < len(rest):
                    found.append(Delegation(recipe.name, rest[j], tuple(rest[j + 1 :]), line))
                break
    return found


def _is_invoke(word: str) -> bool:
    return os.path.basename(word) in _INVOKE_WORDS or bool(_INVOKE_VARIABLE.fullmatch(word))


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()
