"""Environments: suffixes, aliases, kinds, and the default ``local`` environment."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dome_tasks.manifest._problems import Problems
from dome_tasks.manifest.model import Environment, LocalSettings

LOCAL = "local"
DEFAULT_LOCAL_SUFFIX = "-local"
DEFAULT_PORTS = "8787-8799"
PRODUCTION = "production"
# Aliases the usual environments get when their entry has no ``aliases`` key.
CONVENTIONAL_ALIASES = {"development": "dev", "staging": "stg", "production": "prod"}


def default_state_dir(name: str) -> str:
    return f".dome/{name}"


def parse_ports(value: str | int) -> tuple[int, int]:
    first, _, last = str(value).partition("-")
    return int(first), int(last or first)


def is_production(env: Environment) -> bool:
    """Production-like: ``protected: true`` or named ``production``."""
    return env.protected or env.name == PRODUCTION


def build(specs: dict[str, dict[str, Any]], problems: Problems) -> dict[str, Environment]:
    """Environments in manifest order, plus a default ``local`` one when none is named so."""
    envs: dict[str, Environment] = {}
    for name, spec in specs.items():
        envs[name] = _environment(name, spec, problems)
    _check_aliases(envs, problems)
    _check_suffixes(envs, problems)
    taken = {n for env in envs.values() for n in (env.name, *env.aliases)}
    for name, spec in specs.items():
        alias = CONVENTIONAL_ALIASES.get(name)
        if alias and "aliases" not in spec and alias not in taken:
            envs[name] = replace(envs[name], aliases=(alias,))
            taken.add(alias)
    if LOCAL not in taken:
        envs[LOCAL] = Environment(
            name=LOCAL,
            suffix=DEFAULT_LOCAL_SUFFIX,
            kind="local",
            local=LocalSettings(*parse_ports(DEFAULT_PORTS), default_state_dir(LOCAL)),
        )
    return envs


def _environment(name: str, spec: dict[str, Any], problems: Problems) -> Environment:
    path = ("environments", name)
    kind = spec.get("kind", "local" if name == LOCAL else "remote")
    suffix = spec.get("suffix")
    if suffix is None:
        if name == LOCAL:
            suffix = DEFAULT_LOCAL_SUFFIX
        elif path + ("suffix",) in problems.lines:  # written but invalid: already reported
            suffix = f"-{name}"
        else:
            problems.add(path, "missing required key 'suffix' (use \"\" for no suffix)")
            suffix = f"-{name}"
    local = None
    if kind == "local":
        local = LocalSettings(
            *parse_ports(spec.get("ports", DEFAULT_PORTS)),
            spec.get("state_dir", default_state_dir(name)),
        )
    else:
        for key in ("ports", "state_dir"):
            if key in spec:
                problems.add(path + (key,), "only allowed in an environment with kind: local")
    return Environment(
        name=name,
        suffix=suffix,
        aliases=tuple(dict.fromkeys(a for a in spec.get("aliases", ()) if a != name)),
        kind=kind,
        account_id=spec.get("account_id"),
        protected=spec.get("protected", False),
        workers_dev=spec.get("workers_dev"),
        vars=tuple(spec.get("vars", {}).items()),
        local=local,
    )


def _check_aliases(envs: dict[str, Environment], problems: Problems) -> None:
    owner: dict[str, str] = {}
    for env in envs.values():
        for index, alias in enumerate(env.aliases):
            path = ("environments", env.name, "aliases", index)
            if alias in envs:
                problems.add(path, f"alias '{alias}' collides with the environment '{alias}'")
            elif alias in owner:
                problems.add(path, f"alias '{alias}' is already an alias of '{owner[alias]}'")
            else:
                owner[alias] = env.name


def _check_suffixes(envs: dict[str, Environment], problems: Problems) -> None:
    """Two remote environments with one suffix would deploy to the same workers."""
    seen: dict[str, str] = {}
    for env in envs.values():
        if env.is_local:
            continue
        if env.suffix in seen:
            problems.add(
                ("environments", env.name, "suffix"),
                f"suffix '{env.suffix}' is already used by '{seen[env.suffix]}'; "
                "worker names would collide",
            )
        else:
            seen[env.suffix] = env.name
