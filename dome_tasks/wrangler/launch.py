"""Starting wrangler with one Node instead of two.

``node_modules/.bin/wrangler`` is wrangler's launcher, ``bin/wrangler.js``: it checks the node
version and spawns a *second* node on ``wrangler-dist/cli.js`` with a few flags
(``--no-warnings``; 4.20 adds ``--experimental-vm-modules``), then relays its exit. dome has
already chosen a node new enough for that wrangler (:func:`dome_tasks.tools.with_node`), so
:func:`direct_argv` starts that second node itself, with the flags read from the launcher's
own source: one Node start (about 50 ms) less on every wrangler call.

Anything that does not look exactly like that launcher (a ``wrangler:`` command such as
``pnpm exec wrangler``, a wrapper script, a future launcher that does more) runs as given.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Callable, Mapping, Sequence

__all__ = ["direct_argv", "launcher_flags", "launcher_minimum"]

_SPAWN = re.compile(r"spawn\(\s*process\.execPath,\s*\[(?P<args>[^\]]*)\]", re.S)
_TAIL = ('...process.execArgv, path.join(__dirname, "../wrangler-dist/cli.js"), '
         '...process.argv.slice(2)')
_FLAG = re.compile(r'^"(--[a-z0-9-]+)"$')
_MINIMUM = re.compile(r'MIN_NODE_VERSION\s*=\s*"(\d+)\.(\d+)\.(\d+)"')

Version = tuple[int, int, int]


def launcher_flags(source: str) -> tuple[str, ...] | None:
    """The node flags wrangler's launcher (*source*: bin/wrangler.js) starts cli.js with, when
    it spawns exactly ``[flags…, ...process.execArgv, cli.js, ...process.argv.slice(2)]``;
    else None."""
    spawn = _SPAWN.search(source)
    if spawn is None or len(_SPAWN.findall(source)) != 1:
        return None
    args = re.sub(r"\s+", " ", spawn["args"]).strip().rstrip(",")
    if not args.endswith(_TAIL):
        return None
    items = [item.strip() for item in args[:-len(_TAIL)].split(",") if item.strip()]
    flags = [_FLAG.match(item) for item in items]
    if not all(flags):
        return None
    return tuple(flag[1] for flag in flags if flag is not None)


def launcher_minimum(source: str) -> Version:
    """The oldest node the launcher (*source*) lets run (``MIN_NODE_VERSION``; else 0.0.0)."""
    found = _MINIMUM.search(source)
    return (int(found[1]), int(found[2]), int(found[3])) if found else (0, 0, 0)


@functools.lru_cache(maxsize=8)
def _cli(launcher: str, stamp: tuple[int, int]) -> tuple[str, tuple[str, ...], Version] | None:
    """(cli.js, flags, oldest node) behind the launcher at *launcher* (its size and mtime in
    *stamp*)."""
    if os.path.basename(launcher) != "wrangler.js" or \
            os.path.basename(os.path.dirname(launcher)) != "bin":
        return None
    cli = os.path.join(os.path.dirname(os.path.dirname(launcher)), "wrangler-dist", "cli.js")
    try:
        with open(launcher, encoding="utf-8") as file:
            source = file.read()
    except (OSError, UnicodeDecodeError):
        return None
    flags = launcher_flags(source)
    if flags is None or not os.path.isfile(cli):
        return None
    return cli, flags, launcher_minimum(source)


def direct_argv(argv: Sequence[str], env: Mapping[str, str],
                version_of: Callable[[str], Version | None]) -> list[str]:
    """*argv* with wrangler's launcher replaced by the node (first on *env*'s PATH) and flags
    it would start; *argv* itself when its program is not that launcher, or when that node is
    older than the launcher allows (the launcher then says so itself). *version_of* gives a
    node binary's version (:func:`dome_tasks.tools.known_node_version`)."""
    if not argv:
        return list(argv)
    program = shutil.which(argv[0], path=env.get("PATH")) if os.sep not in argv[0] else argv[0]
    if program is None:
        return list(argv)
    launcher = os.path.realpath(program)
    try:
        info = os.stat(launcher)
    except OSError:
        return list(argv)
    found = _cli(launcher, (info.st_size, info.st_mtime_ns))
    node = shutil.which("node", path=env.get("PATH"))
    if found is None or node is None:
        return list(argv)
    cli, flags, minimum = found
    version = version_of(node)
    if version is None or version < minimum:
        return list(argv)
    return [node, *flags, cli, *argv[1:]]
