"""Any justfile's recipes as invoke tasks, and parity between the two files.

::

    # tasks/__init__.py
    from pathlib import Path
    from invoke import Collection
    from dome_tasks.justfile_bridge import parity_tasks, recipes_collection

    native = Collection(deploy, deploy_env)              # @recipe tasks
    ns = recipes_collection(Path(__file__).parent.parent / "justfile", native=native)
    ns.add_collection(parity_tasks("justfile", ns), "just")  # invoke just.check / just.sync

`recipes_collection` reads the justfile with the real just (see
`dome_tasks.justfile_dump`) and adds one `JustTask` per public recipe: same
name, parameters, defaults and doc; ``invoke --list`` marks them ``(just)``.
Running one runs ``just --justfile PATH RECIPE ARGS…`` as an argv list (no
shell), so dependencies, ``set positional-arguments``, shebang and quiet
lines, ``[arg(pattern=…)]`` checks and ``export`` parameters behave exactly
as under just. ``[arg(long=…, short=…, value=…)]`` options become invoke
flags. Native tasks win over recipes of the same name; private recipes are
not exposed.

Loops: a recipe whose body runs ``invoke NAME`` and that would itself become
task NAME (no native task) refuses to run; at run time the environment
variable ``DOME_TASKS_CALL_CHAIN`` records ``invoke X › just Y`` hops, and a
second visit to the same recipe stops with the whole chain in the message.

Parity: `delegations` finds recipes whose lines run ``invoke TASK …``;
`check_parity` reports each whose task is missing or whose parameters (names,
order, kinds, defaults) differ; `write_delegating_block` (re)writes the marked
block of generated delegating recipes, atomically and only if just accepts the
result.
"""

from __future__ import annotations

import inspect
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from invoke import Collection, Context
from invoke.exceptions import Exit
from invoke.parser import Argument
from invoke.tasks import Task, task

from dome_tasks.justargs import JustTask, Param
from dome_tasks.justfile_dump import (
    Justfile,
    JustError,
    Recipe,
    find_just,
    load_justfile,
)

__all__ = [
    "CALL_CHAIN_ENV",
    "BLOCK_BEGIN",
    "BLOCK_END",
    "Delegation",
    "RecipeTask",
    "check_parity",
    "delegations",
    "parity_tasks",
    "recipe_task",
    "recipes_collection",
    "render_delegating_block",
    "task_params",
    "write_delegating_block",
]

CALL_CHAIN_ENV = "DOME_TASKS_CALL_CHAIN"
CHAIN_SEP = " › "
BLOCK_BEGIN = "# >>> dome-tasks delegating recipes (generated from the invoke tasks) >>>"
BLOCK_END = "# <<< dome-tasks delegating recipes <<<"
JUST_TAG = "(just)"


# --------------------------------------------------------------------------
# recipes as tasks


class RecipeTask(JustTask):
    """A `JustTask` that runs a justfile recipe through just."""

    def __init__(self, body: Any, *, recipe: Recipe, justfile: Path, **kwargs: Any) -> None:
        self.recipe = recipe
        self.justfile = justfile
        super().__init__(body, params=_py_params(recipe), auto_shortflags=False, **kwargs)

    def _display_doc(self) -> str:
        return _tag(super()._display_doc())

    def get_arguments(self, ignore_unknown_help: Optional[bool] = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        options = {_py(p.name): p for p in self.recipe.params if p.option_only}
        for arg in args:
            rp = options.get(arg.name)
            if rp is not None:
                names = [rp.long or arg.names[0]] + ([rp.short] if rp.short else [])
                arg.names = tuple(names)
        return args


def _tag(doc: str) -> str:
    return f"{JUST_TAG} {doc}"


def _py(name: str) -> str:
    return name.replace("-", "_")


def _py_params(recipe: Recipe) -> tuple[Param, ...]:
    return tuple(
        Param(_py(p.name), p.kind, p.default, p.has_default) for p in recipe.positional
    )


def recipe_task(
    justfile: Justfile,
    recipe: Recipe,
    loop: Optional[str] = None,
    aliases: Sequence[str] = (),
) -> RecipeTask:
    """An invoke task that runs ``recipe`` of ``justfile`` with just."""
    params = [
        inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ] + _signature_params(recipe)

    def body(c: Context, *args: Any, **kwargs: Any) -> None:
        if loop:
            raise Exit(loop, code=1)
        bound = sig.bind(c, *args, **kwargs)
        run_recipe(c, justfile.path, recipe, _words(recipe, bound.arguments))

    sig = inspect.Signature(params)
    body.__signature__ = sig  # type: ignore[attr-defined]
    body.__name__ = _py(recipe.name)
    body.__doc__ = _recipe_doc(recipe)
    helps = {_py(p.name): p.help for p in recipe.params if p.help}
    return RecipeTask(
        body, recipe=recipe, justfile=justfile.path, name=recipe.name, help=helps, aliases=aliases
    )


def _signature_params(recipe: Recipe) -> list[inspect.Parameter]:
    P = inspect.Parameter
    out = []
    for rp in recipe.params:
        name = _py(rp.name)
        if rp.option_only:
            default: Any = False if rp.value is not None else rp.param.default
            out.append((2, P(name, P.KEYWORD_ONLY, default=default)))
        elif rp.param.variadic:
            out.append((1, P(name, P.VAR_POSITIONAL)))
        else:
            default = rp.param.default if rp.param.has_default else P.empty
            out.append((0, P(name, P.POSITIONAL_OR_KEYWORD, default=default)))
    return [p for _, p in sorted(out, key=lambda x: x[0])]


def _recipe_doc(recipe: Recipe) -> str:
    lines = [recipe.doc or f"Run just recipe '{recipe.name}'."]
    lines.append("")
    lines.append(f"Runs: just {recipe.declaration()[:-1]}")
    notes = []
    if recipe.dependencies:
        notes.append("after " + ", ".join(recipe.dependencies))
    if recipe.shebang:
        notes.append("shebang script")
    if recipe.positional_arguments:
        notes.append("positional-arguments")
    for rp in recipe.params:
        if rp.pattern:
            notes.append(f"{rp.name} must match /{rp.pattern}/")
    if notes:
        lines.append("Recipe: " + "; ".join(notes))
    return "\n".join(lines)


def _words(recipe: Recipe, bound: dict[str, Any]) -> list[str]:
    """The words after ``just RECIPE`` that make just bind ``bound``."""
    options: list[str] = []
    words: list[str] = []
    pending_defaults: list[str] = []
    for rp in recipe.params:
        value = bound.get(_py(rp.name))
        flag = f"--{rp.long}" if rp.long else f"-{rp.short}"
        if rp.option_only:
            if rp.value is not None:
                if value:
                    options.append(flag)
            elif value is not None and value != rp.param.default:
                options += [flag, str(value)]
            continue
        if rp.param.variadic:
            items = [str(v) for v in (value or ())]
            if items:
                words += pending_defaults + items
            continue
        if value is None or (rp.param.has_default and value == rp.param.default):
            if rp.param.has_default and "{{" not in str(rp.param.default):
                pending_defaults.append(str(rp.param.default))
            else:
                pending_defaults.append(str(value))
            continue
        words += pending_defaults + [str(value)]
        pending_defaults = []
    return options + words


def run_recipe(c: Context, justfile: Path, recipe: Recipe, words: Sequence[str]) -> None:
    """Run ``just RECIPE WORDS…`` (argv, no shell), guarding against loops."""
    chain = [s for s in os.environ.get(CALL_CHAIN_ENV, "").split(CHAIN_SEP) if s]
    hops = [f"invoke {recipe.name}", f"just {recipe.name}"]
    if hops[1] in chain:
        loop = CHAIN_SEP.join(chain + hops)
        raise Exit(f"Delegation loop: {loop} (recipe '{recipe.name}' calls invoke, "
                   f"which runs the recipe again; give invoke a native '{recipe.name}' task)", 1)
    try:
        argv = [find_just(), "--justfile", str(justfile), recipe.name, *words]
    except JustError as exc:
        raise Exit(str(exc), 1) from exc
    if c.config.run.echo or c.config.run.dry:
        print(shlex.join(argv))
    if c.config.run.dry:
        return
    env = {**os.environ, CALL_CHAIN_ENV: CHAIN_SEP.join(chain + hops)}
    rc = subprocess.run(argv, env=env, check=False).returncode
    if rc != 0:
        raise Exit(code=rc)


def recipes_collection(
    justfile: str | os.PathLike[str] | Justfile,
    native: Optional[Collection] = None,
    name: Optional[str] = None,
) -> Collection:
    """``native``'s tasks plus one task per public recipe of ``justfile``.

    Native tasks (and their aliases) win over recipes of the same name. Raises
    `invoke.exceptions.Exit` with just's message if just is missing or rejects
    the file.
    """
    try:
        jf = justfile if isinstance(justfile, Justfile) else load_justfile(justfile)
    except JustError as exc:
        raise Exit(str(exc), 1) from exc
    result = Collection(name) if name else Collection()
    if native is not None:
        result = _clone(native, name)
    taken = set(result.task_names) | {a for al in result.task_names.values() for a in al}
    taken |= {a for a in result.tasks.aliases} if hasattr(result.tasks, "aliases") else set()
    delegating = {d.recipe: d.task for d in delegations(jf)}
    for recipe in jf.public():
        if recipe.name in taken or _dash(recipe.name) in taken:
            continue
        loop = None
        if delegating.get(recipe.name) in (recipe.name, _dash(recipe.name)):
            loop = (
                f"Delegation loop: just {recipe.name} › invoke {recipe.name} › "
                f"just {recipe.name}: recipe '{recipe.name}' runs 'invoke {recipe.name}' "
                f"and invoke has no native '{recipe.name}' task"
            )
        aliases = tuple(a for a, t in jf.aliases.items() if t == recipe.name and a not in taken)
        result.add_task(recipe_task(jf, recipe, loop=loop, aliases=aliases), name=recipe.name)
    return result


def _dash(name: str) -> str:
    return name.replace("_", "-")


def _clone(native: Collection, name: Optional[str]) -> Collection:
    clone = Collection(name or native.name) if (name or native.name) else Collection()
    clone.__doc__ = native.__doc__
    for key, value in native.tasks.items():
        clone.tasks[key] = value
    for alias, target in getattr(native.tasks, "aliases", {}).items():
        clone.tasks.alias(alias, to=target)
    for key, value in native.collections.items():
        clone.collections[key] = value
    clone.default = native.default
    clone.configure(native.configuration())
    clone.loaded_from = native.loaded_from
    clone.auto_dash_names = native.auto_dash_names
    return clone


# --------------------------------------------------------------------------
# parity

_VALUE_CORE_FLAGS = {"-c", "--collection", "-r", "--search-root", "-f", "--config"}
_INVOKE_WORDS = {"invoke", "inv"}


@dataclass(frozen=True)
class Delegation:
    """A recipe line that runs ``invoke TASK ARGS…``."""

    recipe: str
    task: str
    args: tuple[str, ...]
    line: str


def delegations(justfile: Justfile) -> list[Delegation]:
    """Every recipe line of ``justfile`` that delegates to an invoke task."""
    found = []
    for recipe in justfile.recipes.values():
        for line in recipe.body:
            words = _split(line.lstrip().lstrip("@-").strip())
            for i, word in enumerate(words):
                if os.path.basename(word) not in _INVOKE_WORDS:
                    continue
                rest = words[i + 1 :]
                j = 0
                while j < len(rest) and rest[j].startswith("-"):
                    j += 2 if rest[j] in _VALUE_CORE_FLAGS else 1
                if j < len(rest):
                    found.append(Delegation(recipe.name, rest[j], tuple(rest[j + 1 :]), line))
                break
    return found


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def task_params(t: Task) -> tuple[Param, ...]:
    """The just-style positional parameters of any invoke task."""
    if isinstance(t, JustTask):
        return t.params
    return tuple(Param(a.name) for a in t.get_arguments() if a.positional)


def _signature(name: str, params: Iterable[Param]) -> str:
    return " ".join([name, *(p.just_syntax() for p in params)])


def _same(a: Param, b: Param) -> bool:
    return (
        _py(a.name) == _py(b.name)
        and a.kind == b.kind
        and a.has_default == b.has_default
        and (not a.has_default or str(a.default) == str(b.default))
    )


def check_parity(justfile: str | os.PathLike[str] | Justfile, collection: Collection) -> list[str]:
    """Problems with recipes that delegate to invoke; empty when in parity.

    Each delegating recipe must name an existing task whose positional
    parameters match the recipe's (names, order, ``+``/``*`` kinds, defaults)
    and must forward its parameters in order (``{{a}} {{b}}`` or ``"$@"``).
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
        mine, theirs = recipe.positional, task_params(t)
        if len(mine) != len(theirs) or not all(map(_same, mine, theirs)):
            problems.append(
                f"{jf.path.name}: recipe '{_signature(d.recipe, mine)}' and task "
                f"'{_signature(d.task, theirs)}' have different parameters"
            )
            continue
        forwarded = [_forwarded(a) for a in d.args]
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


def _forwarded(word: str) -> str:
    if word in ("$@", '"$@"'):
        return "$@"
    m = re.fullmatch(r"\{\{\s*(?:quote\()?\s*([A-Za-z_][\w-]*)\s*\)?\s*\}\}", word)
    return _py(m.group(1)) if m else word


def _walk(collection: Collection, prefix: str = "") -> Iterable[tuple[str, Task]]:
    for name, t in sorted(collection.tasks.items()):
        yield prefix + name, t
    for sub_name, sub in sorted(collection.collections.items()):
        yield from _walk(sub, f"{prefix}{sub_name}.")


def render_delegating_block(
    collection: Collection,
    skip: Iterable[str] = (),
    invoke: str = "invoke",
) -> str:
    """The marked block of recipes delegating to every task of ``collection``.

    Tasks that are themselves justfile recipes (`RecipeTask`) and names in
    ``skip`` are left out. Each recipe forwards its words with ``"$@"``.
    """
    skipped = set(skip)
    out = [BLOCK_BEGIN, "# Edit the invoke tasks, then run the sync task; do not edit by hand.", ""]
    for dotted, t in _walk(collection):
        recipe_name = dotted.replace(".", "-")
        if isinstance(t, RecipeTask) or recipe_name in skipped:
            continue
        params = task_params(t)
        doc = inspect.getdoc(t.body) or ""
        if doc:
            out.append("# " + doc.splitlines()[0])
        if params:
            out.append("[positional-arguments]")
        header = " ".join([recipe_name, *(p.just_syntax() for p in params)])
        out.append(f"{header}:")
        tail = ' "$@"' if params else ""
        out.append(f"    {invoke} {dotted}{tail}")
        out.append("")
    out.append(BLOCK_END)
    return "\n".join(out) + "\n"


def write_delegating_block(
    justfile: str | os.PathLike[str],
    collection: Collection,
    invoke: str = "invoke",
) -> bool:
    """Write or update the delegating block of ``justfile``; True if it changed.

    The file is replaced atomically, and only after just has accepted the new
    text; recipes defined outside the block are never shadowed.
    """
    path = Path(justfile)
    old = path.read_text() if path.exists() else ""
    before, after = _outside_block(old)
    outside = _recipe_names(before + after)
    block = render_delegating_block(collection, skip=outside, invoke=invoke)
    if before and not before.endswith("\n"):
        before += "\n"
    new = before + block + after
    if new == old:
        return False
    fd, tmp = tempfile.mkstemp(prefix=".justfile.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(new)
        try:
            load_justfile(tmp)
        except JustError as exc:
            raise Exit(f"not writing {path}: {exc}", 1) from exc
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return True


def _outside_block(text: str) -> tuple[str, str]:
    start = text.find(BLOCK_BEGIN)
    if start < 0:
        return (text + ("\n" if text and not text.endswith("\n\n") else "")), ""
    end = text.find(BLOCK_END, start)
    if end < 0:
        raise Exit(f"justfile has '{BLOCK_BEGIN}' without '{BLOCK_END}'", 1)
    end = text.find("\n", end)
    return text[:start], "" if end < 0 else text[end + 1 :]


_HEADER = re.compile(r"^@?([A-Za-z_][\w-]*)(?:\s[^:=]*)?\s*:(?!=)", re.M)


def _recipe_names(text: str) -> set[str]:
    return {m.group(1) for m in _HEADER.finditer(text)}


def parity_tasks(
    justfile: str | os.PathLike[str], collection: Collection, invoke: str = "invoke"
) -> Collection:
    """A ``just`` collection with ``check`` and ``sync`` tasks for ``justfile``.

    ``invoke`` is what the generated recipes call (e.g. ``{{invoke}}``, a just variable).
    """

    @task
    def check(c: Context) -> None:
        """Check the justfile's invoke-delegating recipes match the tasks."""
        try:
            problems = check_parity(justfile, collection)
        except JustError as exc:
            raise Exit(str(exc), 1) from exc
        if problems:
            raise Exit("\n".join(problems), 1)
        print(f"{justfile}: delegating recipes match the invoke tasks")

    @task
    def sync(c: Context) -> None:
        """Rewrite the justfile's generated block of delegating recipes."""
        changed = write_delegating_block(justfile, collection, invoke=invoke)
        print(f"{justfile}: {'updated' if changed else 'already up to date'}")

    return Collection("just", check, sync)
