"""Shell completion of a task's positional words: ``invoke deploy-env <TAB>`` offers the
manifest's services, then its environments (then, for ``rollback``, the versions deployed).

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

__all__ = ["candidates", "install", "manifest_names", "manifest_words", "slot"]

#: Which manifest words each positional parameter name takes.
SERVICE_PARAMS = frozenset({"service", "services"})
ENV_PARAMS = frozenset({"env", "environment"})
VERSION_PARAMS = frozenset({"version"})


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
    """What to offer for the word after *invocation* (None: leave it to invoke).

    The shells send the words typed so far without the empty word under the cursor
    (``invoke deploy-env <TAB>`` arrives as ``deploy-env``), and filter what is offered by the
    typed prefix themselves. So a last word that is a whole value of its slot (or a task's name)
    is finished and the next slot's values are offered; a last word that is not (``si``) is
    being typed, and its own slot's values are offered."""
    try:
        tokens = shlex.split(invocation)
    except ValueError:
        return None
    if not tokens or invocation[-1:].isspace():
        return _offer(tokens, collection)
    if tokens[-1].startswith("-"):
        return None
    typing = _offer(tokens[:-1], collection)
    if typing is not None and tokens[-1] not in typing:
        return typing
    return _offer(tokens, collection)


def _offer(words: Sequence[str], collection: Collection) -> list[str] | None:
    """The values of the positional slot after *words* (None: not a dome task's positional)."""
    found = slot(words, collection)
    if found is None:
        return None
    task, param, optional = found
    config = collection.configuration().get("dome") or {}
    services, environments = manifest_words(config.get("manifest"))
    if param in SERVICE_PARAMS:
        values = [*services, "all"] if "all" not in services else services
    elif param in ENV_PARAMS:
        values = environments
    elif param in VERSION_PARAMS:
        values = _versions(config, words, services)
    else:
        return None
    if optional:
        values = values + _task_names(collection)
    return values


def _versions(config: dict[str, Any], words: Sequence[str], services: list[str]) -> list[str]:
    """The versions the ledger cache saw deployed for the service and environment typed before
    (newest first): what ``rollback SERVICE ENV <TAB>`` offers."""
    import json

    typed = [w for w in words if not w.startswith("-")]
    service = next((w for w in typed if w in services), None)
    manifest = config.get("manifest")
    if service is None or not manifest:
        return []
    env = typed[-1]
    ledger = Path(config.get("ledger") or Path(manifest).parent / ".dome" / "ledger.jsonl")
    names = {env, _canonical(manifest, env)}
    found: list[str] = []
    try:
        lines = ledger.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in reversed(lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        version = record.get("version_id") if isinstance(record, dict) else None
        if (version and version not in found and record.get("service") == service
                and record.get("environment") in names and record.get("outcome") == "success"):
            found.append(str(version))
    return found


def _canonical(manifest: str | Path, env: str) -> str:
    """The environment that *env* names (itself, or the one it is an alias of)."""
    import yaml

    try:
        data = yaml.safe_load(Path(manifest).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return env
    for name, body in ((data.get("environments") or {}) if isinstance(data, dict) else {}).items():
        if env in ((body or {}).get("aliases") or () if isinstance(body, dict) else ()):
            return str(name)
    return env


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
    services, environments = manifest_names(path)
    return services, [word for name, aliases in environments.items() for word in (name, *aliases)]


def manifest_names(path: str | Path | None) -> tuple[list[str], dict[str, list[str]]]:
    """The services, and each environment's aliases, of the manifest at *path* (a plain YAML
    read: nothing when it cannot be read)."""
    if not path:
        return [], {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return [], {}
    if not isinstance(data, dict):
        return [], {}
    found = data.get("services")
    services = [str(s) for s in found] if isinstance(found, dict) else []
    found = data.get("environments")
    environments: dict[str, list[str]] = {}
    for name, env in (found.items() if isinstance(found, dict) else ()):
        aliases = (env or {}).get("aliases") if isinstance(env, dict) else None
        environments[str(name)] = [str(a) for a in aliases or ()]
    return services, environments


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
