"""Which services changed since a git ref: what a CI deploy of "only what changed" deploys.

A service changed when, in ``git diff --name-only SINCE...HEAD`` (the real git):

1. a file under its folder (``path:``) changed;
2. its entry under ``services:`` in the manifest changed (parsed YAML at SINCE vs now, so
   comments and formatting do not count);
3. something every service shares changed: a shared template (the manifest's
   ``templates/`` folder) or any top-level manifest key but ``services`` (``defaults``,
   ``environments``, ``version``…): then every service changed;
4. it binds to (service binding or ``depends_on``) a service whose *interface* changed. The
   interface of a plain-JS worker is its entry module (``main``, in any environment) plus the
   files matched by the service's optional ``interface:`` globs (relative to its folder,
   fnmatch-style: ``*`` also crosses ``/``), and its ``main``/``path``/``interface`` keys.
   Only direct dependents are added: redeploying a dependent does not change *its* interface.

The result is in deploy order (a service after the services it binds to).
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from dome_tasks.errors import CommandFailed, DomeError, ToolMissingError, UsageError

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest

__all__ = ["Changes", "changed_services", "detect_changes"]

INTERFACE_KEYS = ("main", "path", "interface")


@dataclass(frozen=True)
class Changes:
    """Changed services (deploy order) and why each one is in the list."""

    since: str
    files: tuple[str, ...]  # relative to the repository's top level
    services: tuple[str, ...]
    reasons: dict[str, tuple[str, ...]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "services": list(self.services),
            "reasons": {name: list(self.reasons[name]) for name in self.services},
            "files": list(self.files),
        }


def changed_services(manifest: Manifest, repo_root: str | Path, since_ref: str) -> list[str]:
    """The services changed between *since_ref* and HEAD, in deploy order."""
    return list(detect_changes(manifest, repo_root, since_ref).services)


def detect_changes(manifest: Manifest, repo_root: str | Path, since_ref: str) -> Changes:
    """Like :func:`changed_services`, with the changed files and a reason per service."""
    git = _Git(Path(repo_root))
    top = git.toplevel()
    commit = git.verify(since_ref)
    files = git.changed_files(commit)
    reasons: dict[str, list[str]] = {}

    def add(service: str, reason: str) -> None:
        reasons.setdefault(service, [])
        if reason not in reasons[service]:
            reasons[service].append(reason)

    names = list(manifest.services)
    manifest_rel = _relative(Path(manifest.path), top, "the manifest")
    now = _load_yaml(Path(manifest.path).read_text(encoding="utf-8"), str(manifest.path))
    before_text = git.show(commit, manifest_rel)
    before = _load_yaml(before_text, f"{since_ref}:{manifest_rel}") if before_text else {}
    old_services, new_services = _services(before), _services(now)
    if before_text is None:
        for name in names:
            add(name, f"{manifest_rel} did not exist at {since_ref}")
    else:
        shared = sorted(k for k in set(before) | set(now) if k != "services" and before.get(k) != now.get(k))
        for key in shared:
            for name in names:
                add(name, f"the manifest's '{key}' changed")
        for name in names:
            if old_services.get(name) != new_services.get(name):
                add(name, "its manifest entry changed")

    for folder in _template_dirs(manifest):
        folder_rel = _relative(folder, top, "the templates folder", required=False)
        if folder_rel is None:
            continue
        for f in (f for f in files if _under(f, folder_rel)):
            for name in names:
                add(name, f"shared template {f} changed")

    interface_changed: dict[str, str] = {}
    for name in names:
        folder, mains = _folder_and_mains(manifest, name)
        folder_rel = _relative(folder, top, f"the folder of {name}", required=False)
        if folder_rel is None:
            continue
        globs = _interface_globs(new_services.get(name))
        for f in files:
            if not _under(f, folder_rel):
                continue
            inner = f[len(folder_rel) + 1 :] if folder_rel else f
            add(name, f"{f} changed")
            if name not in interface_changed and (
                inner in mains or any(fnmatch.fnmatchcase(inner, g) for g in globs)
            ):
                interface_changed[name] = f
        entry_old = old_services.get(name) or {}
        entry_new = new_services.get(name) or {}
        for key in INTERFACE_KEYS:
            if name not in interface_changed and before_text and _get(entry_old, key) != _get(entry_new, key):
                interface_changed[name] = f"its '{key}' in the manifest"

    for name, what in interface_changed.items():
        for dependent in _dependents(manifest, name):
            add(dependent, f"binds to {name}, whose interface changed ({what})")

    ordered = manifest.deploy_order(list(reasons)) if reasons else []
    ordered = [s for s in ordered if s in reasons]
    return Changes(
        since=since_ref,
        files=tuple(files),
        services=tuple(ordered),
        reasons={name: tuple(reasons[name]) for name in ordered},
    )


def _services(data: dict[str, Any]) -> dict[str, Any]:
    services = data.get("services") or {}
    return services if isinstance(services, dict) else {}


def _get(entry: Any, key: str) -> Any:
    return entry.get(key) if isinstance(entry, dict) else None


def _interface_globs(entry: Any) -> list[str]:
    value = _get(entry, "interface")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _template_dirs(manifest: Manifest) -> list[Path]:
    """The manifest's ``templates:`` folder (else ``templates/`` beside it) and, when it lives
    in the same repository (dome-tasks' own), the packaged templates."""
    import dome_tasks

    user = getattr(manifest, "templates_dir", None)
    return [
        Path(user) if user else Path(manifest.root) / "templates",
        Path(dome_tasks.__file__).resolve().parent / "templates",
    ]


def _folder_and_mains(manifest: Manifest, service: str) -> tuple[Path, set[str]]:
    """The service's folder and its entry modules (relative, posix) across environments."""
    folder = Path(manifest.service(service).directory)
    mains = {
        PurePosixPath(Path(main).as_posix()).as_posix().removeprefix("./")
        for env in manifest.environments
        if manifest.deploys(service, env)
        if (main := manifest.resolve(service, env).main) is not None
    }
    return folder, mains


def _dependents(manifest: Manifest, service: str) -> list[str]:
    return list(manifest.dependents(service))


def _under(path: str, folder: str) -> bool:
    return folder == "" or path == folder or path.startswith(folder + "/")


def _relative(path: Path, top: Path, what: str, *, required: bool = True) -> str | None:
    try:
        rel = Path(path).resolve().relative_to(top)
    except ValueError:
        if not required:
            return None
        raise UsageError(
            f"{what} ({path}) is outside the git repository at {top}",
            hint="run from the repository that holds the manifest",
        ) from None
    text = rel.as_posix()
    return "" if text == "." else text


def _load_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise DomeError(f"cannot parse the manifest: {error}", where=where) from None
    return data if isinstance(data, dict) else {}


class _Git:
    """The few git commands needed, as argv lists (no shell)."""

    def __init__(self, root: Path):
        git = shutil.which("git")
        if git is None:
            raise ToolMissingError("git is not installed", hint="install git (apt-get install git)")
        self.git = git
        self.root = root

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv: Sequence[str] = [self.git, "-C", str(self.root), *args]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise CommandFailed(
                f"git {' '.join(args)} failed: {result.stderr.strip() or result.returncode}",
                returncode=result.returncode,
                where=str(self.root),
            )
        return result

    def toplevel(self) -> Path:
        result = self.run("rev-parse", "--show-toplevel", check=False)
        if result.returncode != 0:
            raise UsageError(
                f"{self.root} is not inside a git repository",
                hint="change detection needs the repository's history (git clone, not an export)",
            )
        return Path(result.stdout.strip()).resolve()

    def verify(self, ref: str) -> str:
        result = self.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if result.returncode != 0 or not result.stdout.strip():
            raise UsageError(
                f"unknown git revision '{ref}'",
                hint="fetch the full history (actions/checkout with fetch-depth: 0) or pass "
                "another --since (a commit, tag or branch)",
            )
        return result.stdout.strip()

    def changed_files(self, commit: str) -> list[str]:
        result = self.run("diff", "--name-only", "--no-renames", "-z", f"{commit}...HEAD")
        return sorted({name for name in result.stdout.split("\0") if name})

    def show(self, commit: str, path: str) -> str | None:
        result = self.run("show", f"{commit}:{path}", check=False)
        return result.stdout if result.returncode == 0 else None
