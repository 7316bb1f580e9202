"""Shell completion of a task's positional words: ``invoke deploy-env <TAB>`` offers the
manifest's services, then its environments.

invoke's completion (``invoke --complete -- <words>``, what its bash/zsh/fish scripts call)
offers task names and flags only. :func:`install` wraps it, for ``--complete`` runs alone (the
namespace calls it while building): when the word being completed is a positional value of a
dome task, the values of that parameter are printed (plus the task names when the parameter is
optional); everything else goes to invoke's own completion. The values come from a plain YAML
read of the manifest: quick, and still useful while the manifest has errors.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from invoke import Collection

__all__ = ["candidates", "install", "manifest_words", "slot"]

#: Which manifest words each positional parameter name takes.
SERVICE_PARAMS = frozenset({"service", "services"})
ENV_PARAMS = frozenset({"env", "environment"})


def install(argv: Sequence[str] | None = None) -> None:
    """Wrap invoke's completion, when this process is a ``--complete`` run (and only then)."""
    if "--complete" not in (sys.argv if argv is None else argv):
        return
    import invoke.program

    original = invoke.program.complete
    if getattr(original, "dome", False):
        return

    def complete(names: list[str], core: Any, initial_context: Any, collection: Collection,
                 parser: Any) -> Any:
        invocation = re.sub(r"^({}) ".format("|".join(map(re.escape, names))), "",
                            core.remainder)
        values = candidates(invocation, collection)
        if values is None:
            return original(names=names, core=core, initial_context=initial_context,
                            collection=collection, parser=parser)
        from invoke.exceptions import Exit

        print("\n".join(values))
        raise Exit

    complete.dome = True  # type: ignore[attr-defined]
    invoke.program.complete = complete  # type: ignore[assignment]


def candidates(invocation: str, collection: Collection) -> list[str] | None:
    """What to offer for the last word of *invocation* (None: leave it to invoke)."""
    try:
        tokens = shlex.split(invocation)
    except ValueError:
        return None
    new_word = not tokens or invocation[-1:].isspace()
    if not new_word and tokens[-1].startswith("-"):
        return None
    words = tokens if new_word else tokens[:-1]
    found = slot(words, collection)
    if found is None:
        return None
    _, param, optional = found
    config = collection.configuration().get("dome") or {}
    services, environments = manifest_words(config.get("manifest"))
    if param in SERVICE_PARAMS:
        values = [*services, "all"] if "all" not in services else services
    elif param in ENV_PARAMS:
        values = environments
    else:
        return None
    if optional:
        values = values + _task_names(collection)
    return values


def slot(words: Sequence[str], collection: Collection) -> tuple[str, str, bool] | None:
    """``(task, parameter, optional)`` for the positional word after *words*, if any."""
    names = _task_names(collection)
    start = max((i for i, word in enumerate(words) if word in names), default=None)
    if start is None:
        return None
    task = collection[words[start]]
    params = getattr(task, "params", None)
    if params is not None:  # a just-style recipe
        ordered = [(p.name, not p.required, p.variadic) for p in params]
    else:
        ordered = [(name, False, False) for name in task.positional]
    taking_value = _flags_taking_values(task)
    count, index = 0, start + 1
    while index < len(words):
        word = words[index]
        if word.startswith("-"):
            if "=" not in word and word in taking_value:
                if index + 1 == len(words):
                    return None  # the word being completed is this flag's value
                index += 1
        else:
            count += 1
        index += 1
    if not ordered:
        return None
    if count >= len(ordered):
        name, optional, variadic = ordered[-1]
        return (words[start], name, optional) if variadic else None
    name, optional, _ = ordered[count]
    return words[start], name, optional


def manifest_words(path: str | Path | None) -> tuple[list[str], list[str]]:
    """The services, and the environments with their aliases, of the manifest at *path*."""
    if not path:
        return [], []
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return [], []
    services = list((data.get("services") or {}).keys()) if isinstance(data, dict) else []
    environments: list[str] = []
    for name, env in ((data.get("environments") or {}) if isinstance(data, dict) else {}).items():
        environments.append(str(name))
        aliases = (env or {}).get("aliases") if isinstance(env, dict) else None
        environments += [str(a) for a in aliases or ()]
    return [str(s) for s in services], environments


def _task_names(collection: Collection) -> list[str]:
    names: list[str] = []
    for name, aliases in collection.task_names.items():
        names += [name, *aliases]
    return names


def _flags_taking_values(task: Any) -> set[str]:
    flags: set[str] = set()
    get: Callable[[], list[Any]] = task.get_arguments
    for arg in get():
        if arg.positional or not arg.takes_value:
            continue
        for name in arg.names:
            flags.add(("-" if len(name) == 1 else "--") + name)
    return flags
