"""The no-op skip: a service whose inputs are unchanged since its last good deploy, and whose
live version is still that deploy's, is not deployed again.

A service's inputs are summed up in one digest (:func:`inputs_digest`): every file below its
folder (sources and build output; ``node_modules``, ``.wrangler``, ``.dome`` and ``.git`` left
out), its rendered wrangler.toml, the wrangler version that deploys it, and the interface of
each service it binds to (:func:`interface_files`: its entry module and the files its
``interface:`` globs match, as CI's change detection counts them). Each deploy record
keeps the digest (``extra.digest``). The live versions of all candidates are read at once,
straight from the Cloudflare API through the session's reconciler (:func:`live_versions`:
milliseconds, no wrangler start); a version that cannot be read is not skipped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dome_tasks.lifecycle.ledger import LedgerRecord
    from dome_tasks.manifest.model import WorkerConfig
    from dome_tasks.plan.target import Target

__all__ = [
    "IGNORED_DIRS",
    "Unchanged",
    "inputs_digest",
    "interface_files",
    "interface_globs",
    "last_good_deploy",
    "live_versions",
    "unchanged",
    "wrangler_version",
]

#: Folders below a service that are not its inputs (installed packages, wrangler's and dome's
#: own state, version control).
IGNORED_DIRS = frozenset({"node_modules", ".wrangler", ".dome", ".git", "__pycache__"})


@dataclass(frozen=True)
class Unchanged:
    """Why a service is skipped: the record of the deploy whose inputs and version still stand."""

    record: LedgerRecord
    digest: str

    def reason(self) -> str:
        version = (self.record.version_id or "")[:8]
        return (f"unchanged since its deploy of {version} at {self.record.time} "
                f"(inputs {self.digest[:12]}), which is still live")


@functools.lru_cache(maxsize=16)
def wrangler_version(wrangler: str | tuple[str, ...]) -> str:
    """The version of the wrangler at *wrangler* (a path, or an argv prefix whose last word is
    the wrangler) from its package.json (no Node start); for anything else (a wrapper script),
    a digest of the file itself."""
    if isinstance(wrangler, tuple):
        if len(wrangler) != 1:
            return "argv:" + "\0".join(wrangler)  # e.g. `npx wrangler@4`: the words say which
        wrangler = wrangler[0]
    path = Path(wrangler)
    try:
        real = path.resolve(strict=True)
    except OSError:
        return f"unknown:{wrangler}"
    for folder in real.parents:
        package = folder / "package.json"
        if package.is_file():
            try:
                data = json.loads(package.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                break
            if data.get("name") == "wrangler":
                return f"wrangler@{data.get('version')}"
            break
    try:
        return "file:" + hashlib.sha256(real.read_bytes()).hexdigest()
    except OSError:
        return f"unknown:{wrangler}"


def _files(folder: Path) -> Iterable[Path]:
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in sorted(files):
            yield Path(current, name)


def inputs_digest(
    target: Target, wrangler: str, upstream: Mapping[str, Sequence[Path]] | None = None
) -> str:
    """One sha256 over the service's files (path and content), its rendered config, *wrangler*
    (a version string from :func:`wrangler_version`) and the *upstream* interface files (by
    service, from :func:`interface_files`)."""
    digest = hashlib.sha256()
    digest.update(f"wrangler\0{wrangler}\0config\0".encode())
    digest.update(target.text.encode("utf-8"))
    folder = target.config.service_dir
    for path in _files(folder):
        _add(digest, "file", path.relative_to(folder).as_posix(), path)
    for service in sorted(upstream or {}):
        for path in sorted((upstream or {})[service]):
            _add(digest, f"upstream {service}", path.as_posix(), path)
    return digest.hexdigest()


def _add(digest: hashlib._Hash, kind: str, name: str, path: Path) -> None:
    try:
        data = path.read_bytes()
    except OSError:
        data = b"\0missing"
    digest.update(f"\0{kind}\0{name}\0{len(data)}\0".encode())
    digest.update(data)


def interface_globs(manifest_path: Path) -> dict[str, list[str]]:
    """Each service's ``interface:`` globs, read from the manifest's YAML."""
    import yaml

    try:
        data = yaml.safe_load(Path(manifest_path).read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    services = data.get("services") if isinstance(data, dict) else None
    found: dict[str, list[str]] = {}
    for name, entry in (services or {}).items() if isinstance(services, dict) else ():
        value = entry.get("interface") if isinstance(entry, dict) else None
        found[str(name)] = [value] if isinstance(value, str) else [str(v) for v in value or ()]
    return found


def interface_files(config: WorkerConfig, globs: Sequence[str] = ()) -> tuple[Path, ...]:
    """A service's interface: its entry module, and the files below its folder that *globs*
    match (relative, ``*`` crossing ``/``)."""
    import fnmatch

    folder = config.service_dir
    files = {(folder / config.main).resolve()} if config.main is not None else set()
    if globs:
        for path in _files(folder):
            relative = path.relative_to(folder).as_posix()
            if any(fnmatch.fnmatchcase(relative, glob) for glob in globs):
                files.add(path)
    return tuple(sorted(files))


def last_good_deploy(records: Sequence[LedgerRecord], worker: str) -> LedgerRecord | None:
    """The newest successful deploy of *worker* with a version, if it is the newest record that
    changed what serves (a rollback or canary after it means it may not be what serves)."""
    for record in reversed(records):
        if record.worker != worker or record.kind in ("verify", "migrate"):
            continue
        if record.kind == "deploy" and record.outcome == "success" and record.version_id:
            return record
        if record.kind == "deploy" and record.outcome == "failure":
            continue  # a failed deploy changed nothing; the live check decides
        return None
    return None


def unchanged(
    record: LedgerRecord | None, digest: str, live_version: str | None
) -> Unchanged | None:
    """Pure: skip when *record* has *digest* and its version is *live_version*."""
    if record is None or live_version is None:
        return None
    if record.extra.get("digest") != digest or record.version_id != live_version:
        return None
    return Unchanged(record, digest)


def live_versions(
    read: Callable[[str], str | None], workers: Sequence[str]
) -> dict[str, str | None]:
    """``read(worker)`` (the version serving most of its traffic, None when unknown) for each of
    *workers*, side by side: one batch of direct API reads, milliseconds each."""
    if not workers:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(workers))) as pool:
        return dict(zip(workers, pool.map(read, workers)))
