"""Which names a justfile's own recipes keep, and the names dome's tasks take instead (pure).

A user's recipe is never replaced. Every dome task is reachable as ``invoke PREFIX.TASK``; it
also keeps its plain name (``invoke deploy-env``, ``just deploy-env``) unless the justfile has a
recipe or alias of that name, in which case the plain name stays the user's and the generated
just recipe is ``PREFIX-TASK`` (``just dome-deploy``). A recipe that merely delegates to the dome
task of its own name (``deploy: invoke dome.deploy``, the generated block) is dome's, not the
user's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from dome_tasks.just.delegation import Delegation, delegations
from dome_tasks.just.dump import Justfile

__all__ = ["DEFAULT_PREFIX", "Coexistence", "check_prefix", "dome_recipes"]

DEFAULT_PREFIX = "dome"


def check_prefix(prefix: str) -> str:
    """``prefix`` if it can name both an invoke collection and the start of a just recipe."""
    import re

    if not re.fullmatch(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*", prefix):
        raise ValueError(
            f"prefix {prefix!r}: use lower-case letters and digits, e.g. prefix='dome' or 'cf'"
        )
    return prefix


def dome_recipes(
    justfile: Justfile, tasks: Iterable[str], prefix: str, found: Iterable[Delegation] | None = None
) -> frozenset[str]:
    """Recipes of ``justfile`` that only stand in for a dome task: recipe ``T`` or ``PREFIX-T``
    running ``invoke T`` or ``invoke PREFIX.T`` (the generated block, or a hand-written twin).
    ``found``: the justfile's `delegations`, if already known."""
    names = set(tasks)
    owned = set()
    for d in delegations(justfile) if found is None else found:
        target = d.target(prefix)
        if target in names and d.recipe in (target, f"{prefix}-{target}"):
            owned.add(d.recipe)
    return frozenset(owned)


class Coexistence(NamedTuple):
    """How dome's tasks and a justfile's own recipes share names."""

    tasks: tuple[str, ...]
    user: frozenset[str] = frozenset()
    prefix: str = DEFAULT_PREFIX
    known: bool = True
    private: frozenset[str] = frozenset()
    aliases: frozenset[str] = frozenset()

    @classmethod
    def of(cls, justfile: Justfile | None, tasks: Iterable[str], prefix: str = DEFAULT_PREFIX,
           *, every_name: bool = False, found: Iterable[Delegation] | None = None) -> Coexistence:
        """The names ``justfile``'s own recipes hold (none when it is None).

        ``every_name``: count recipes that delegate to dome as the user's too (what a rewrite of
        the generated block must not redefine, when ``justfile`` is the text outside it).
        ``found``: the justfile's `delegations`, if already known.
        """
        tasks = tuple(tasks)
        if justfile is None:
            return cls(tasks, prefix=prefix)
        user = justfile.names()
        if not every_name:
            user -= dome_recipes(justfile, tasks, prefix, found)
        private = frozenset(r.name for r in justfile.recipes.values() if r.private)
        aliases = frozenset(justfile.aliases)
        return cls(tasks, frozenset(user), prefix, private=private & user, aliases=aliases & user)

    @classmethod
    def unknown(cls, tasks: Iterable[str], prefix: str = DEFAULT_PREFIX) -> Coexistence:
        """The justfile could not be read: no dome task may take a plain name."""
        return cls(tuple(tasks), prefix=prefix, known=False)

    def _holds(self, task: str) -> bool:
        return task in self.user or task in {u.replace("_", "-") for u in self.user}

    def shadowed(self) -> tuple[str, ...]:
        """Dome tasks whose plain name a user recipe holds."""
        return tuple(t for t in self.tasks if self._holds(t))

    def plain(self, task: str) -> bool:
        """Does dome's ``task`` keep its plain invoke name?"""
        return self.known and not self._holds(task)

    def invoke_path(self, task: str) -> str:
        """The name that always reaches dome's task: ``dome.deploy``."""
        return f"{self.prefix}.{task}"

    def recipe(self, task: str) -> str:
        """The generated just recipe for dome's ``task``: ``deploy-env``, or ``dome-deploy``."""
        return f"{self.prefix}-{task}" if self._holds(task) else task

    def conflicts(self) -> list[str]:
        """Names the user holds that dome-tasks needs; each with how to fix it."""
        problems = []
        if self.prefix in self.user:
            problems.append(
                f"your recipe '{self.prefix}' has the name of dome-tasks' namespace: rename it, "
                f"or pass another prefix: namespace(..., prefix='cf')"
            )
        for task in self.shadowed():
            alt = self.recipe(task)
            if alt in self.user:
                problems.append(
                    f"your recipes '{task}' and '{alt}' both take names dome-tasks' '{task}' task "
                    f"needs: rename one, or pass another prefix: namespace(..., prefix='cf')"
                )
        return problems

    def notes(self) -> list[str]:
        """One line per shared name: whose it is and where dome's task went."""
        lines = []
        for task in self.shadowed():
            kind = "alias" if task in self.aliases else (
                "private recipe" if task in self.private else "recipe")
            lines.append(
                f"{task}: your justfile's {kind}; dome's task is `invoke {self.invoke_path(task)}`"
                f" / `just {self.recipe(task)}`"
            )
        return lines
