"""Build the invoke namespace that a workspace's ``tasks/__init__.py`` exposes.

Usage in a Workers monorepo::

    # tasks/__init__.py
    from dome_tasks.collection import namespace
    ns = namespace(manifest="dome.yaml", justfile="justfile")

Relative paths are relative to the folder that holds the tasks module (the folder of
``tasks.py``, or the one above the ``tasks/`` package), so invoke and just work from any
subfolder; ``root=`` names another folder. Every dome task is ``invoke dome.NAME``; it keeps its
plain name too unless a recipe of the justfile has it (``prefix=`` renames ``dome``). ``invoke
--list`` shows each task once: ``dome.NAME`` only where a recipe took the plain name
(``invoke --list dome`` shows all of dome's).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from invoke import Collection

from dome_tasks.cli.registry import ci_task_names, native_tasks

if TYPE_CHECKING:
    from dome_tasks.just.block import BlockSpec

__all__ = ["ci_task_names", "namespace", "native_tasks"]


def namespace(
    manifest: str | Path = "dome.yaml",
    justfile: str | Path | None = None,
    *,
    root: str | Path | None = None,
    prefix: str = "dome",
) -> Collection:
    """The dome-tasks namespace, configured under the ``dome`` key.

    With *justfile*, its public recipes become tasks too and keep their names; dome's task of
    the same name is then only ``PREFIX.NAME``. ``just.check`` / ``just.sync`` keep the
    justfile's generated recipes in step with dome's tasks. A justfile that cannot be read is
    reported on stderr, and then no dome task takes a plain name (any might be a user's).
    """
    base = Path(root).resolve() if root is not None else tasks_root(sys._getframe(1))
    manifest = base / manifest
    if only_prints(sys.argv):  # `invoke --list | head`: end quietly, as other CLIs do
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if only_lists(sys.argv):  # stand-ins from a cache keyed by dome's code: no task module
        from dome_tasks.cli.listed import listed_tasks

        native = listed_tasks(base / ".dome" / "cache")
    else:
        native = native_tasks()
    listing = lists_root(sys.argv)
    if justfile is None:
        from dome_tasks.just.bridge import coexisting

        ns = coexisting(native, None, prefix=prefix, listing=listing)
    else:
        from dome_tasks.just.dump import justfile_in

        justfile = justfile_in(base, justfile)  # `Justfile` where the tasks module says justfile
        ns = _with_justfile(native, justfile, prefix, base, listing)
    # Every key is declared here so that INVOKE_DOME_<KEY> environment variables reach it.
    from dome_tasks.settings import declared

    ns.configure({"dome": declared(manifest, justfile, prefix)})
    from dome_tasks.cli import flag_hints

    flag_hints.install(ns, manifest)  # "did you mean"; what a task without its words needs
    if "--complete" in sys.argv:  # `invoke --complete`: offer services and environments too
        from dome_tasks.cli.completion import install

        install()
    return ns


def lists_root(argv: list[str]) -> bool:
    """Is this run ``invoke --list`` of the whole namespace (not ``--list NAMESPACE``)? Then
    ``PREFIX.`` holds only the tasks without a plain name, so that each task is listed once.

    The one decision read from the command line: invoke builds the same namespace for ``--list``
    and ``--list dome`` (and re-creates its root as a plain ``Collection``, so no subclass can
    tell them apart later). Every other run gets every task under ``PREFIX.``; its parser then
    holds ~35 more contexts (a few ms), which :mod:`dome_tasks.cli.listed` makes nearly free
    for a listing."""
    for index, word in enumerate(argv):
        if word.startswith("--list="):
            return False
        if word in ("--list", "-l"):
            following = argv[index + 1] if index + 1 < len(argv) else ""
            return not following or following.startswith("-")
    return False


def only_prints(argv: list[str]) -> bool:
    """Does this run only print (a listing, help or completion: no task runs, nothing is written
    after the output starts)? Then a reader that closes the pipe early ends it without a
    traceback."""
    return any(word in ("--list", "-l", "--complete", "--help", "-h")
               or word.startswith(("--list=", "--help=")) for word in argv[1:])


def only_lists(argv: list[str]) -> bool:
    """Does this run only list the whole namespace (``invoke --list``, no help, no completion)?
    Then dome's tasks need only their names, aliases and docstrings."""
    program = argv[0].replace("\\", "/") if argv else ""
    ours = Path(program).name in ("invoke", "inv") or program.endswith("invoke/__main__.py")
    asks_more = any(word in ("--help", "-h", "--complete") or word.startswith("--help=")
                    for word in argv[1:])
    return ours and lists_root(argv) and not asks_more


def tasks_root(frame: FrameType | None) -> Path:
    """The folder that holds the calling tasks module or package (else the working folder)."""
    name = frame.f_globals.get("__file__") if frame is not None else None
    if not name:
        return Path.cwd()
    folder = Path(name).resolve().parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def _with_justfile(
    native: Collection, justfile: Path, prefix: str, base: Path, listing: bool
) -> Collection:
    from dome_tasks.errors import JustError
    from dome_tasks.just.bridge import coexisting
    from dome_tasks.just.dump import cached_dump_json, parse_dump
    from dome_tasks.just.parity import parity_tasks, replaced_recipes

    def spec() -> BlockSpec:  # made when just.check or just.sync runs, not to list them
        from dome_tasks.just.block import BlockSpec

        tasks = native_tasks()  # the real tasks, even when *native* holds listed stand-ins
        return BlockSpec(tasks, prefix, ci_task_names(), os.path.relpath(base, justfile.parent))

    if not justfile.is_file():
        _warn(f"no justfile at {justfile}: no recipe is bridged; `invoke just.sync` writes one "
              f"with a recipe per dome task (or pass justfile=None)")
        ns = coexisting(native, None, prefix=prefix, listing=listing)
    else:
        try:
            full = cached_dump_json(justfile, base / ".dome" / "cache")
            ns = coexisting(native, parse_dump(full, justfile), prefix=prefix, listing=listing)
            replaced = replaced_recipes(justfile, spec, full)
            if replaced:
                _warn(f"{justfile}: the generated block replaces your recipes "
                      f"{', '.join(replaced)} (allow-duplicate-recipes): run `invoke just.sync`")
        except JustError as error:
            _warn(f"cannot read {justfile}: {error}\n  until it is fixed, your recipes are not "
                  f"invoke tasks and dome's tasks are only `invoke {prefix}.NAME`; "
                  f"`invoke just.check` explains")
            ns = coexisting(native, None, prefix=prefix, known=False, listing=listing)
    if prefix not in ns.collections:
        _warn(f"your recipe '{prefix}' has the name of dome-tasks' namespace, so dome's tasks are "
              f"not all reachable: pass another prefix, e.g. namespace(..., prefix='cf')")
    parity = "just" if "just" not in ns.tasks else f"{prefix}-just"
    ns.add_collection(parity_tasks(justfile, spec), name=parity)
    return ns


def _warn(message: str) -> None:
    print(f"dome-tasks: warning: {message}", file=sys.stderr)
