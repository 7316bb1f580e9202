"""Finding wrangler and just, and building the argv of every wrangler command we run.

Builders return tuples of strings: nothing here touches a shell. The pinned wrangler lives in the
workspace's ``node_modules/.bin``; PATH is the fallback.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dome_tasks.errors import ToolMissingError

WRANGLER_INSTALL = "npm install --save-dev wrangler@4  (or `npm ci` where package-lock.json pins it)"
JUST_INSTALL = "pip install rust-just  (or see https://just.systems for other installers)"


def find_wrangler(start: Path, *, dry_run: bool = False) -> str:
    """The project's ``node_modules/.bin/wrangler`` (searching upwards from *start*), else PATH.

    A dry run runs nothing, so a missing wrangler is shown as plain ``wrangler`` instead.
    """
    for folder in [start.resolve(), *start.resolve().parents]:
        candidate = folder / "node_modules" / ".bin" / "wrangler"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("wrangler")
    if found:
        return found
    if dry_run:
        return "wrangler"
    raise ToolMissingError(
        f"wrangler not found in node_modules/.bin above {start} or on PATH",
        hint=f"install it: {WRANGLER_INSTALL}",
    )


def find_just() -> str:
    """The ``just`` binary: PATH first, then beside this Python (the rust-just wheel's script)."""
    found = shutil.which("just") or shutil.which("just", path=str(Path(sys.executable).parent))
    if found:
        return found
    raise ToolMissingError("just not found on PATH", hint=f"install it: {JUST_INSTALL}")


def deploy(wrangler: str, config: Path, *, dry_run: bool = False) -> tuple[str, ...]:
    argv = (wrangler, "deploy", "--config", str(config))
    return argv + ("--dry-run",) if dry_run else argv


def d1_migrations_apply(wrangler: str, database: str, config: Path) -> tuple[str, ...]:
    return (wrangler, "d1", "migrations", "apply", database, "--config", str(config), "--remote")


def version(wrangler: str) -> tuple[str, ...]:
    return (wrangler, "--version")


def whoami(wrangler: str) -> tuple[str, ...]:
    return (wrangler, "whoami")
