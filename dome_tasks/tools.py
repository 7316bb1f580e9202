"""Finding the external tools: the one place that locates wrangler and just.

:func:`discover_tools` reads these facts once at the task boundary into :class:`Tools`, which the
planner takes as plain data. Each service runs the wrangler its own workspace pins: the
manifest resolves it per service at load time (a ``wrangler:`` command, else a
``node_modules/.bin/wrangler`` between the service's folder and the repository's root) into
``WorkerConfig.wrangler``; :meth:`Tools.wrangler_for` falls back to the repository's one.
:data:`WRANGLER_SUPPORTED` is the range of wrangler versions dome-tasks is tested with.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dome_tasks.errors import JustNotFound, ToolMissingError

if TYPE_CHECKING:
    from dome_tasks.manifest.model import WorkerConfig

WRANGLER_INSTALL = "npm install --save-dev wrangler@4  (or `npm ci` where package-lock.json pins it)"
JUST_INSTALL = "pip install rust-just  (or see https://just.systems for other installers)"
#: Environment variable naming the just binary to use (else PATH, else next to Python).
JUST_BIN_ENV = "DOME_TASKS_JUST"
#: Wrangler versions dome-tasks supports: from the first (inclusive) to the second (exclusive).
#: The tests run the oldest (tests/fixtures/wrangler-oldest) and the pinned one (package.json).
WRANGLER_SUPPORTED = ((4, 20, 0), (5, 0, 0))


@dataclass(frozen=True)
class Tools:
    """Facts about this machine the planner may use."""

    wrangler: str = "wrangler"  # the repository's wrangler
    just: str | None = None
    just_recipes: frozenset[str] = field(default_factory=frozenset)

    def wrangler_for(self, config: WorkerConfig) -> tuple[str, ...]:
        """The argv prefix that runs ``config``'s wrangler: the one its service pins (resolved
        by the manifest), else the repository's."""
        return config.wrangler or (self.wrangler,)


def service_wrangler(service_dir: Path, root: Path) -> str | None:
    """A ``node_modules/.bin/wrangler`` of the service's own workspace: in its folder or a
    folder above it, below ``root`` (the repository's own is :func:`find_wrangler`'s)."""
    folder, top = os.path.realpath(service_dir), os.path.realpath(root)
    inside = top.rstrip(os.sep) + os.sep
    while folder != top and folder.startswith(inside):
        candidate = os.path.join(folder, "node_modules", ".bin", "wrangler")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        folder = os.path.dirname(folder)
    return None


def wrangler_version(argv: tuple[str, ...] | list[str], cwd: Path | None = None) -> str:
    """``x.y.z`` as ``wrangler --version`` prints it; ToolMissingError if it does not run."""
    try:
        done = subprocess.run(
            [*argv, "--version"], capture_output=True, text=True, check=False, cwd=cwd,
            timeout=60, env={**os.environ, "WRANGLER_SEND_METRICS": "false",
                             "WRANGLER_HIDE_BANNER": "true"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(f"cannot run {' '.join(argv)}: {exc}") from None
    found = re.search(r"\b(\d+\.\d+\.\d+)\b", done.stdout + done.stderr)
    if done.returncode != 0 or not found:
        raise ToolMissingError(
            f"{' '.join(argv)} --version failed (exit {done.returncode})",
            hint=f"reinstall it: {WRANGLER_INSTALL}",
        )
    return found.group(1)


def supported(version: str) -> bool:
    """Whether wrangler ``version`` (``x.y.z``) is within :data:`WRANGLER_SUPPORTED`."""
    parts = tuple(int(p) for p in version.split(".")[:3])
    low, high = WRANGLER_SUPPORTED
    return low <= parts < high


def supported_range() -> str:
    low, high = WRANGLER_SUPPORTED
    return f">= {'.'.join(map(str, low))}, < {'.'.join(map(str, high))}"


def find_wrangler(start: Path, *, dry_run: bool = False) -> str:
    """The project's ``node_modules/.bin/wrangler`` (searching upwards from *start*), else PATH.

    A dry run runs nothing, so a missing wrangler is shown as plain ``wrangler`` instead.
    """
    start = Path(start).resolve()
    for folder in [start, *start.parents]:
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
    """The ``just`` binary: ``$DOME_TASKS_JUST``, else PATH, else beside this Python (the
    rust-just wheel's script); else :class:`JustNotFound` naming the install command."""
    explicit = os.environ.get(JUST_BIN_ENV)
    if explicit:
        if Path(explicit).is_file():
            return explicit
        raise JustNotFound(f"{JUST_BIN_ENV}={explicit} does not exist", hint=f"install just: {JUST_INSTALL}")
    found = shutil.which("just") or shutil.which("just", path=str(Path(sys.executable).parent))
    if found:
        return found
    raise JustNotFound("just is not installed (not on PATH)", hint=f"install it: {JUST_INSTALL}")


def discover_tools(root: Path, *, dry_run: bool) -> Tools:
    """Find wrangler and just once, and which recipes the justfile has (for ``build-pkg``)."""
    wrangler_bin = find_wrangler(root, dry_run=dry_run)
    try:
        just_bin = find_just()
    except JustNotFound:
        return Tools(wrangler=wrangler_bin)
    listing = subprocess.run(
        [just_bin, "--summary"], cwd=root, capture_output=True, text=True, check=False
    )
    recipes = frozenset(listing.stdout.split()) if listing.returncode == 0 else frozenset()
    return Tools(wrangler=wrangler_bin, just=just_bin, just_recipes=recipes)
