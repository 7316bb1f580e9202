"""Which workers and environments an import has: one service per wrangler config, and the
dome environments its ``[env.*]`` blocks stand for (names, aliases, learned suffixes).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dome_tasks.adopt.read import AdoptError, WranglerFile

__all__ = [
    "ENV_NAMES",
    "PRODUCTION",
    "EnvironmentPlan",
    "Guess",
    "ServiceSource",
    "dome_env_name",
    "environments",
    "services_and_environments",
    "worker_name_in",
]

#: wrangler env block names that mean dome's conventional environments.
ENV_NAMES = {
    "dev": "development", "development": "development", "develop": "development",
    "stg": "staging", "stage": "staging", "staging": "staging",
    "prod": "production", "production": "production", "prd": "production",
}
CONVENTIONAL_SUFFIX = {"development": "-dev", "staging": "-staging", "production": ""}
ENV_ORDER = ("development", "staging", "production")
PRODUCTION = "production"
_ENV_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class Guess:
    """A decision the importer made that the configs did not state; the user should review it."""

    where: str  # file (relative), with the env block: "services/silo/wrangler.toml [env.staging]"
    text: str
    service: str | None = None
    environment: str | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.text}"


@dataclass(frozen=True)
class EnvironmentPlan:
    """One environment of the manifest to write."""

    name: str
    suffix: str
    aliases: tuple[str, ...]
    blocks: tuple[str, ...]  # the wrangler env block names it stands for ("" = top level)

    @property
    def protected(self) -> bool:
        """Production, and the regional productions beside it (``prod_eu``, ``production-jp``)."""
        return self.name == PRODUCTION or bool(re.match(r"prod(uction)?[_-]", self.name))


@dataclass(frozen=True)
class ServiceSource:
    """One imported worker: its dome name, folder and which block feeds each environment."""

    name: str
    file: WranglerFile
    folder: str  # relative to the root, with forward slashes
    blocks: Mapping[str, str | None]  # dome environment -> env block name (None: top level)

    def where(self, root: Path, environment: str | None = None) -> str:
        rel = self.file.path.relative_to(root).as_posix()
        block = self.blocks.get(environment) if environment else None
        return f"{rel} [env.{block}]" if block else rel


def dome_env_name(block: str) -> str | None:
    """The dome environment a wrangler env block stands for (None: not importable)."""
    mapped = ENV_NAMES.get(block.lower())
    if mapped:
        return mapped
    candidate = block.lower()
    return candidate if _ENV_NAME.fullmatch(candidate) else None


def _top_level_env(file: WranglerFile) -> str | None:
    """The environment a top level stands for when the config also has a production block:
    the one its worker name's suffix says (``foo-dev``: development), else None."""
    name = file.data.get("name")
    has_production = any(dome_env_name(b) == PRODUCTION for b in file.environments)
    if not has_production or not isinstance(name, str):
        return None
    for word, env in ENV_NAMES.items():
        if env != PRODUCTION and name.endswith(f"-{word}"):
            return env
    return None


def _service_name(file: WranglerFile, root: Path, guesses: list[Guess]) -> str:
    name = file.data.get("name")
    top_env = _top_level_env(file)
    if isinstance(name, str) and name and top_env is not None:
        return name[: name.rindex("-")]  # "foo-dev" (a development top level): service "foo"
    if isinstance(name, str) and name:
        return name
    fallback = re.sub(r"[^a-z0-9-]+", "-", file.folder.name.lower()).strip("-") or "worker"
    guesses.append(Guess(file.path.relative_to(root).as_posix(),
                         f"no top-level name: the service is called '{fallback}' (its folder)"))
    return fallback


def services_and_environments(files: list[WranglerFile], root: Path, guesses: list[Guess]
             ) -> tuple[list[ServiceSource], list[str]]:
    """Services with the block feeding each environment, and the environments in order."""
    seen_envs: list[str] = []
    services: list[ServiceSource] = []
    names: set[str] = set()
    for file in files:
        rel = file.path.relative_to(root).as_posix()
        for ignored in file.ignored:
            guesses.append(Guess(rel, f"{ignored.name} in the same folder is ignored (wrangler "
                                      f"reads {file.path.name} first)"))
        name = _service_name(file, root, guesses)
        if name in names:  # two configs deploy one worker: both kept, as wrangler deploys them
            taken = name
            name = re.sub(r"[^a-z0-9-]+", "-", file.folder.name.lower()).strip("-") or "worker"
            while name in names:
                name += "-2"
            guesses.append(Guess(rel, f"worker '{taken}' is deployed by another config too: "
                                      f"this one is the service '{name}' (it keeps the worker "
                                      "name; the last deploy wins, as today: rename one)", name))
        names.add(name)
        blocks: dict[str, str | None] = {}
        for block in file.environments:
            env = dome_env_name(block)
            if env is None:
                guesses.append(Guess(f"{rel} [env.{block}]", "not imported: not a valid "
                                     "environment name (lowercase letter first, then a-z 0-9 - _)"))
                continue
            if env == "local":
                guesses.append(Guess(f"{rel} [env.{block}]", "not imported: dome-tasks' own "
                                     "`local` environment (wrangler dev) takes its place"))
                continue
            if env in blocks and blocks[env] is not None:
                # two blocks for one environment (e.g. [env.prod] and [env.production])
                if block.lower() == env:
                    guesses.append(Guess(f"{rel} [env.{blocks[env]}]",
                                         f"ignored: [env.{block}] is {env} too"))
                    blocks[env] = block
                else:
                    guesses.append(Guess(f"{rel} [env.{block}]",
                                         f"ignored: [env.{blocks[env]}] is {env} too"))
                continue
            blocks[env] = block
            if env not in seen_envs:
                seen_envs.append(env)
        top_env = _top_level_env(file)
        if top_env is not None and top_env not in blocks:
            blocks[top_env] = None  # the top level deploys that environment's worker
            guesses.append(Guess(rel, f"the top level ('{file.data.get('name')}') is the "
                                      f"{top_env} worker: production is [env.{blocks[PRODUCTION]}]",
                                 name, top_env))
            if top_env not in seen_envs:
                seen_envs.append(top_env)
        elif top_env is not None:
            guesses.append(Guess(rel, f"the top level ('{file.data.get('name')}') is not "
                                      "imported: other blocks deploy every environment", name))
        blocks.setdefault(PRODUCTION, None)
        folder = file.folder.relative_to(root).as_posix() or "."
        services.append(ServiceSource(name, file, folder, blocks))
    if PRODUCTION not in seen_envs:
        seen_envs.append(PRODUCTION)
    ordered = [e for e in ENV_ORDER if e in seen_envs] + [e for e in seen_envs if e not in ENV_ORDER]
    return services, ordered


def worker_name_in(source: ServiceSource, env: str) -> str | None:
    """The worker name wrangler would deploy for ``env`` (None if the config has no block)."""
    block = source.blocks.get(env, "missing")
    if block == "missing":
        return None
    top = source.file.data.get("name")
    top = top if isinstance(top, str) and top else source.name
    if block is None:
        return top
    own = source.file.environments.get(block, {})
    name = own.get("name") if isinstance(own, dict) else None
    return name if isinstance(name, str) and name else f"{top}-{block}"  # as wrangler names it


def environments(services: list[ServiceSource], names: list[str], root: Path,
                  guesses: list[Guess]) -> list[EnvironmentPlan]:
    plans = []
    for env in names:
        counts: Counter[str] = Counter()
        for source in services:
            worker = worker_name_in(source, env)
            if worker is not None and worker.startswith(source.name):
                counts[worker[len(source.name):]] += 1
        if counts:
            suffix, _ = max(counts.items(), key=lambda kv: (kv[1], kv[0] == CONVENTIONAL_SUFFIX.get(env)))
            if len(counts) > 1:
                others = ", ".join(f"'{s}'" for s in counts if s != suffix)
                guesses.append(Guess("dome.yaml", f"environment {env}: suffix '{suffix}' (most "
                                     f"services use it; also seen: {others})", environment=env))
        else:
            suffix = CONVENTIONAL_SUFFIX.get(env, f"-{env}")
        blocks = sorted({b for s in services if (b := s.blocks.get(env)) is not None})
        aliases = [b for b in blocks if b != env]
        conventional = {"development": "dev", "staging": "stg", "production": "prod"}.get(env)
        if conventional and conventional not in aliases:
            aliases.append(conventional)
        plans.append(EnvironmentPlan(env, suffix, tuple(dict.fromkeys(aliases)), tuple(blocks)))
    used: dict[str, str] = {}
    for plan in plans:
        for alias in plan.aliases:
            if alias in used or any(p.name == alias for p in plans):
                raise AdoptError(f"environment alias '{alias}' would mean both {used.get(alias, alias)} "
                                 f"and {plan.name}", hint="rename one of the env blocks")
            used[alias] = plan.name
    return plans
