"""DORA metrics from a ledger with known deploys, failures and recoveries (values by hand)."""

from __future__ import annotations

import json

import pytest

from dome_tasks.lifecycle.ledger import LedgerRecord, parse_time
from dome_tasks.lifecycle.metrics import compute, human_duration, parse_since, to_json, to_table


def r(kind, outcome, time, service="silo", environment="staging", **kw) -> LedgerRecord:
    return LedgerRecord(kind=kind, outcome=outcome, time=time, service=service, environment=environment, **kw)


LEDGER = [
    # before the window: ignored by counts
    r("deploy", "success", "2025-12-31T10:00:00Z", version_id="v0", commit_time="2025-12-31T09:00:00Z"),
    # D1 healthy deploy, lead 2h
    r("deploy", "success", "2026-01-01T10:00:00Z", version_id="v1", verified=True,
      commit_time="2026-01-01T08:00:00Z"),
    # D2 fails verification, automatic rollback 5 min later (failed change, recovery 300 s)
    r("deploy", "unhealthy", "2026-01-02T10:00:00Z", version_id="v2", verified=False,
      commit_time="2026-01-02T09:00:00Z"),
    r("rollback", "success", "2026-01-02T10:05:00Z", version_id="v1", from_version="v2",
      to_version="v1", automatic=True, verified=True),
    # D3 wrangler failed: a failed attempt, not a change
    r("deploy", "failure", "2026-01-03T10:00:00Z"),
    # D4 healthy, lead 1h, then rolled back by hand 2h later (failed change, recovery 7200 s)
    r("deploy", "success", "2026-01-03T12:00:00Z", version_id="v4", verified=True,
      commit_time="2026-01-03T11:00:00Z"),
    r("rollback", "success", "2026-01-03T14:00:00Z", version_id="v1", from_version="v4", to_version="v1"),
    # D5 healthy, lead 4h
    r("deploy", "success", "2026-01-04T12:00:00Z", version_id="v5", verified=True,
      commit_time="2026-01-04T08:00:00Z"),
    # canary v6: 10%, 50%, promote (one change, one deployment, lead 2h)
    r("canary", "success", "2026-01-05T10:00:00Z", version_id="v6", from_version="v5", percent=10),
    r("canary", "success", "2026-01-05T10:30:00Z", version_id="v6", from_version="v5", percent=50),
    r("promote", "success", "2026-01-05T11:00:00Z", version_id="v6", from_version="v5",
      commit_time="2026-01-05T09:00:00Z"),
    # canary v7 aborted after 20 min (failed change, recovery 1200 s)
    r("canary", "success", "2026-01-06T10:00:00Z", version_id="v7", from_version="v6", percent=10),
    r("abort", "success", "2026-01-06T10:20:00Z", version_id="v6", from_version="v7", to_version="v6"),
    # production: one healthy deploy, lead 1 day
    r("deploy", "success", "2026-01-07T00:00:00Z", environment="production", version_id="p1",
      commit_time="2026-01-06T00:00:00Z"),
    # dome-api in staging: unhealthy, never recovered
    r("deploy", "unhealthy", "2026-01-07T10:00:00Z", service="dome-api", version_id="a1", verified=False),
]
SINCE = parse_time("2026-01-01T00:00:00Z")
UNTIL = parse_time("2026-01-08T00:00:00Z")


@pytest.fixture
def report():
    return compute(LEDGER, since=SINCE, until=UNTIL)


def test_per_service(report) -> None:
    silo = report.group("staging", "silo")
    assert silo.deployments == 4  # D1, D4, D5, promote v6
    assert silo.deployments_per_day == pytest.approx(4 / 7, abs=1e-4)
    assert silo.lead_time_median_s == 7200  # 1h 2h 2h 4h
    assert silo.lead_time_mean_s == 8100
    assert silo.changes == 6  # D1 D2 D4 D5 canary-v6 canary-v7
    assert silo.failed_changes == 3  # D2 D4 canary-v7
    assert silo.change_failure_rate == 0.5
    assert silo.mttr_s == (300 + 7200 + 1200) / 3
    assert silo.recoveries == 3 and silo.open_failures == 0
    assert silo.failed_attempts == 1
    assert report.window_days == 7


def test_other_environment_and_service(report) -> None:
    prod = report.group("production", "silo")
    assert (prod.deployments, prod.changes, prod.failed_changes) == (1, 1, 0)
    assert prod.change_failure_rate == 0.0 and prod.mttr_s is None
    assert prod.lead_time_median_s == 86400
    api = report.group("staging", "dome-api")
    assert (api.deployments, api.changes, api.failed_changes, api.open_failures) == (0, 1, 1, 1)
    assert api.change_failure_rate == 1.0 and api.mttr_s is None and api.lead_time_median_s is None


def test_environment_rollup(report) -> None:
    staging = report.group("staging")  # service "*"
    assert staging.deployments == 4
    assert staging.changes == 7 and staging.failed_changes == 4
    assert staging.change_failure_rate == round(4 / 7, 4)
    assert staging.mttr_s == 2900 and staging.open_failures == 1
    assert [(g.environment, g.service) for g in report.groups] == [
        ("production", "silo"), ("production", "*"),
        ("staging", "dome-api"), ("staging", "silo"), ("staging", "*"),
    ]


def test_since_filters_but_recoveries_after_the_window_start_still_count() -> None:
    report = compute(LEDGER, since=parse_time("2026-01-03T00:00:00Z"), until=UNTIL)
    silo = report.group("staging", "silo")
    assert (silo.deployments, silo.changes, silo.failed_changes) == (3, 4, 2)
    assert silo.mttr_s == (7200 + 1200) / 2
    assert silo.failed_attempts == 1


def test_a_later_healthy_deploy_is_the_recovery_of_an_unhealthy_one() -> None:
    records = [
        r("deploy", "unhealthy", "2026-01-01T00:00:00Z", version_id="a"),
        r("deploy", "failure", "2026-01-01T00:10:00Z"),
        r("deploy", "success", "2026-01-01T00:30:00Z", version_id="b"),
    ]
    silo = compute(records, until=UNTIL).group("staging", "silo")
    assert (silo.changes, silo.failed_changes, silo.mttr_s) == (2, 1, 1800)


def test_empty_ledger() -> None:
    report = compute([], until=UNTIL)
    assert report.groups == ()
    assert "no records" in to_table(report)


def test_table_and_json(report) -> None:
    table = to_table(report)
    assert "environment" in table.splitlines()[1] and "CFR" in table
    assert "50%" in table and "48m 20s" in table  # silo's MTTR, 2900 s
    data = json.loads(to_json(report))
    assert data["groups"][0]["environment"] == "production"
    assert data["since"] == "2026-01-01T00:00:00.000Z"


def test_helpers() -> None:
    assert human_duration(None) == "-"
    assert human_duration(42) == "42s"
    assert human_duration(7500) == "2h 05m"
    assert human_duration(90000) == "1d 01h"
    now = parse_time("2026-01-08T00:00:00Z")
    assert parse_since("7d", now=now) == SINCE
    assert parse_since("2026-01-01") == SINCE
