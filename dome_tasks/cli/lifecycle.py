"""Lifecycle tasks: verify, rollback, canary, promote, abort, history, metrics, logs, status,
secret-put, resources. Thin: parse, open a session, call ``dome_tasks.lifecycle``, print."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from dome_tasks.cli.common import Settings, boundary, is_dry, load_manifest
from dome_tasks.justargs import recipe

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.lifecycle import Session

SERVICE = "a service from the manifest"
ENV = "development|staging|production (aliases: dev, stg, prod)"
DRY = "print the steps and exact commands without running anything"
YES = "confirm a protected environment without a prompt (needed without a terminal)"
LOG_FORMAT = "structured log events on stderr: text (default) or json (one object per line)"
SUBDOMAIN = "your account's workers.dev subdomain (<sub>.workers.dev), when no route/health_url"
BASE_URL = "send health checks to this origin instead, keeping the real Host (tests, proxies)"
DEADLINE = "seconds the health check may keep retrying (default 30)"


def _session(c: Context, *, dry_run: bool = False, log_format: str = "", subdomain: str = "",
             base_url: str = "", deadline: float = 0) -> Session:
    from dome_tasks.lifecycle import Session

    return Session.open(
        c, load_manifest(c), dry_run=is_dry(c, dry_run), log_format=log_format or None,
        subdomain=subdomain or None, base_url=base_url or None, deadline=deadline or None,
    )


@contextmanager
def _summarised(session: Session) -> Iterator[Session]:
    """Close the run with its ``run`` event (counters and timings), success or not."""
    try:
        yield session
    finally:
        if session.log.events and not session.dry_run:
            session.log.emit_summary()


def _confirm(session: Session, environment: str, service: str, yes: bool) -> None:
    """Protected environments ask on a terminal; without one, ``--yes`` is required."""
    if session.dry_run:
        return
    from dome_tasks.cli.deploy import confirm_protected

    confirm_protected(session.c, session.manifest, environment, [service], yes)


@recipe(help={"service": SERVICE, "env": ENV, "subdomain": SUBDOMAIN, "base_url": BASE_URL,
              "deadline": DEADLINE, "no_smoke": "skip the service's smoke commands",
              "log_format": LOG_FORMAT})
@boundary
def verify(c, service, env, *, subdomain="", base_url="", deadline=0.0, no_smoke=False, log_format=""):
    """Check that SERVICE in ENV is healthy: GET its health URL (200), then its smoke commands."""
    from dome_tasks.errors import DomeError
    from dome_tasks.lifecycle import LifecycleError, current_traffic, verify_service

    session = _session(c, log_format=log_format, subdomain=subdomain, base_url=base_url,
                       deadline=deadline)
    with _summarised(session):
        result = verify_service(session, service, env, smoke=not no_smoke)
        if result is None:  # dry run
            return
        target = session.target(service, env)
        try:
            live = current_traffic(session, target)
            version = max(live, key=lambda item: item[1])[0] if len(live) == 1 else None
        except DomeError:
            version = None  # verification stands on its own; the version is a bonus
        session.record("verify", target, "success" if result.ok else "unhealthy", version_id=version,
                       verified=result.ok, duration_ms=sum(ch.duration_ms for ch in result.checks),
                       reason=None if result.ok else result.summary())
        if not result.ok:
            raise LifecycleError(f"{target.worker} is unhealthy: {result.summary()}")


@recipe(help={"service": SERVICE, "env": ENV,
              "version": "the version id to roll back to (default: the last version the ledger "
                         "saw healthy, else wrangler's previous deployment)",
              "reason": "why (stored in the ledger and as wrangler's deployment message)",
              "no_verify": "do not verify after rolling back", "yes": YES, "dry_run": DRY,
              "log_format": LOG_FORMAT, "subdomain": SUBDOMAIN, "base_url": BASE_URL})
@boundary
def rollback(c, service, env, version="", *, reason="", no_verify=False, yes=False, dry_run=False,
             log_format="", subdomain="", base_url=""):
    """Roll SERVICE in ENV back to VERSION (default: the last version that verified healthy)."""
    from dome_tasks import lifecycle

    session = _session(c, dry_run=dry_run, log_format=log_format, subdomain=subdomain,
                       base_url=base_url)
    _confirm(session, env, service, yes)
    with _summarised(session):
        lifecycle.rollback(session, service, env, version or None,
                           reason=reason or "manual rollback", verify_after=not no_verify)


@recipe(help={"service": SERVICE, "env": ENV,
              "percent": "share of requests for the new version, 1-99 (default 10); with a canary "
                         "already running, moves it to this share without uploading",
              "message": "version/deployment message", "tag": "version tag (e.g. the git tag)",
              "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT})
@boundary
def canary(c, service, env, *, percent=10, message="", tag="", yes=False, dry_run=False, log_format=""):
    """Upload a new version of SERVICE and send --percent of ENV's traffic to it."""
    from dome_tasks import lifecycle

    session = _session(c, dry_run=dry_run, log_format=log_format)
    _confirm(session, env, service, yes)
    with _summarised(session):
        lifecycle.canary(session, service, env, percent, message=message or None, tag=tag or None)


@recipe(help={"service": SERVICE, "env": ENV, "no_verify": "do not verify after promoting",
              "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT, "subdomain": SUBDOMAIN,
              "base_url": BASE_URL})
@boundary
def promote(c, service, env, *, no_verify=False, yes=False, dry_run=False, log_format="",
            subdomain="", base_url=""):
    """Give the running canary of SERVICE 100% of ENV's traffic (aborts if verification fails)."""
    from dome_tasks import lifecycle

    session = _session(c, dry_run=dry_run, log_format=log_format, subdomain=subdomain,
                       base_url=base_url)
    _confirm(session, env, service, yes)
    with _summarised(session):
        lifecycle.promote(session, service, env, verify_after=not no_verify)


@recipe(help={"service": SERVICE, "env": ENV, "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT})
@boundary
def abort(c, service, env, *, yes=False, dry_run=False, log_format=""):
    """End the running canary of SERVICE: the old version takes 100% of ENV's traffic back."""
    from dome_tasks import lifecycle

    session = _session(c, dry_run=dry_run, log_format=log_format)
    _confirm(session, env, service, yes)
    with _summarised(session):
        lifecycle.abort(session, service, env)


def _ledger(c: Context):  # noqa: ANN202
    from dome_tasks.ledger import Ledger

    settings = Settings.from_context(c)
    if settings.ledger:
        return Ledger(settings.ledger)
    return Ledger(load_manifest(c).root / ".dome" / "ledger.jsonl")


def _report_problems(problems) -> None:  # noqa: ANN001
    for problem in problems:
        print(f"warning: ledger {problem}", file=sys.stderr)


@recipe(help={"service": "only this service (default: all)",
              "env": "only this environment (default: all)",
              "json": "print the records as a JSON array", "limit": "only the newest N records"})
@boundary
def history(c, service="", env="", *, json_=False, limit=0):
    """Show the deployment ledger: deploys, rollbacks, canary steps, migrations."""
    from dome_tasks.ledger import select

    ledger = _ledger(c)
    read = ledger.read()
    _report_problems(read.problems)
    environment = load_manifest(c).environment(env).name if env else None
    records = list(select(read.records, service=service or None, environment=environment))
    if limit:
        records = records[-limit:]
    if json_:
        print(json.dumps([json.loads(r.to_json()) for r in records], indent=2))
        return
    if not records:
        print(f"no records in {ledger.path}")
        return
    rows = [("time", "kind", "service", "env", "version", "outcome", "verified", "from", "commit",
             "actor", "took")]
    for r in records:
        rows.append((
            r.time[:19].replace("T", " "), r.kind + (" (auto)" if r.automatic else ""), r.service,
            r.environment, (r.version_id or "-")[:8] + (f" @{r.percent}%" if r.percent else ""),
            r.outcome, {True: "yes", False: "NO", None: "-"}[r.verified],
            (r.from_version or "-")[:8], (r.commit or "-")[:8] + ("+dirty" if r.dirty else ""),
            r.actor or "-", f"{(r.duration_ms or 0) / 1000:.1f}s",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())


@recipe(help={"since": "only records from this date/time (ISO 8601) or age (7d, 12h)",
              "json": "print JSON instead of a table", "env": "only this environment",
              "service": "only this service"})
@boundary
def metrics(c, *, since="", json_=False, env="", service=""):
    """DORA metrics from the ledger: deploy frequency, lead time, change failure rate, MTTR."""
    from dome_tasks import metrics as dora
    from dome_tasks.errors import UsageError

    ledger = _ledger(c)
    read = ledger.read()
    _report_problems(read.problems)
    try:
        start = dora.parse_since(since) if since else None
    except ValueError as error:
        raise UsageError(f"--since {since!r}: {error}", hint="e.g. 2026-01-31 or 7d") from None
    environment = load_manifest(c).environment(env).name if env else None
    report = dora.compute(dora.select_records(read.records, environment, service or None), since=start)
    print(dora.to_json(report) if json_ else dora.to_table(report))


@recipe(help={"service": SERVICE, "env": ENV})
@boundary
def logs(c, service, env):
    """Stream the live logs of SERVICE in ENV (wrangler tail) until Ctrl-C."""
    from dome_tasks import lifecycle

    lifecycle.tail(_session(c), service, env)


@recipe(help={"service": SERVICE + "; or 'local' alone for the whole local environment",
              "env": ENV, "json": "print JSON", "dry_run": DRY})
@boundary
def status(c, service="", env="", *, json_=False, dry_run=False):
    """Show what serves SERVICE in ENV (wrangler deployments status); `status local`: local processes."""
    from dome_tasks.cli.local_env import print_local_status, wants_local

    local_services = wants_local(c, service, env)
    if local_services is not None:
        print_local_status(c, local_services)
        return
    from dome_tasks import lifecycle

    data = lifecycle.status(_session(c, dry_run=dry_run, log_format=""), service, env)
    if not data:
        return
    if json_:
        print(json.dumps(data, indent=2))
        return
    print(f"{data['worker']} ({data['environment']}):")
    for v in data["versions"]:
        role = f" [{v['role']}]" if v["role"] else ""
        verified = {True: "verified", False: "FAILED verification", None: "not verified"}[v["verified"]]
        print(f"  {v['percentage']:>5g}%  {v['version_id']}{role}  {v['last_action'] or '-'}, {verified}")


@recipe(name="secret-put", help={"name": "the secret's name, e.g. SILO_API_KEY", "service": SERVICE,
                                 "env": ENV, "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT})
@boundary
def secret_put(c, name, service, env, *, yes=False, dry_run=False, log_format=""):
    """Set secret NAME on SERVICE in ENV; the value comes from stdin or a hidden prompt."""
    from dome_tasks import lifecycle

    session = _session(c, dry_run=dry_run, log_format=log_format)
    _confirm(session, env, service, yes)
    value = _read_secret(name)
    with _summarised(session):
        lifecycle.secret_put(session, name, service, env, value)


def _read_secret(name: str) -> str:
    """Piped stdin (one trailing newline dropped), else a hidden prompt on the terminal."""
    if not sys.stdin.isatty():
        value = sys.stdin.read()
        return value[:-1] if value.endswith("\n") else value
    import getpass

    return getpass.getpass(f"value for {name} (hidden): ")


@recipe(help={"env": ENV, "log_format": LOG_FORMAT})
@boundary
def resources(c, env, *, log_format=""):
    """List the D1 databases, R2 buckets and Vectorize indexes of ENV's account."""
    from dome_tasks import lifecycle
    from dome_tasks.errors import CommandFailed

    with _summarised(_session(c, log_format=log_format)) as session:
        failed = lifecycle.resources(session, env)
    if failed:
        raise CommandFailed(f"listing failed for: {', '.join(failed)}")


TASKS = [verify, rollback, canary, promote, abort, history, metrics, logs, status, secret_put, resources]
