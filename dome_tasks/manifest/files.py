"""Files and folders the manifest names: they exist where wrangler will look for them, and every
path stays inside the repository (the folder of dome.yaml), symlinks resolved.

Checked at load time (``load(..., check_files=False)`` skips the existence checks, not the
containment ones) and reported by ``invoke doctor``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dome_tasks.manifest.model import WorkerConfig
from dome_tasks.manifest.shape import PATH_KEYS

if TYPE_CHECKING:
    from dome_tasks.manifest._problems import KeyPath, Problems


class Resolver(Protocol):
    """What the file checks read of the resolver (``manifest.resolve.Resolver``)."""

    root: Path
    problems: Problems
    services: Mapping[str, Mapping[str, Any]]
    check_files: bool

    def origin(self, service: str, env: str, sub: KeyPath) -> KeyPath: ...

__all__ = ["check", "contained", "outside"]


def outside(root: Path, base: Path, value: str) -> str | None:
    """Why ``value`` (relative to folder ``base``) is not a path inside ``root``, or None."""
    if os.path.isabs(value) or value.startswith("~"):
        return f"'{value}' is an absolute path; write it relative to the manifest's folder"
    target = contained(root, base, value)
    if target is None:
        return (
            f"'{value}' points outside the repository ({root}); every path must stay inside "
            "the folder of dome.yaml"
        )
    return None


def contained(root: Path, base: Path, value: str) -> Path | None:
    """``base / value`` with symlinks resolved, if it stays inside ``root``; else None."""
    target = os.path.realpath(os.path.join(base, value))
    real_root = _real(os.fspath(root))
    if target != real_root and not target.startswith(real_root.rstrip(os.sep) + os.sep):
        return None
    return Path(target)


@functools.lru_cache(maxsize=64)
def _real(folder: str) -> str:
    """The repository folder with symlinks resolved (asked for every path of every service)."""
    return os.path.realpath(folder)


def check(resolver: Resolver, workers: Mapping[tuple[str, str], WorkerConfig]) -> None:
    """Report service folders, ``main`` files, migrations folders and wrangler paths that are
    missing, of the wrong kind, or outside the repository."""
    root, problems = resolver.root, resolver.problems
    usable: set[str] = set()
    where_is = functools.lru_cache(maxsize=None)(outside)  # one answer per path, this load
    kind_of = functools.lru_cache(maxsize=None)(_kind_of)
    for service, spec in resolver.services.items():
        folder = spec.get("path", f"services/{service}")
        where = ("services", service, "path") if "path" in spec else ("services", service)
        problem = where_is(root, root, folder)
        if problem is None and resolver.check_files:
            target = root / folder
            if not target.exists():
                problem = (
                    f"the service folder {folder} does not exist"
                    + ("" if "path" in spec else " (the default for a service without 'path')")
                )
            elif not target.is_dir():
                problem = f"{folder} is not a folder"
        if problem:
            problems.add(where, problem)
        else:
            usable.add(service)
    for (service, env), worker in workers.items():
        if service in usable:
            for sub, what in _worker_problems(
                root, worker, resolver.check_files, where_is, kind_of
            ):
                if what.startswith(_NOT_YET):  # wrangler reads it; a build may create it
                    problems.warn(resolver.origin(service, env, sub), what)
                else:
                    problems.add(resolver.origin(service, env, sub), what)


#: Missing build outputs: accepted, as wrangler accepts them, with a warning (a typo shows here).
_NOT_YET = "not built yet?"


def _kind_of(path: Path) -> str:
    """"dir", "file" or "" (missing)."""
    return "dir" if path.is_dir() else "file" if path.exists() else ""


def _worker_problems(
    root: Path,
    worker: WorkerConfig,
    exists: bool,
    outside: Callable[..., str | None],
    kind_of: Callable[[Path], str],
) -> Iterator[tuple[tuple[Any, ...], str]]:
    folder = worker.service_dir
    shown = _shown(root, folder)  # cached: one per service
    problem = outside(root, folder, worker.main) if worker.main is not None else None
    if problem:
        yield ("main",), problem
    elif exists and worker.main is not None:
        main = kind_of(folder / worker.main)
        if main == "dir":
            yield ("main",), (
                f"'{worker.main}' is a folder in {shown}; point main at the worker's entry "
                "file (e.g. src/index.ts)"
            )
        elif not main and worker.build is None and "build" not in worker.extra:
            yield ("main",), (
                f"{_NOT_YET} '{worker.main}' does not exist in {shown}; wrangler deploys it "
                "once a build creates it (the service's build command, or [build])"
            )
    for db in worker.d1_databases:
        if db.migrations_dir is None:
            continue
        sub = ("d1_databases", db.binding, "migrations_dir")
        problem = outside(root, folder, db.migrations_dir)
        if problem:
            yield sub, problem
        elif exists and kind_of(folder / db.migrations_dir) != "dir":
            state = "is not a folder" if kind_of(folder / db.migrations_dir) else "does not exist"
            yield sub, f"the migrations folder '{db.migrations_dir}' {state} in {shown}"
    for sub, value in _wrangler_paths(worker.extra):
        problem = outside(root, folder, value)
        if problem:
            yield sub, problem
        elif exists and sub == ("assets", "directory") and kind_of(folder / value) != "dir":
            yield sub, f"{_NOT_YET} the assets folder '{value}' does not exist in {shown}"


def _wrangler_paths(extra: Mapping[str, Any]) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key path, value) of every path-valued wrangler key in ``extra``."""
    for place in PATH_KEYS:
        value: Any = extra
        for part in place[:-1]:
            value = value.get(part) if isinstance(value, Mapping) else None
        if not isinstance(value, Mapping):
            continue
        if place[-1] == "*":
            for key, item in value.items():
                if isinstance(item, str):
                    yield (*place[:-1], key), item
        elif isinstance(value.get(place[-1]), str):
            yield place, value[place[-1]]


@functools.lru_cache(maxsize=1024)
def _shown(root: Path, folder: Path) -> str:
    try:
        return str(folder.relative_to(root)) or "."
    except ValueError:
        return str(folder)
