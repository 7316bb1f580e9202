"""The generated block of just recipes that hand their words to dome's tasks, written safely.

One recipe per dome task, between two marker lines, e.g.::

    # [OPTIONS] SERVICE ENV — Deploy SERVICE ('all' for every service) to ENV.
    [group('dome')]
    [positional-arguments]
    deploy-env *args:
        @{{dome_invoke}} dome.deploy-env "$@"

``*args`` with ``"$@"`` passes every word and flag on exactly (``just deploy-env silo staging
--dry-run --yes``); invoke checks them. Recipes sit in the group ``dome`` (CI-only tasks in
``dome-ci``). ``dome_invoke`` finds the invoke that installed dome-tasks: ``$DOME_INVOKE``,
else ``.venv/bin/invoke`` beside the justfile, else ``invoke`` on PATH (with a clear message
when there is none), and points it at the tasks module's folder (``--search-root``).

`plan_rewrite` reads the text outside the block with the real just (``--dump``), names each
recipe after `Coexistence` (a user's recipe keeps its name; dome's task becomes ``dome-NAME``),
and `write_rewrite` replaces the file atomically only after just accepts the new text
(``--dump`` and ``--summary``) and every recipe, alias, setting and variable of the user's is
exactly as before.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke import Collection
from invoke.tasks import Task

from dome_tasks.errors import JustfileError
from dome_tasks.just.args import JustTask, Param
from dome_tasks.just.coexist import DEFAULT_PREFIX, Coexistence
from dome_tasks.just.dump import dump_json, dump_text, parse_dump, summary

__all__ = [
    "BLOCK_BEGIN",
    "BLOCK_END",
    "INVOKE_VAR",
    "BlockSpec",
    "Entry",
    "Rewrite",
    "describe",
    "entries",
    "hidden_recipes",
    "plan_rewrite",
    "render_block",
    "split_block",
    "task_params",
    "write_rewrite",
]

BLOCK_BEGIN = "# >>> dome-tasks delegating recipes (generated from the invoke tasks) >>>"
BLOCK_END = "# <<< dome-tasks delegating recipes <<<"
INVOKE_VAR = "dome_invoke"
MISSING_INVOKE = (
    "dome-tasks: invoke not found: activate the virtualenv that has dome-tasks, "
    "create .venv beside the justfile, or set DOME_INVOKE"
)


@dataclass(frozen=True)
class BlockSpec:
    """What the block delegates to.

    ``tasks``: dome's tasks (a flat collection); ``prefix``: their invoke namespace and the
    start of renamed recipes; ``ci``: task names grouped apart as ``PREFIX-ci``;
    ``search_root``: the tasks module's folder relative to the justfile's (``.``: the same).
    """

    tasks: Collection
    prefix: str = DEFAULT_PREFIX
    ci: frozenset[str] = field(default_factory=frozenset)
    search_root: str = "."

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.tasks.tasks))


@dataclass(frozen=True)
class Entry:
    """One generated recipe."""

    recipe: str
    target: str
    doc: str
    group: str


def task_params(t: Task) -> tuple[Param, ...]:
    """The just-style positional parameters of any invoke task."""
    if isinstance(t, JustTask):
        return t.params
    return tuple(Param(a.name) for a in t.get_arguments() if a.positional)


def describe(t: Task) -> str:
    """The recipe's doc line, as ``invoke --list`` shows the task: ``[OPTIONS] SERVICE ENV — doc``."""
    params = task_params(t)
    names = {p.name for p in params}
    flags = any(a.name not in names for a in t.get_arguments())
    usage = " ".join((["[OPTIONS]"] if flags else []) + [p.metavar() for p in params])
    doc = (inspect.getdoc(t.body) or "").splitlines()
    first = doc[0].strip() if doc else ""
    return " — ".join(part for part in (usage, first) if part)


def entries(spec: BlockSpec, coexistence: Coexistence) -> list[Entry]:
    """The recipes of the block, the main group first, each group by name."""
    out = []
    for name in spec.names():
        group = f"{spec.prefix}-ci" if name in spec.ci else spec.prefix
        out.append(Entry(coexistence.recipe(name), coexistence.invoke_path(name),
                         describe(spec.tasks[name]), group))
    return sorted(out, key=lambda e: (e.group != spec.prefix, e.group, e.recipe))


def _just_str(text: str) -> str:
    """A just single-quoted (raw) string; refuses what one cannot hold."""
    if "'" in text or "\n" in text:
        raise JustfileError(f"cannot put {text!r} in a justfile string")
    return f"'{text}'"


def invoke_definition(search_root: str = ".") -> list[str]:
    """The lines that define ``dome_invoke``."""
    folder = "justfile_directory()"
    if search_root not in ("", "."):
        folder = f"justfile_directory() / {_just_str(Path(search_root).as_posix())}"
    venv = "justfile_directory() / '.venv/bin/invoke'"
    guard = f'command -v invoke >/dev/null || {{ echo "{MISSING_INVOKE}" >&2; exit 127; }}; invoke'
    return [
        "# The invoke that installed dome-tasks: $DOME_INVOKE (e.g. \"uv run invoke\"), else",
        "# .venv/bin/invoke beside this justfile, else invoke on PATH (activated virtualenv).",
        f"{INVOKE_VAR} := env('DOME_INVOKE', if path_exists({venv}) == 'true' {{",
        f"    quote({venv})",
        "} else {",
        f"    {_just_str(guard)}",
        f"}}) + ' --search-root ' + quote({folder})",
    ]


def render_block(
    items: Sequence[Entry], *, define_invoke: bool = True, search_root: str = "."
) -> str:
    """The marked block: the ``dome_invoke`` variable (unless the user defines it) and recipes."""
    out = [
        BLOCK_BEGIN,
        "# Written by `invoke just.sync` from dome-tasks' tasks: edit those, not this block.",
        "# Each recipe passes its words and flags on: `just deploy-env silo staging --dry-run`",
        "# runs `invoke dome.deploy-env silo staging --dry-run`. Your own recipes keep their",
        "# names; a dome task whose name one of them has is here as dome-NAME.",
        "",
    ]
    if define_invoke:
        out += [*invoke_definition(search_root), ""]
    for e in items:
        if e.doc:
            out.append("# " + " ".join(e.doc.split()))
        out += [
            f"[group({_just_str(e.group)})]",
            "[positional-arguments]",
            f"{e.recipe} *args:",
            f'    @{{{{{INVOKE_VAR}}}}} {e.target} "$@"',
            "",
        ]
    out.append(BLOCK_END)
    return "\n".join(out) + "\n"


def split_block(text: str, where: str = "justfile") -> tuple[str, str | None, str]:
    """``(before, block, after)``; without a block, ``before`` is the text ready to append to."""
    start = text.find(BLOCK_BEGIN)
    if start < 0:
        if text and not text.endswith("\n"):
            text += "\n"
        if text.strip() and not text.endswith("\n\n"):
            text += "\n"
        return text, None, ""
    if start > 0 and text[start - 1] != "\n":
        raise JustfileError(f"'{BLOCK_BEGIN}' must start a line", where=where)
    end = text.find(BLOCK_END, start)
    if end < 0:
        raise JustfileError(
            f"'{BLOCK_BEGIN}' without '{BLOCK_END}'", where=where,
            hint="restore the end marker, or delete the start marker and the generated recipes",
        )
    stop = text.find("\n", end)
    stop = len(text) if stop < 0 else stop + 1
    return text[:start], text[start:stop], text[stop:]


@dataclass(frozen=True)
class Rewrite:
    """The justfile before and after (re)writing its block, and the user's part as just reads it."""

    path: Path
    old: str
    new: str
    coexistence: Coexistence
    user_dump: dict[str, Any]
    had_block: bool

    @property
    def changed(self) -> bool:
        return self.new != self.old


def plan_rewrite(justfile: str | os.PathLike[str], spec: BlockSpec) -> Rewrite:
    """What ``just.sync`` would write; refuses (`JustfileError`) what it must not write."""
    path = Path(justfile).resolve()
    if not path.parent.is_dir():
        raise JustfileError(f"{path}: no folder {path.parent} to write the justfile in")
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    before, block, after = split_block(old, where=str(path))
    try:
        user_dump = dump_text(before + after, path.parent, shown=path)
    except JustfileError as error:
        raise JustfileError(
            f"not writing {path}: just rejects it (outside the generated block):\n{error}",
            hint="fix the justfile so that `just --summary` accepts it, then sync again",
        ) from None
    user = parse_dump(user_dump, path)
    coexistence = Coexistence.of(user, spec.names(), spec.prefix, every_name=True)
    conflicts = coexistence.conflicts()
    if conflicts:
        raise JustfileError(f"not writing {path}:\n  " + "\n  ".join(conflicts))
    text = render_block(
        entries(spec, coexistence),
        define_invoke=INVOKE_VAR not in user.variables,
        search_root=spec.search_root,
    )
    return Rewrite(path, old, before + text + after, coexistence, user_dump, block is not None)


def write_rewrite(rewrite: Rewrite) -> bool:
    """Write ``rewrite.new`` atomically, after just accepts it and the user's part is unchanged."""
    if not rewrite.changed:
        return False
    path = rewrite.path
    fd, tmp = tempfile.mkstemp(prefix=".justfile.dome-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(rewrite.new)
        try:
            after = dump_json(tmp, shown=path)
            summary(tmp, shown=path)
        except JustfileError as error:
            raise JustfileError(f"not writing {path}: just would reject the result:\n{error}") from None
        changed = list(_changed_user_parts(rewrite.user_dump, after))
        if changed:
            raise JustfileError(
                f"not writing {path}: it would change your " + ", ".join(changed),
                hint="rename the recipe or variable that clashes with the generated block",
            )
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def hidden_recipes(rewrite: Rewrite, full_dump: dict[str, Any]) -> list[str]:
    """The user's recipes (outside the block) that just does not run as written, because a
    recipe of the block has their name (``set allow-duplicate-recipes``: the later one wins)."""
    recipes = full_dump.get("recipes") or {}
    return [
        name for name, raw in (rewrite.user_dump.get("recipes") or {}).items()
        if recipes.get(name) != raw
    ]


def _changed_user_parts(before: dict[str, Any], after: dict[str, Any]) -> Iterable[str]:
    """What of the user's justfile (recipes, aliases, variables, settings) differs after."""
    for kind, label in (("recipes", "recipe"), ("aliases", "alias"), ("assignments", "variable")):
        new = after.get(kind) or {}
        for name, value in (before.get(kind) or {}).items():
            if new.get(name) != value:
                yield f"{label} '{name}'"
    if before.get("settings") != after.get("settings"):
        yield "settings"
