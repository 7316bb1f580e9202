"""dome's tasks as ``invoke --list`` shows them, from a cache: the listing imports no task module.

A root ``invoke --list`` reads only each task's name, aliases and docstring, yet importing the
nine task modules (and what they import) is most of its cost. :func:`listed_tasks` keeps those
three facts per task in the workspace's ``.dome/cache``, under a key made of the size and
modification time of every ``.py`` file of the installed ``dome_tasks`` package and the
versions of invoke and Python: any change to dome's code is a new key, so a stale list is never
shown. The stand-ins it returns list exactly like the real tasks and can do nothing else (they
are used only to list).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from invoke import Collection
from invoke.tasks import Task

from dome_tasks.cli.registry import native_tasks

__all__ = ["Listed", "code_key", "listed_tasks"]

_PACKAGE = Path(__file__).resolve().parent.parent  # dome_tasks/


class Listed(Task):
    """A stand-in that lists like dome's task of the same name (and cannot run)."""

    def __init__(self, name: str, aliases: list[str], doc: str | None) -> None:
        super().__init__(_cannot_run, name=name, aliases=tuple(aliases))
        self.__doc__ = doc

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        return []


def _cannot_run(c: Any) -> None:
    raise RuntimeError("a listed stand-in of a dome task cannot run")  # never reached


def code_key() -> list[Any]:
    """What the task descriptions were made from: dome's code (each ``.py`` file's path, size
    and mtime), invoke's and Python's versions."""
    import invoke

    files: list[Any] = []
    folders = [str(_PACKAGE)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    stat = entry.stat()
                    files.append([entry.path[len(str(_PACKAGE)):], stat.st_size, stat.st_mtime_ns])
                elif entry.name != "__pycache__" and entry.is_dir():
                    folders.append(entry.path)
    files.sort()
    return [str(_PACKAGE), invoke.__version__, sys.version, files]


def listed_tasks(cache_dir: Path) -> Collection:
    """dome's tasks for a root ``invoke --list``: stand-ins from the cache in *cache_dir* when
    it matches the code (:func:`code_key`), else the real tasks (and the cache is refreshed)."""
    from dome_tasks._cache import keep, kept

    entry = Path(cache_dir) / "dome-tasks.json"
    try:
        key = code_key()
    except OSError:
        return native_tasks()
    described = kept(entry, key)
    if isinstance(described, list):
        ns = Collection()
        for name, aliases, doc in described:
            ns.add_task(Listed(name, aliases, doc), name=name)
        return ns
    native = native_tasks()
    keep(entry, key, [[name, list(task.aliases), task.__doc__]
                      for name, task in native.tasks.items()])
    return native
