"""The argv of every wrangler command we run: tuples of strings, nothing here touches a shell.

Where wrangler is comes from :mod:`dome_tasks.tools`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VersionLabel:
    """What a deployed Worker version is labelled with: ``--tag`` and ``--message``."""

    tag: str
    message: str

    def args(self) -> tuple[str, ...]:
        return ("--tag", self.tag, "--message", self.message)


def _prefix(wrangler: str | Sequence[str]) -> tuple[str, ...]:
    return (wrangler,) if isinstance(wrangler, str) else tuple(wrangler)


def deploy(
    wrangler: str | Sequence[str],
    config: Path,
    *,
    dry_run: bool = False,
    label: VersionLabel | None = None,
) -> tuple[str, ...]:
    argv = (*_prefix(wrangler), "deploy", "--config", str(config)) + (label.args() if label else ())
    return argv + ("--dry-run",) if dry_run else argv


def d1_migrations_apply(
    wrangler: str | Sequence[str], database: str, config: Path
) -> tuple[str, ...]:
    return (
        *_prefix(wrangler), "d1", "migrations", "apply", database, "--config", str(config),
        "--remote",
    )


def version(wrangler: str) -> tuple[str, ...]:
    return (wrangler, "--version")


def whoami(wrangler: str) -> tuple[str, ...]:
    return (wrangler, "whoami")
