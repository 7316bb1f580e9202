"""Local D1 migrations: ``wrangler d1 migrations apply --local`` into the shared state folder.

A deploy skips the wrangler start (about 1.5 s of Node) when nothing changed since the last
apply: same rendered config, same migration files, and the local databases it wrote are
still there. ``db-migrate-local`` always asks wrangler.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from dome_tasks.errors import CommandFailed
from dome_tasks.local.logs import tail
from dome_tasks.local.model import LocalEnv, LocalService, MigrationResult
from dome_tasks.local.wrangler import (
    D1Target,
    d1_targets,
    migrations_apply_argv,
    parse_applied_migrations,
    strip_ansi,
)

__all__ = ["Cancelled", "migrate", "migrate_all"]


class Cancelled(Exception):
    """The caller gave up (Ctrl-C elsewhere, or a failure in the same bring-up)."""


def migrate(
    env: LocalEnv,
    service: LocalService,
    *,
    skip_unchanged: bool = False,
    cancel: threading.Event | None = None,
) -> list[MigrationResult]:
    """Apply the service's local D1 migrations to the state folder its worker uses.

    Safe while the worker runs, and idempotent: a second run reports no migrations applied.
    With ``skip_unchanged``, a database whose migrations and config are as at the last apply
    is reported as skipped without starting wrangler.
    """
    targets = d1_targets(service.config)
    if not targets:
        return []
    stamps = _load_stamps(env, service)
    results = []
    for target in targets:
        digest = _digest(service.config, target)
        stamp = stamps.get(target.database_name)
        if (
            skip_unchanged
            and isinstance(stamp, dict)
            and stamp.get("digest") == digest
            and _databases_exist(env, stamp.get("files"))
        ):
            results.append(MigrationResult(service.name, target.database_name, skipped=True))
            continue
        output = _apply(env, service, target, cancel)
        results.append(
            MigrationResult(service.name, target.database_name, parse_applied_migrations(output))
        )
        stamps[target.database_name] = {"digest": digest, "files": _database_files(env)}
    path = env.migrated_path(service.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stamps, indent=2) + "\n")
    return results


def migrate_all(env: LocalEnv, services: Iterable[LocalService]) -> list[MigrationResult]:
    """``db-migrate-local``: every service's local D1 migrations, in the given order."""
    return [result for service in services for result in migrate(env, service)]


#: How often a migration that met a locked local database is tried again, and the waits.
BUSY_RETRIES = (0.5, 1.0, 2.0)


def _apply(
    env: LocalEnv, service: LocalService, target: D1Target, cancel: threading.Event | None
) -> str:
    """``wrangler d1 migrations apply --local``; tried again while the database was locked.

    Local D1 is a SQLite file under the state folder; workerd gives up at once on a lock held
    elsewhere (``SQLITE_BUSY``: a ``wrangler dev`` of the same state folder booting, another
    command's workerd still closing; cloudflare/workers-sdk#14916, #15162). An apply runs
    each migration in a transaction and records it, so trying again applies only what did
    not land."""
    for wait in (*BUSY_RETRIES, None):
        code, output = _apply_once(env, service, target, cancel)
        if code == 0:
            return output
        if wait is None or not _locked(output):
            break
        if cancel is not None and cancel.wait(wait):
            raise Cancelled(service.name)
        if cancel is None:
            time.sleep(wait)
    raise CommandFailed(
        f"migrating {target.database_name} failed (exit {code}):\n{tail(strip_ansi(output))}",
        returncode=code,
        where=service.name,
        hint=f"fix the migration in {target.migrations_dir}",
    )


def _locked(output: str) -> bool:
    return "SQLITE_BUSY" in output or "database is locked" in output


def _apply_once(
    env: LocalEnv, service: LocalService, target: D1Target, cancel: threading.Event | None
) -> tuple[int, str]:
    argv = migrations_apply_argv(env.wrangler, service.config, target.database_name, env.state_dir)
    process = subprocess.Popen(
        argv,
        cwd=service.config.parent,
        env=env.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    with process:
        while True:
            try:
                output, _ = process.communicate(timeout=0.1 if cancel is not None else None)
                break
            except subprocess.TimeoutExpired:
                if cancel is not None and cancel.is_set():
                    process.kill()
                    process.communicate()
                    raise Cancelled(service.name) from None
    return process.returncode, output


def _digest(config: Path, target: D1Target) -> str:
    """What the applied state depends on: the rendered config and every migration file."""
    digest = hashlib.sha256(config.read_bytes())
    for path in sorted(target.migrations_dir.glob("*.sql")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _d1_folder(env: LocalEnv) -> Path:
    return env.state_dir / "v3" / "d1" / "miniflare-D1DatabaseObject"


def _database_files(env: LocalEnv) -> list[str]:
    folder = _d1_folder(env)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.sqlite") if p.name != "metadata.sqlite")


def _databases_exist(env: LocalEnv, files: object) -> bool:
    """True if the local databases present after the last apply are all still there (a user
    who deletes the state folder, or only ``v3``, gets the migrations applied again)."""
    folder = _d1_folder(env)
    if not isinstance(files, list) or not files:
        return False
    return all((folder / str(name)).is_file() for name in files)


def _load_stamps(env: LocalEnv, service: LocalService) -> dict[str, dict]:
    try:
        data = json.loads(env.migrated_path(service.name).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
