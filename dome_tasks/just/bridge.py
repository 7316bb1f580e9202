"""Any justfile's recipes as invoke tasks, beside dome's own tasks without taking a name.

::

    # tasks/__init__.py
    from pathlib import Path
    from invoke import Collection
    from dome_tasks.just.bridge import recipes_collection

    native = Collection(deploy, deploy_env)              # @recipe tasks
    ns = recipes_collection(Path(__file__).parent.parent / "justfile", native=native)

`recipes_collection` reads the justfile with the real just (see `dome_tasks.just.dump`) and adds
one `JustTask` per public recipe: same name, parameters, defaults and doc; ``invoke --list``
marks them ``(just)``. Running one runs ``just --justfile PATH RECIPE ARGS…`` as an argv list
(no shell), so dependencies, ``set positional-arguments``, shebang and quiet lines,
``[arg(pattern=…)]`` checks and ``export`` parameters behave exactly as under just.
``[arg(long=…, short=…, value=…)]`` options become invoke flags. Private recipes are not exposed.

Names (`dome_tasks.just.coexist`): a user's recipe keeps its name; the native task of that name
stays reachable as ``PREFIX.NAME`` (``invoke dome.deploy``), and every native task is there.

Loops: a recipe whose body runs ``invoke NAME`` and that would itself become task NAME (no native
task) refuses to run; at run time the environment variable ``DOME_TASKS_CALL_CHAIN`` records
``invoke X › just Y`` hops, and a second visit to the same recipe stops with the whole chain.

Parity and the generated block live in `dome_tasks.just.parity` and `dome_tasks.just.block`
(re-exported here).
"""

from __future__ import annotations

import inspect
import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from invoke import Collection, Context
from invoke.exceptions import Exit
from invoke.parser import Argument

from dome_tasks.just.args import JustTask, Param
from dome_tasks.just.coexist import DEFAULT_PREFIX, Coexistence, check_prefix, dome_recipes
from dome_tasks.just.delegation import Delegation, delegations
from dome_tasks.just.dump import JustError, Justfile, Recipe, find_just, load_justfile

__all__ = [
    "CALL_CHAIN_ENV",
    "Delegation",
    "RecipeTask",
    "coexisting",
    "delegations",
    "recipe_task",
    "recipes_collection",
]

CALL_CHAIN_ENV = "DOME_TASKS_CALL_CHAIN"
CHAIN_SEP = " › "
JUST_TAG = "(just)"


# --------------------------------------------------------------------------
# recipes as tasks


class RecipeTask(JustTask):
    """A `JustTask` that runs a justfile recipe through just."""

    def __init__(
        self, body: Any, *, recipe: Recipe, justfile: Path, shadows: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.recipe = recipe
        self.justfile = justfile
        self.shadows = shadows
        super().__init__(body, params=_py_params(recipe), auto_shortflags=False, **kwargs)

    def _display_doc(self) -> str:
        return _tag(super()._display_doc(), self.shadows)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        args = super().get_arguments(ignore_unknown_help=ignore_unknown_help)
        options = {_py(p.name): p for p in self.recipe.params if p.option_only}
        for arg in args:
            rp = options.get(arg.name)
            if rp is not None:
                names = [rp.long or arg.names[0]] + ([rp.short] if rp.short else [])
                arg.names = tuple(names)
        return args


def _tag(doc: str, shadows: str | None = None) -> str:
    """``(just)``, or ``(just; dome's: dome.deploy)`` when the recipe has a dome task's name."""
    if shadows:
        return f"(just; dome's: {shadows}) {doc}"
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
    loop: str | None = None,
    aliases: Sequence[str] = (),
    shadows: str | None = None,
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
        body, recipe=recipe, justfile=justfile.path, name=recipe.name, help=helps, aliases=aliases,
        shadows=shadows,
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
    native: Collection | None = None,
    name: str | None = None,
    prefix: str = DEFAULT_PREFIX,
) -> Collection:
    """``justfile``'s public recipes as tasks, beside ``native``'s tasks (see `coexisting`).

    Raises `invoke.exceptions.Exit` with just's message if just is missing or rejects the file.
    """
    try:
        jf = justfile if isinstance(justfile, Justfile) else load_justfile(justfile)
    except JustError as exc:
        raise Exit(str(exc), 1) from exc
    return coexisting(native or Collection(), jf, prefix=prefix, name=name)


def coexisting(
    native: Collection,
    justfile: Justfile | None,
    *,
    prefix: str = DEFAULT_PREFIX,
    name: str | None = None,
    known: bool = True,
    listing: bool = False,
) -> Collection:
    """One collection: the justfile's public recipes, ``native``'s tasks, and ``PREFIX.``.

    A user's recipe (or alias) keeps its name: the native task of that name is only
    ``PREFIX.NAME``. Every native task is under ``PREFIX.``; those whose name no recipe holds
    are also at the top. Recipes that only delegate to the native task of their own name (the
    generated block) are left out: the task itself takes the name. ``known=False`` (the
    justfile could not be read): no native task takes a plain name, since any may collide.
    ``listing`` (a root ``invoke --list``): ``PREFIX.`` holds only the tasks without a plain
    name, so that each task is listed once.
    """
    check_prefix(prefix)
    tasks = tuple(sorted(native.tasks))
    found = delegations(justfile) if justfile is not None else []
    coexistence = (
        Coexistence.of(justfile, tasks, prefix, found=found) if known
        else Coexistence.unknown(tasks, prefix)
    )
    result = Collection(name) if name else Collection()
    result.__doc__ = native.__doc__
    if justfile is not None:
        _add_recipes(result, justfile, coexistence, found)
    for task_name in tasks:
        if coexistence.plain(task_name):
            result.add_task(native[task_name], name=task_name)
    if prefix not in result.tasks:
        hidden = {t for t in tasks if not coexistence.plain(t)} if listing else None
        result.add_collection(_clone(native, prefix, only=hidden))
    result.configure(native.configuration())
    return result


def _add_recipes(
    result: Collection, jf: Justfile, coexistence: Coexistence, found: list[Delegation]
) -> None:
    dome_owned = dome_recipes(jf, coexistence.tasks, coexistence.prefix, found)
    delegating = {d.recipe: d.task for d in found}
    for recipe in jf.public():
        if recipe.name in dome_owned:
            continue
        loop = None
        if delegating.get(recipe.name) in (recipe.name, _dash(recipe.name)):
            loop = (
                f"Delegation loop: just {recipe.name} › invoke {recipe.name} › "
                f"just {recipe.name}: recipe '{recipe.name}' runs 'invoke {recipe.name}' "
                f"and invoke has no native '{recipe.name}' task"
            )
        dashed = _dash(recipe.name)
        shadows = coexistence.invoke_path(dashed) if dashed in coexistence.tasks else None
        aliases = tuple(a for a, t in jf.aliases.items() if t == recipe.name)
        task = recipe_task(jf, recipe, loop=loop, aliases=aliases, shadows=shadows)
        result.add_task(task, name=recipe.name)


def _dash(name: str) -> str:
    return name.replace("_", "-")


def _clone(native: Collection, name: str | None, only: set[str] | None = None) -> Collection:
    """*native* under another name (``only``: just these of its tasks)."""
    clone = Collection(name or native.name) if (name or native.name) else Collection()
    clone.__doc__ = native.__doc__
    for key, value in native.tasks.items():
        if only is None or key in only:
            clone.tasks[key] = value
    for alias, target in getattr(native.tasks, "aliases", {}).items():
        if target in clone.tasks:
            clone.tasks.alias(alias, to=target)
    for key, value in native.collections.items():
        clone.collections[key] = value
    clone.default = native.default
    clone.configure(native.configuration())
    clone.loaded_from = native.loaded_from
    clone.auto_dash_names = native.auto_dash_names
    return clone
