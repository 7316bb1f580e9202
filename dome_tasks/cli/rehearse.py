"""Rehearsals: run the whole remote pipeline against a throwaway Cloudflare API emulator.

``invoke deploy-env silo staging --rehearse`` renders, builds and runs the real wrangler exactly
as a real deploy would, but every API call goes to :mod:`dome_tasks.testing.emulator` on 127.0.0.1. At
the end it prints what Cloudflare would now hold. ``invoke emulator`` runs one in the foreground.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from dome_tasks.cli.common import task

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


def describe(emulator: Emulator) -> str:
    """What the emulated account holds: workers with their live versions, bindings and vars."""
    state = emulator.state
    lines = ["rehearsal: Cloudflare would now hold:"]
    if not state.workers:
        lines.append("  no workers")
    for name in sorted(state.workers):
        worker = state.workers[name]
        traffic = ", ".join(f"{v[:8]}@{p:g}%" for v, p in worker.traffic().items()) or "not deployed"
        lines.append(f"  worker {name}: {len(worker.versions)} version(s); traffic {traffic}")
        if worker.versions:
            version = worker.current_version()
            for binding in version.bindings:
                kind = binding.get("type", "?")
                target = next(
                    (str(binding[key]) for key in ("service", "id", "database_id", "bucket_name",
                                                   "namespace_id", "queue_name", "text")
                     if key in binding),
                    "",
                )
                lines.append(f"    {binding.get('name', '?'):<14} {kind:<13} {target}")
    from dome_tasks.lifecycle.account_store import DATABASE_NAME

    for database in sorted(state.d1.values(), key=lambda d: d.name):
        if database.name == DATABASE_NAME:
            continue  # dome's own history and locks, not the project's
        applied = [row.get("name") for row in _migrations(database)]
        lines.append(f"  d1 {database.name}: migrations {', '.join(applied) if applied else 'none'}")
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
def emulator(c, port=8788, token="", account_id="", serve_workers=False):
    """Run the Cloudflare API emulator in the foreground (Ctrl-C stops it).

    Example: invoke emulator --port 8788
    """
    from dome_tasks.testing.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN, serve

    serve("127.0.0.1", int(port), token or DEFAULT_TOKEN, account_id or DEFAULT_ACCOUNT_ID,
          serve_workers=serve_workers)


TASKS = [emulator]
