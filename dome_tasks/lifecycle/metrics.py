"""DORA metrics computed from ledger records, per environment and per service.

Definitions (also in docs/lifecycle.md; all times are ledger record times, i.e. when the
action finished):

* **Deployment**: a ``deploy`` or ``promote`` record with outcome ``success`` (the version
  serves 100% of the traffic and, when verification ran, it passed).
* **Deployment frequency**: deployments / days in the window. The window runs from ``since``
  (default: the first record considered) to ``until`` (default: now).
* **Lead time for changes**: for each deployment that knows its commit time,
  ``record time - commit time``; the median and the mean are reported.
* **Change**: a new version reaching users: a ``deploy`` record that went live (outcome
  ``success`` or ``unhealthy``), or the first successful ``canary`` step of a version. A deploy
  whose command failed (outcome ``failure``) changed nothing: it is a *failed attempt*, not a
  change.
* **Failed change**: a change whose verification failed (outcome ``unhealthy``, or any canary
  step of that version ``unhealthy``), or that was followed by a ``rollback`` or ``abort`` record
  (not itself ``failure``) for the same service and environment before the next change.
* **Change failure rate**: failed changes / changes.
* **Time to recovery**: for a failed change, from its record time to the first later record
  for the same service and environment that restored a healthy state: a successful
  ``rollback``, ``abort``, ``deploy`` or ``promote``. **MTTR** is the mean over recovered
  failures; failures not yet recovered are counted as ``open``.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone

from dome_tasks._time import format_time, parse_time
from dome_tasks.lifecycle.ledger import LedgerRecord

__all__ = [
    "ALL",
    "GroupMetrics",
    "MetricsReport",
    "compute",
    "human_duration",
    "parse_since",
    "select_records",
    "to_json",
    "to_table",
]

ALL = "*"  # the service (or environment) column of a summary row


@dataclass(frozen=True)
class GroupMetrics:
    environment: str
    service: str
    deployments: int
    deployments_per_day: float
    lead_time_median_s: float | None
    lead_time_mean_s: float | None
    changes: int
    failed_changes: int
    change_failure_rate: float | None
    mttr_s: float | None
    recoveries: int
    open_failures: int
    failed_attempts: int


@dataclass(frozen=True)
class MetricsReport:
    since: str | None
    until: str
    window_days: float
    groups: tuple[GroupMetrics, ...]

    def group(self, environment: str, service: str = ALL) -> GroupMetrics:
        for item in self.groups:
            if item.environment == environment and item.service == service:
                return item
        raise KeyError((environment, service))


@dataclass(frozen=True)
class _Change:
    record: LedgerRecord
    failed: bool
    recovered_at: datetime | None


def compute(
    records: Sequence[LedgerRecord],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> MetricsReport:
    """Metrics for every (environment, service) seen, plus one row per environment (service ``*``).

    Records before ``since`` are not counted, but records after a change (rollbacks, recoveries)
    are always looked at, so a failure just inside the window still finds its recovery.
    """
    until = until or datetime.now(timezone.utc)
    ordered = sorted(records, key=lambda r: r.moment)
    window = [r for r in ordered if (since is None or r.moment >= since) and r.moment <= until]
    start = since or (window[0].moment if window else until)
    days = max((until - start).total_seconds() / 86400.0, 0.0)

    keys = sorted({(r.environment, r.service) for r in window})
    groups: list[GroupMetrics] = []
    for environment in sorted({env for env, _ in keys}):
        services = [svc for env, svc in keys if env == environment]
        per_service = {
            svc: _analyse(ordered, window, environment, svc) for svc in services
        }
        for svc in services:
            groups.append(_summarise(environment, svc, days, *per_service[svc]))
        merged_deploys = [d for svc in services for d in per_service[svc][0]]
        merged_changes = [c for svc in services for c in per_service[svc][1]]
        merged_attempts = sum(per_service[svc][2] for svc in services)
        groups.append(
            _summarise(environment, ALL, days, merged_deploys, merged_changes, merged_attempts)
        )
    return MetricsReport(
        since=format_time(since) if since else None,
        until=format_time(until),
        window_days=round(days, 4),
        groups=tuple(groups),
    )


def _analyse(
    ordered: Sequence[LedgerRecord], window: Sequence[LedgerRecord], environment: str, service: str
) -> tuple[list[LedgerRecord], list[_Change], int]:
    mine_all = [r for r in ordered if r.environment == environment and r.service == service]
    mine = [r for r in window if r.environment == environment and r.service == service]
    in_window = {id(r) for r in mine}
    deployments = [r for r in mine if r.kind in ("deploy", "promote") and r.outcome == "success"]
    attempts = sum(1 for r in mine if r.kind == "deploy" and r.outcome == "failure")

    changes: list[_Change] = []
    canary_versions: set[str] = set()
    for index, record in enumerate(mine_all):
        starts_change = False
        if record.kind == "deploy" and record.outcome in ("success", "unhealthy"):
            starts_change = True
        elif record.kind == "canary" and record.outcome != "failure":
            key = record.version_id or f"#{index}"
            if key not in canary_versions:
                canary_versions.add(key)
                starts_change = True
        if not starts_change or id(record) not in in_window:
            continue
        changes.append(_judge(record, mine_all[index + 1 :]))
    return deployments, changes, attempts


def _judge(change: LedgerRecord, later: Sequence[LedgerRecord]) -> _Change:
    """Did this change fail, and when (if ever) was service restored?"""
    failed = change.outcome == "unhealthy"
    for record in later:
        if _starts_new_change(record, change):
            break
        if record.kind == "canary" and record.version_id == change.version_id:
            failed = failed or record.outcome == "unhealthy"
        if record.kind in ("rollback", "abort") and record.outcome != "failure":
            failed = True
            break
    if not failed:
        return _Change(change, False, None)
    for record in later:
        if record.moment < change.moment:
            continue
        if record.kind in ("rollback", "abort", "deploy", "promote") and record.outcome == "success":
            return _Change(change, True, record.moment)
    return _Change(change, True, None)


def _starts_new_change(record: LedgerRecord, change: LedgerRecord) -> bool:
    if record.kind == "deploy" and record.outcome in ("success", "unhealthy"):
        return True
    return record.kind == "canary" and record.outcome != "failure" and (
        record.version_id != change.version_id
    )


def _summarise(
    environment: str,
    service: str,
    days: float,
    deployments: Sequence[LedgerRecord],
    changes: Sequence[_Change],
    attempts: int,
) -> GroupMetrics:
    leads = [
        (r.moment - parse_time(r.commit_time)).total_seconds()
        for r in deployments
        if r.commit_time
    ]
    leads = [lead for lead in leads if lead >= 0]
    failed = [c for c in changes if c.failed]
    recovered = [
        (c.recovered_at - c.record.moment).total_seconds() for c in failed if c.recovered_at
    ]
    return GroupMetrics(
        environment=environment,
        service=service,
        deployments=len(deployments),
        deployments_per_day=round(len(deployments) / days, 4) if days > 0 else float(len(deployments)),
        lead_time_median_s=_round(statistics.median(leads)) if leads else None,
        lead_time_mean_s=_round(statistics.fmean(leads)) if leads else None,
        changes=len(changes),
        failed_changes=len(failed),
        change_failure_rate=round(len(failed) / len(changes), 4) if changes else None,
        mttr_s=_round(statistics.fmean(recovered)) if recovered else None,
        recoveries=len(recovered),
        open_failures=len(failed) - len(recovered),
        failed_attempts=attempts,
    )


def _round(value: float) -> float:
    return round(value, 3)


# --- presentation ---------------------------------------------------------------------------


def to_json(report: MetricsReport) -> str:
    return json.dumps(asdict(report), indent=2)


def human_duration(seconds: float | None) -> str:
    """``None`` → ``-``; otherwise the two largest units, e.g. ``2h 05m``, ``3d 04h``, ``42s``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def to_table(report: MetricsReport) -> str:
    """A fixed-width table: one row per (environment, service), then the environment's ``*`` row."""
    header = (
        "environment",
        "service",
        "deploys",
        "per day",
        "lead time (median)",
        "changes",
        "failed",
        "CFR",
        "MTTR",
        "open",
    )
    rows = [header]
    for g in report.groups:
        rows.append(
            (
                g.environment,
                g.service,
                str(g.deployments),
                f"{g.deployments_per_day:.2f}",
                human_duration(g.lead_time_median_s),
                str(g.changes),
                str(g.failed_changes),
                "-" if g.change_failure_rate is None else f"{g.change_failure_rate:.0%}",
                human_duration(g.mttr_s),
                str(g.open_failures),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    window = f"since {report.since}" if report.since else "all records"
    lines.insert(0, f"DORA metrics, {window} until {report.until} ({report.window_days:g} days)")
    if len(rows) == 1:
        lines.append("(no records in the window)")
    return "\n".join(lines)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``--since``: an ISO date/time, or a relative ``7d``/``12h``/``30m`` back from now."""
    value = text.strip()
    units = {"d": 86400, "h": 3600, "m": 60, "w": 604800}
    if value[:-1].isdigit() and value[-1:] in units:
        base = now or datetime.now(timezone.utc)
        return base - timedelta(seconds=int(value[:-1]) * units[value[-1]])
    return parse_time(value)


def select_records(records: Iterable[LedgerRecord], environment: str | None, service: str | None) -> list[LedgerRecord]:
    return [
        r
        for r in records
        if (environment is None or r.environment == environment)
        and (service is None or r.service == service)
    ]
