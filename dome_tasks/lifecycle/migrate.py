"""Remote D1 migrations as observe → decide → act: one plan per database (render the config,
apply its migrations, record them), recorded as a failure when wrangler fails. The services of
one dependency wave migrate side by side.

Before a deploy, :func:`observe_applied` reads each database's migrations table straight from
the API (milliseconds, no wrangler start); a database whose every migration file is listed
there has nothing pending and gets no plan: the same read wrangler makes, so ``--force``
(which redeploys unchanged code) does not change it; ``db-migrate-*`` always runs wrangler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks.errors import DomeError
from dome_tasks.lifecycle.common import record_step
from dome_tasks.plan.deploy import migrate_step, render_step
from dome_tasks.plan.steps import Plan

if TYPE_CHECKING:
    from dome_tasks.manifest.model import D1Database
    from dome_tasks.lifecycle.ledger import LedgerRecord
    from dome_tasks.lifecycle.session import Session
    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.progress import Board

__all__ = ["Applied", "decide_migrate", "migrate", "migration_files", "observe_applied", "pending"]

#: (service, database name) -> the migration names its migrations table lists.
Applied = Mapping[tuple[str, str], frozenset[str]]

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def migration_files(service_dir: Path, database: D1Database) -> list[str]:
    """The migration names wrangler would apply, in order: the ``.sql`` entries of the folder."""
    folder = service_dir / (database.migrations_dir or "migrations")
    try:
        return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".sql"))
    except OSError:
        return []


def pending(service_dir: Path, database: D1Database, applied: frozenset[str]) -> list[str]:
    """Pure: the migration files not listed as applied (what wrangler would apply)."""
    return [name for name in migration_files(service_dir, database) if name not in applied]


def observe_applied(session: Session, request: ResolvedRequest) -> dict[tuple[str, str], frozenset[str]]:
    """Each migrating database's applied migrations, read from the API side by side. A database
    missing from the answer is unknown (no API access, no id yet, no migrations table yet, a
    failed read): wrangler then decides, as without this check. Nothing is read in a dry run."""
    from concurrent.futures import ThreadPoolExecutor

    from dome_tasks.cloudflare.api import ApiFailure

    api = None if session.dry_run else session.reconciler(request.environment.name).api
    wanted = [(target.service, db) for target in request.targets
              for db in target.config.d1_databases if db.migrations_dir and db.database_id]
    if api is None or not wanted:
        return {}

    def read(database: D1Database) -> frozenset[str] | None:
        table = str(dict(database.extra).get("migrations_table") or "d1_migrations")
        if not _TABLE.fullmatch(table):
            return None
        try:
            result = api.call("POST", f"/d1/database/{database.database_id}/query",
                              json_body={"sql": f"SELECT name FROM {table}"})
            rows = result[0]["results"]
            return frozenset(str(row["name"]) for row in rows)
        except (ApiFailure, LookupError, TypeError):
            return None

    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        found = list(pool.map(read, [db for _, db in wanted]))
    return {(service, db.database_name): names
            for (service, db), names in zip(wanted, found) if names is not None}


def decide_migrate(
    request: ResolvedRequest,
    applied: Applied | None = None,
    *,
    say: Callable[[str], None] | None = None,
) -> list[Plan]:
    """For each service with D1 migrations: write its config, then one plan per database.

    With *applied* (from :func:`observe_applied`), a database with nothing pending gets no plan,
    and *say* is told so."""
    plans: list[Plan] = []
    for target in request.targets:
        databases = []
        for db in target.config.d1_databases:
            if not db.migrations_dir:
                continue
            names = (applied or {}).get((target.service, db.database_name))
            if names is not None and not pending(target.config.service_dir, db, names):
                if say is not None:
                    say(f"skip migrations of {db.database_name} ({target.service}): none "
                        f"pending, {len(names)} applied")
                continue
            databases.append(db.database_name)
        if not databases:
            continue
        plans.append(Plan((render_step(target),)))
        for database in databases:
            fields = {"extra": {"database": database}}
            plans.append(
                Plan(
                    (migrate_step(target, database), record_step(target, "migrate", "success", **fields)),
                    on_failure=(record_step(target, "migrate", "failure", **fields),),
                )
            )
    return plans


def migrate(
    session: Session,
    plans: list[Plan],
    *,
    waves: Sequence[Sequence[str]] | None = None,
    jobs: int = 1,
) -> list[LedgerRecord]:
    """Run the migration plans: in order, or with *waves* the services of one wave side by side
    (*jobs* at a time, each one's output kept together). The first failure (recorded) stops
    the service's later databases and the later waves, and is raised."""
    from dome_tasks.progress import Board, Outcome

    by_service: dict[str, list[Plan]] = {}
    for plan in plans:
        by_service.setdefault(plan.steps[0].service or "", []).append(plan)
    environment = next((p.steps[0].environment or "" for p in plans), "")
    if session.board is None:
        session = dataclasses.replace(session, board=Board(session.out, list(by_service), environment,
                                                           title="migrate"))
    board = session.board
    assert board is not None

    def lane(service: str, out: TextIO) -> list[LedgerRecord]:
        mine = session.lane(out)
        written: list[LedgerRecord] = []
        try:
            for plan in by_service[service]:
                written += mine.execute(plan).records
        except DomeError as error:
            board.done(Outcome(service, environment, "failed", note=_first_line(str(error))))
            raise
        if not session.dry_run:
            board.done(Outcome(service, environment, "migrated"))
        return written

    order = [[s for s in wave if s in by_service] for wave in (waves or [list(by_service)])]
    order = [wave for wave in order if wave]
    written: list[LedgerRecord] = []
    # one migration run per environment at a time, across processes
    with session.locked(environment) if environment else contextlib.nullcontext():
        written += _run_waves(session, order, lane, board, jobs)
    return written


def _run_waves(session: Session, order: list[list[str]], lane: Any, board: Board,
               jobs: int) -> list[LedgerRecord]:
    from dome_tasks.runner import Lane, run_lanes

    written: list[LedgerRecord] = []
    for number, wave in enumerate(order, 1):
        lanes = [Lane(s, functools.partial(lane, s)) for s in wave]
        results = run_lanes(lanes, jobs=1 if session.dry_run else jobs, out=session.out,
                            block=board.block, buffer=board.live)
        written += [record for r in results if r.ok for record in r.value]
        failures = [r for r in results if r.error is not None]
        if failures:
            board.not_run([r.name for r in results if not r.started], "an earlier failure stopped it")
            board.not_run([s for later in order[number:] for s in later], f"wave {number} failed")
            raise failures[0].error
    return written


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
