"""Remote D1 migrations as observe → decide → act: one plan per database (render the config,
apply its migrations, record them), recorded as a failure when wrangler fails. The services of
one dependency wave migrate side by side."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks.errors import DomeError
from dome_tasks.lifecycle.common import record_step
from dome_tasks.plan.deploy import migrate_step, render_step
from dome_tasks.plan.steps import Plan

if TYPE_CHECKING:
    from dome_tasks.lifecycle.ledger import LedgerRecord
    from dome_tasks.lifecycle.session import Session
    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.progress import Board

__all__ = ["decide_migrate", "migrate"]


def decide_migrate(request: ResolvedRequest) -> list[Plan]:
    """For each service with D1 migrations: write its config, then one plan per database."""
    plans: list[Plan] = []
    for target in request.targets:
        databases = [db.database_name for db in target.config.d1_databases if db.migrations_dir]
        if not databases:
            continue
        plans.append(Plan((render_step(target),)))
        for database in databases:
            fields = {"extra": {"database": database}}
            plans.append(
                Plan(
                    (migrate_step(target, database), record_step(target, "migrate", **fields)),
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
