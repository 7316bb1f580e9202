"""Is the justfile in step with dome's tasks? The ``just.check`` and ``just.sync`` tasks.

`check_parity` checks every recipe that runs ``invoke TASK``: the task exists, takes the same
positional parameters (or the recipe passes every word on with ``*args`` and ``"$@"``) and gets
them in order. `check_justfile` adds what the generated block must give: a recipe for every dome
task, none shadowed by a recipe of the user's, the block as ``just.sync`` would write it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from invoke import Collection, Context
from invoke.exceptions import Exit
from invoke.tasks import Task, task

from dome_tasks.errors import JustError
from dome_tasks.just.args import Param
from dome_tasks.just.delegation import delegations
from dome_tasks.just.dump import Justfile, dump_json, load_justfile, parse_dump

if TYPE_CHECKING:
    from dome_tasks.just.block import BlockSpec

__all__ = [
    "Report",
    "check_justfile",
    "check_parity",
    "parity_tasks",
    "replaced_recipes",
    "write_delegating_block",
]


def _py(name: str) -> str:
    return name.replace("-", "_")


def _signature(name: str, params: Iterable[Param]) -> str:
    return " ".join([name, *(p.just_syntax() for p in params)])


def _same(a: Param, b: Param) -> bool:
    return (
        _py(a.name) == _py(b.name)
        and a.kind == b.kind
        and a.has_default == b.has_default
        and (not a.has_default or str(a.default) == str(b.default))
    )


def _forwarded(word: str) -> str:
    if word in ("$@", '"$@"'):
        return "$@"
    m = re.fullmatch(r"\{\{\s*(?:quote\()?\s*([A-Za-z_][\w-]*)\s*\)?\s*\}\}", word)
    return _py(m.group(1)) if m else word


def check_parity(justfile: str | os.PathLike[str] | Justfile, collection: Collection) -> list[str]:
    """Problems with recipes that delegate to invoke; empty when in parity.

    Each delegating recipe must name an existing task whose positional parameters match the
    recipe's (names, order, ``+``/``*`` kinds, defaults) and must forward them in order
    (``{{a}} {{b}}`` or ``"$@"``). A recipe ``NAME *args`` forwarding ``"$@"`` passes words
    and flags through unchanged, so any task's parameters match it.
    """
    jf = justfile if isinstance(justfile, Justfile) else load_justfile(justfile)
    problems = []
    for d in delegations(jf):
        recipe = jf.recipes[d.recipe]
        try:
            t = collection[d.task]
        except KeyError:
            problems.append(
                f"{jf.path.name}: recipe '{d.recipe}' runs 'invoke {d.task}' "
                f"but there is no task '{d.task}'"
            )
            continue
        forwarded = [_forwarded(a) for a in d.args]
        mine, theirs = recipe.positional, _task_params(t)
        passthrough = [p.kind for p in mine] == ["star"] and not mine[0].has_default
        if passthrough and forwarded == ["$@"]:
            mine = theirs
        if len(mine) != len(theirs) or not all(map(_same, mine, theirs)):
            problems.append(
                f"{jf.path.name}: recipe '{_signature(d.recipe, mine)}' and task "
                f"'{_signature(d.task, theirs)}' have different parameters"
            )
            continue
        if "$@" in forwarded:
            if not recipe.positional_arguments:
                problems.append(
                    f"{jf.path.name}: recipe '{d.recipe}' forwards \"$@\" "
                    "without [positional-arguments]"
                )
        elif forwarded != [_py(p.name) for p in mine]:
            problems.append(
                f"{jf.path.name}: recipe '{d.recipe}' passes {list(d.args)} to "
                f"'invoke {d.task}' instead of its parameters in order"
            )
    return problems


class Report(NamedTuple):
    """What ``just.check`` prints: notes (shared names) and problems (non-empty: it fails)."""

    notes: tuple[str, ...]
    problems: tuple[str, ...]
    recipes: int = 0


def _lookup(spec: BlockSpec) -> Collection:
    """dome's tasks by plain name and under ``PREFIX.``, for resolving delegations."""
    lookup, namespaced = Collection(), Collection(spec.prefix)
    for name, t in spec.tasks.tasks.items():
        lookup.add_task(t, name=name)
        namespaced.add_task(t, name=name)
    lookup.add_collection(namespaced)
    return lookup


def check_justfile(justfile: str | os.PathLike[str], spec: BlockSpec) -> Report:
    """Does ``justfile`` give every dome task a recipe, none shadowed, as ``just.sync`` writes?"""
    from dome_tasks.just.block import entries, hidden_recipes, plan_rewrite

    path = Path(justfile).resolve()
    if not path.exists():
        return Report((), (f"{path}: no such justfile: `invoke just.sync` creates it",))
    problems: list[str] = []
    try:
        rewrite = plan_rewrite(path, spec)
    except JustError as error:
        return Report((), (str(error),))
    notes = tuple(rewrite.coexistence.notes())
    try:
        full = dump_json(path)
    except JustError as error:
        hint = "run `invoke just.sync`: it renames dome's recipes that clash with yours"
        return Report(notes, (f"{error}\n  hint: {hint}",))
    jf = parse_dump(full, path)
    for name in hidden_recipes(rewrite, full):
        problems.append(
            f"{path.name}: your recipe '{name}' is not what `just {name}` runs: a generated "
            f"recipe of that name replaces it (allow-duplicate-recipes): run `invoke just.sync`"
        )
    dome = {d.recipe: d.target(spec.prefix) for d in delegations(jf)}
    if not rewrite.had_block and not set(dome.values()) & set(spec.names()) and not problems:
        problems.append(
            f"{path.name}: no recipe delegates to dome-tasks yet: run `invoke just.sync` "
            f"to add a recipe per dome task"
        )
        return Report(notes, tuple(problems))
    shadowed = set(rewrite.coexistence.shadowed())
    items = entries(spec, rewrite.coexistence)
    for e in items:
        task_name = e.target.split(".", 1)[1]
        if dome.get(e.recipe) == task_name:
            continue
        if e.recipe in jf.recipes:
            problems.append(
                f"{path.name}: recipe '{e.recipe}' should run dome's '{task_name}' task but "
                f"runs something else: run `invoke just.sync`"
            )
        elif task_name in shadowed:
            problems.append(
                f"{path.name}: dome's '{task_name}' task is shadowed by your recipe "
                f"'{task_name}' and has no '{e.recipe}' recipe: run `invoke just.sync`"
            )
        else:
            problems.append(
                f"{path.name}: dome's '{task_name}' task has no recipe '{e.recipe}': "
                f"run `invoke just.sync`"
            )
    if not problems and rewrite.changed:
        problems.append(
            f"{path.name}: the generated block differs from what `invoke just.sync` writes "
            f"(a task's doc, flags or name changed): run `invoke just.sync`"
        )
    problems += check_parity(jf, _lookup(spec))
    return Report(notes, tuple(problems), len(items))


def replaced_recipes(
    justfile: str | os.PathLike[str], spec: BlockSpec | Callable[[], BlockSpec], full: dict
) -> list[str]:
    """The user's recipes a generated recipe replaces (only possible with
    ``set allow-duplicate-recipes`` and a block written by an older dome-tasks)."""
    settings = full.get("settings") or {}
    if not settings.get("allow_duplicate_recipes"):
        return []
    from dome_tasks.just.block import BLOCK_BEGIN, hidden_recipes, plan_rewrite

    path = Path(justfile)
    if BLOCK_BEGIN not in path.read_text():
        return []
    try:
        return hidden_recipes(plan_rewrite(path, _spec(spec)), full)
    except JustError:
        return []


def write_delegating_block(justfile: str | os.PathLike[str], spec: BlockSpec | Collection) -> bool:
    """Write or update the generated block of ``justfile``; True if it changed."""
    from dome_tasks.just.block import plan_rewrite, write_rewrite

    return write_rewrite(plan_rewrite(justfile, _spec(spec)))


def _spec(spec: BlockSpec | Collection | Callable[[], BlockSpec]) -> BlockSpec:
    """The block's spec: given, made from dome's tasks, or made now by the function given."""
    from dome_tasks.just.block import BlockSpec

    if isinstance(spec, Collection):
        return BlockSpec(spec)
    return spec if isinstance(spec, BlockSpec) else spec()


def _task_params(t: Task) -> tuple[Param, ...]:
    from dome_tasks.just.block import task_params

    return task_params(t)


def parity_tasks(
    justfile: str | os.PathLike[str], spec: BlockSpec | Collection | Callable[[], BlockSpec]
) -> Collection:
    """A ``just`` collection with ``check`` and ``sync`` tasks for ``justfile`` (*spec* may be
    a function that makes it when one of them runs: listing them imports no block code)."""
    shown = Path(justfile)

    @task
    def check(c: Context) -> None:
        """Check the justfile runs every dome task, shadows none, and delegates faithfully."""
        report = check_justfile(justfile, _spec(spec))
        _print_notes(shown, report.notes)
        if report.problems:
            raise Exit("\n".join(report.problems), 1)
        print(f"{shown}: {report.recipes} recipes run dome's tasks, in step with them")

    @task
    def sync(c: Context) -> None:
        """Write the justfile's generated block: a recipe per dome task; yours stay as they are."""
        from dome_tasks.just.block import plan_rewrite, write_rewrite

        try:
            rewrite = plan_rewrite(justfile, _spec(spec))
            changed = write_rewrite(rewrite)
        except JustError as error:
            raise Exit(f"error: {error}", 1) from None
        except OSError as error:
            raise Exit(f"error: not writing {shown}: {error.strerror}: {error.filename}", 1) from None
        _print_notes(shown, tuple(rewrite.coexistence.notes()))
        print(f"{shown}: {'updated' if changed else 'already up to date'}")

    return Collection("just", check, sync)


def _print_notes(shown: Path, notes: tuple[str, ...]) -> None:
    if notes:
        print(f"{shown}: {len(notes)} of your recipes have the name of a dome task; yours win:")
        for note in notes:
            print(f"  {note}")
