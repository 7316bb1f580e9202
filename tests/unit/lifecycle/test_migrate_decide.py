"""Deciding remote migrations: a database whose migrations table lists every file gets no plan."""

from __future__ import annotations

from dome_tasks.lifecycle.migrate import decide_migrate, migration_files, pending
from dome_tasks.manifest.loader import load
from dome_tasks.plan.target import resolve
from tests.helpers import SAMPLE


def _staging():
    return resolve(load(SAMPLE / "dome.yaml"), ["silo"], "staging")


def test_files_are_the_sql_entries_in_order_and_pending_is_what_is_not_listed():
    target = _staging().target("silo")
    (database,) = target.config.d1_databases
    assert migration_files(target.config.service_dir, database) == ["0001_init.sql", "0002_events.sql"]
    assert pending(target.config.service_dir, database, frozenset({"0001_init.sql"})) == [
        "0002_events.sql"]


def test_nothing_pending_means_no_plan_and_a_line_that_says_so():
    request = _staging()
    said: list[str] = []
    everything = frozenset({"0001_init.sql", "0002_events.sql"})
    assert decide_migrate(request, {("silo", "silo-db-staging"): everything}, say=said.append) == []
    assert said == ["skip migrations of silo-db-staging (silo): none pending, 2 applied"]


def test_one_pending_or_an_unknown_table_plans_the_wrangler_run():
    request = _staging()
    for applied in ({("silo", "silo-db-staging"): frozenset({"0001_init.sql"})}, {}, None):
        plans = decide_migrate(request, applied)
        events = [step.event for plan in plans for step in plan.steps]
        assert events == ["render", "migrate", "record"], applied
