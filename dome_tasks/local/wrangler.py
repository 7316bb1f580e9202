"""Pure helpers around the wrangler CLI: argv tuples, the environment, output parsing.

Nothing here spawns a process; :mod:`dome_tasks.local.runtime` does, with these argvs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dome_tasks.wrangler._ansi import strip_ansi

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "D1Target",
    "d1_targets",
    "dev_argv",
    "migrations_apply_argv",
    "parse_applied_migrations",
    "registry_dir",
    "strip_ansi",
    "wrangler_env",
]

_MIGRATION_ROW = re.compile(r"^│\s*(\S+\.sql)\s*│")


@dataclass(frozen=True)
class D1Target:
    """One D1 database of a rendered config whose migrations folder exists."""

    binding: str
    database_name: str
    migrations_dir: Path


def registry_dir(state_dir: Path) -> Path:
    """wrangler's dev registry for this state folder (``WRANGLER_REGISTRY_PATH``)."""
    return state_dir / "registry"


def wrangler_env(state_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus what makes wrangler quiet, colourless and isolated in ``state_dir``.

    The dev registry (how one ``wrangler dev`` finds the others for service bindings) and
    wrangler's debug logs are kept inside the state folder, so two workspaces, or two test
    runs, never see each other's workers. The ``Request.cf`` download and the npm update check
    are turned off, so ``wrangler dev`` contacts no host. Node keeps wrangler's compiled code in
    the state folder, so each start after the first skips compiling it.
    """
    from dome_tasks.tools import with_node
    from dome_tasks.wrangler.env import DEAD_REGISTRY, keep_compiled_code, seed_update_check

    tmp_dir = state_dir / "tmp"
    seed_update_check(tmp_dir)
    env = with_node(base)
    env.update(
        WRANGLER_SEND_METRICS="false",
        WRANGLER_SEND_ERROR_REPORTS="false",
        NO_COLOR="1",
        FORCE_COLOR="0",
        WRANGLER_REGISTRY_PATH=str(registry_dir(state_dir)),
        WRANGLER_LOG_PATH=str(state_dir / "logs" / "wrangler"),
        WRANGLER_WRITE_LOGS="false",  # .dev.vars secrets never reach a log file (wrangler >= 4.1xx)
        # Nothing leaves the machine: no Request.cf download, no npm update check.
        CLOUDFLARE_CF_FETCH_ENABLED="false",
        TMPDIR=str(tmp_dir),
        npm_registry=DEAD_REGISTRY,
    )
    keep_compiled_code(env, state_dir)
    return env


def dev_argv(
    wrangler: Path, config: Path, state_dir: Path, *, host: str, port: int, inspector_port: int
) -> tuple[str, ...]:
    """``wrangler dev`` for one rendered config, on a fixed port, without any TTY feature."""
    return (
        str(wrangler), "dev",
        "--config", str(config),
        "--persist-to", str(state_dir),
        "--ip", host,
        "--port", str(port),
        "--inspector-port", str(inspector_port),
        "--show-interactive-dev-session=false",
        "--local",
    )  # fmt: skip


def migrations_apply_argv(
    wrangler: Path, config: Path, database: str, state_dir: Path
) -> tuple[str, ...]:
    """Apply a D1 database's migrations to the same local state ``wrangler dev`` persists to."""
    return (
        str(wrangler), "d1", "migrations", "apply", database,
        "--local",
        "--config", str(config),
        "--persist-to", str(state_dir),
    )  # fmt: skip


def parse_applied_migrations(output: str) -> tuple[str, ...]:
    """Names of the migrations an ``apply`` run applied (empty when there were none).

    wrangler prints "No migrations to apply!" or tables whose rows are migration file names.
    """
    text = strip_ansi(output)
    if "No migrations to apply" in text:
        return ()
    names: list[str] = []
    for line in text.splitlines():
        match = _MIGRATION_ROW.match(line.strip())
        if match and match.group(1) not in names:
            names.append(match.group(1))
    return tuple(names)


def d1_targets(config: Path) -> list[D1Target]:
    """The D1 databases in a rendered wrangler.toml that have a migrations folder on disk.

    ``migrations_dir`` is resolved as wrangler does: relative to the config's folder,
    defaulting to ``migrations``.
    """
    data = tomllib.loads(config.read_text())
    targets = []
    for db in data.get("d1_databases", []):
        folder = config.parent / db.get("migrations_dir", "migrations")
        if folder.is_dir():
            name = db.get("database_name") or db["binding"]
            targets.append(D1Target(db["binding"], name, folder.resolve()))
    return targets
