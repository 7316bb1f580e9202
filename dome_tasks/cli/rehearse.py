"""Rehearsals: run the whole remote pipeline against a throwaway Cloudflare API emulator.

``invoke deploy-env silo staging --rehearse`` renders, builds and runs the real wrangler exactly
as a real deploy would, but every API call goes to :mod:`dome_tasks.testing.emulator` on 127.0.0.1. At
the end it prints what Cloudflare would now hold. ``invoke emulator`` runs one in the foreground.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dome_tasks.cli.common import boundary, parse_whole, task

if TYPE_CHECKING:
    from dome_tasks.manifest.model import Environment
    from dome_tasks.testing.emulator import Emulator


@contextlib.contextmanager
def rehearsal(environment: Environment) -> Iterator[Emulator]:
    """A started emulator for *environment*'s account; prints its final state on the way out."""
    from dome_tasks.testing.emulator import DEFAULT_ACCOUNT_ID, Emulator

    account = environment.account_id or DEFAULT_ACCOUNT_ID
    with Emulator(account_id=account) as emulator:
        print(f"rehearsal: Cloudflare API emulated at {emulator.url} (nothing leaves this machine)")
        try:
            yield emulator
        finally:
            print(describe(emulator))


def holdings(emulator: Emulator) -> dict[str, Any]:
    """What the emulated account holds, as data: each worker's versions, traffic and the live
    version's bindings; each D1 database's applied migrations."""
    state = emulator.state
    workers = []
    for name in sorted(state.workers):
        worker = state.workers[name]
        bindings = []
        if worker.versions:
            for binding in worker.current_version().bindings:
                target = next(
                    (str(binding[key]) for key in ("service", "id", "database_id", "bucket_name",
                                                   "namespace_id", "queue_name", "text")
                     if key in binding),
                    "",
                )
                bindings.append({"name": binding.get("name", "?"),
                                 "type": binding.get("type", "?"), "target": target})
        workers.append({"name": name, "versions": len(worker.versions),
                        "traffic": dict(worker.traffic()), "bindings": bindings})
    from dome_tasks.lifecycle.account_store import DATABASE_NAME

    databases = [{"name": database.name,
                  "migrations": [row.get("name") for row in _migrations(database)]}
                 for database in sorted(state.d1.values(), key=lambda d: d.name)
                 if database.name != DATABASE_NAME]  # dome's own history and locks
    return {"workers": workers, "d1": databases}


def describe(emulator: Emulator) -> str:
    """What the emulated account holds (:func:`holdings`), as lines for people."""
    held = holdings(emulator)
    lines = ["rehearsal: Cloudflare would now hold:"]
    if not held["workers"]:
        lines.append("  no workers")
    for worker in held["workers"]:
        traffic = ", ".join(f"{v[:8]}@{p:g}%" for v, p in worker["traffic"].items())
        lines.append(f"  worker {worker['name']}: {worker['versions']} version(s); "
                     f"traffic {traffic or 'not deployed'}")
        for binding in worker["bindings"]:
            lines.append(f"    {binding['name']:<14} {binding['type']:<13} {binding['target']}")
    for database in held["d1"]:
        applied = database["migrations"]
        lines.append(f"  d1 {database['name']}: migrations {', '.join(applied) if applied else 'none'}")
    return "\n".join(lines)


def _migrations(database) -> list[dict]:
    try:
        return database.rows("SELECT name FROM d1_migrations ORDER BY id")
    except Exception:  # noqa: BLE001 - no d1_migrations table yet
        return []


@task(help={"port": "port on 127.0.0.1 (default 8788)",
            "token": "the API token clients must send (default: emulator-token)",
            "account_id": "the emulated account id (default: the emulator's)",
            "serve_workers": "also run deployed workers under workerd, reachable as <name>.emulator.workers.dev"})
@boundary
def emulator(c, port=8788, token="", account_id="", serve_workers=False):
    """Run the Cloudflare API emulator in the foreground (Ctrl-C stops it).

    Example: invoke emulator --port 8788
    """
    import errno

    from dome_tasks.testing.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN, serve

    port = parse_whole(port, "--port", low=1, high=65535, example="--port 8789")
    try:
        serve("127.0.0.1", port, token or DEFAULT_TOKEN, account_id or DEFAULT_ACCOUNT_ID,
              serve_workers=serve_workers)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise _busy(port) from None


def _busy(port: int) -> Exception:
    """Port *port* is taken: who holds it, and the flag and variables that move the emulator."""
    from dome_tasks.errors import UsageError
    from dome_tasks.local.procs import port_owner

    holder = port_owner("127.0.0.1", port) or "another process"
    other = port + 1 if port < 65535 else port - 1
    return UsageError(
        f"port {port} on 127.0.0.1 is already in use by {holder}",
        hint=f"stop it, or pass another port: `invoke emulator --port {other}`, then point wrangler "
             f"at it with CLOUDFLARE_API_BASE_URL=http://127.0.0.1:{other}/client/v4 (and "
             f"INVOKE_DOME_HEALTH_BASE_URL=http://127.0.0.1:{other} with --serve-workers)",
    )


TASKS = [emulator]
