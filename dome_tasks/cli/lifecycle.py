"""Lifecycle tasks: verify, rollback, canary, promote, abort, history, metrics, logs, status,
secret-put, resources. Thin: read the settings and resolve the words once, open a session, call
``dome_tasks.lifecycle`` (deploy, traffic, account), print."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dome_tasks.cli.common import (
    Settings,
    boundary,
    confirm_protected,
    is_dry,
    load_manifest,
    parse_whole,
    recipe,
)

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.lifecycle.session import Session
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.plan.target import ResolvedRequest, Target

SERVICE = "a service from the manifest"
ENV = "development|staging|production (aliases: dev, stg, prod)"
DRY = "print the steps and exact commands without running anything"
YES = "confirm a protected environment without a prompt (needed without a terminal)"
JSON = "print one JSON document on stdout (docs/json.md); everything else goes to stderr"
LOG_FORMAT = "structured log events on stderr: text (default) or json (one object per line)"
SUBDOMAIN = "your account's workers.dev subdomain (<sub>.workers.dev), when no route/health_url"
BASE_URL = "send health checks to this origin instead, keeping the real Host (tests, proxies)"
DEADLINE = "seconds the health check may keep retrying (default 30)"


@dataclass(frozen=True)
class Opened:
    """A lifecycle task's facts, each read once: settings, the resolved request, the session."""

    settings: Settings
    request: ResolvedRequest
    session: Session

    @property
    def target(self) -> Target:
        return self.request.targets[0]

    def confirm(self, yes: bool) -> None:
        """Protected environments ask on a terminal; without one, ``--yes`` is required."""
        if not self.session.dry_run:
            confirm_protected(self.request.environment, self.request.services, self.settings, yes)


def _open(c: Context, service: str | None, env: str, *, dry_run: bool = False, yes: bool = False,
          log_format: str = "", subdomain: str = "", base_url: str = "",
          deadline: str | float = "", manifest: Manifest | None = None) -> Opened:
    """Read the settings, resolve SERVICE (``None``: no service) in ENV and open the session
    (with *manifest*, when the task has loaded it already)."""
    from dome_tasks.lifecycle.session import Session
    from dome_tasks.plan.target import resolve
    from dome_tasks.tools import find_wrangler

    settings = Settings.read(c, log_format=log_format or None, yes=yes, verify_deadline=deadline or None,
                             workers_subdomain=subdomain or None, health_base_url=base_url or None)
    manifest = manifest or load_manifest(settings)
    dry = is_dry(c, dry_run)
    wrangler = find_wrangler(manifest.root, dry_run=dry)
    services = [] if service is None else [service]
    request = resolve(manifest, services, env, wrangler=wrangler,
                      remote_only="versions, rollbacks and canaries")
    session = Session.open(c, settings, manifest.root, dry_run=dry, manifest=manifest)
    return Opened(settings, request, session)


@contextmanager
def _summarised(session: Session) -> Iterator[Session]:
    """Close the run with its ``run`` event (counters and timings), success or not."""
    try:
        yield session
    finally:
        if session.log.events and not session.dry_run:
            session.log.emit_summary()


@recipe(help={"service": SERVICE, "env": ENV, "subdomain": SUBDOMAIN, "base_url": BASE_URL,
              "deadline": DEADLINE, "no_smoke": "skip the service's smoke commands",
              "dry_run": DRY, "log_format": LOG_FORMAT, "json": JSON})
@boundary
def verify(c, service, env, *, subdomain="", base_url="", deadline="", no_smoke=False, dry_run=False,
           log_format="", json_=False):
    """Check that SERVICE in ENV is healthy: GET its health URL (200), then its smoke commands.

    Example: invoke verify silo staging
    """
    from dome_tasks.cli.output import json_output
    from dome_tasks.lifecycle.deploy import verify_target

    with json_output(json_, "verify") as document:
        opened = _open(c, service, env, dry_run=dry_run, log_format=log_format,
                       subdomain=subdomain, base_url=base_url, deadline=deadline)
        with _summarised(opened.session):
            result = verify_target(opened.session, opened.target, smoke=not no_smoke)
        if document is not None:
            target = opened.target
            document.send({
                "service": target.service, "environment": target.environment,
                "worker": target.worker, "dry_run": opened.session.dry_run,
                "ok": result is not None and result.ok,
                "checks": [] if result is None else [dataclasses.asdict(check)
                                                     for check in result.checks],
            })


@recipe(help={"service": SERVICE, "env": ENV,
              "version": "the version id to roll back to (default: the last version the ledger "
                         "saw healthy, else wrangler's previous deployment)",
              "reason": "why (stored in the ledger and as wrangler's deployment message)",
              "no_verify": "do not verify after rolling back", "yes": YES, "dry_run": DRY,
              "log_format": LOG_FORMAT, "subdomain": SUBDOMAIN, "base_url": BASE_URL})
@boundary
def rollback(c, service, env, version="", *, reason="", no_verify=False, yes=False, dry_run=False,
             log_format="", subdomain="", base_url=""):
    """Roll SERVICE in ENV back to VERSION (default: the last version that verified healthy).

    Example: invoke rollback silo production --yes
    """
    from dome_tasks.lifecycle import traffic

    opened = _open(c, service, env, dry_run=dry_run, yes=yes, log_format=log_format,
                   subdomain=subdomain, base_url=base_url)
    opened.confirm(yes)
    with _summarised(opened.session):
        traffic.rollback(opened.session, opened.target, version or None,
                         reason=reason or "manual rollback", verify_after=not no_verify)


@recipe(help={"service": SERVICE, "env": ENV,
              "percent": "share of requests for the new version, 1-99 (default 10); with a canary "
                         "already running, moves it to this share without uploading",
              "message": "version/deployment message", "tag": "version tag (e.g. the git tag)",
              "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT})
@boundary
def canary(c, service, env, *, percent="10", message="", tag="", yes=False, dry_run=False,
           log_format=""):
    """Upload a new version of SERVICE and send --percent of ENV's traffic to it.

    Example: invoke canary silo staging --percent 10
    """
    from dome_tasks.lifecycle import traffic

    share = parse_whole(percent, "--percent", low=1, high=99, example="--percent 10")
    opened = _open(c, service, env, dry_run=dry_run, yes=yes, log_format=log_format)
    opened.confirm(yes)
    with _summarised(opened.session):
        traffic.canary(opened.session, opened.target, share, message=message or None,
                       tag=tag or None)


@recipe(help={"service": SERVICE, "env": ENV, "no_verify": "do not verify after promoting",
              "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT, "subdomain": SUBDOMAIN,
              "base_url": BASE_URL})
@boundary
def promote(c, service, env, *, no_verify=False, yes=False, dry_run=False, log_format="",
            subdomain="", base_url=""):
    """Give the running canary of SERVICE 100% of ENV's traffic (aborts if verification fails).

    Example: invoke promote silo staging
    """
    from dome_tasks.lifecycle import traffic

    opened = _open(c, service, env, dry_run=dry_run, yes=yes, log_format=log_format,
                   subdomain=subdomain, base_url=base_url)
    opened.confirm(yes)
    with _summarised(opened.session):
        traffic.promote(opened.session, opened.target, verify_after=not no_verify)


@recipe(help={"service": SERVICE, "env": ENV, "yes": YES, "dry_run": DRY, "log_format": LOG_FORMAT})
@boundary
def abort(c, service, env, *, yes=False, dry_run=False, log_format=""):
    """End the running canary of SERVICE: the old version takes 100% of ENV's traffic back.

    Example: invoke abort silo staging
    """
    from dome_tasks.lifecycle import traffic

    opened = _open(c, service, env, dry_run=dry_run, yes=yes, log_format=log_format)
    opened.confirm(yes)
    with _summarised(opened.session):
        traffic.abort(opened.session, opened.target)


def _ledger_read(c: Context, env: str, service: str = ""):
    """The history's records and the environment name (alias resolved) of ``--env``, if any:
    the shared history (the account's D1, the local ledger as its cache) unless dome.history
    is off. A *service* the manifest does not have, and no record names, is a
    :class:`UsageError`."""
    from dome_tasks.lifecycle.history import History

    settings = Settings.read(c)
    manifest = load_manifest(settings)
    environment = manifest.environment(env).name if env else None
    ledger = History.open(manifest, settings.ledger_path(manifest.root),
                          shared=settings.shared_history)
    read = ledger.read()
    _report_problems(read.problems)
    if service and not any(r.service == service for r in read.records):
        manifest.service(service)  # neither in the ledger nor in the manifest: "did you mean"
    return ledger, _settled(ledger, read.records, manifest), environment


def _settled(ledger, records, manifest):
    """The records plus those that settle an ``unknown`` change with what serves now."""
    import os

    from dome_tasks.lifecycle.reconcile import reconciler_for, settle_in

    added = settle_in(ledger, records,
                      lambda environment: reconciler_for(manifest, environment, os.environ,
                                                         manifest.root))
    for record in added:
        print(f"history: {record.worker}: {record.reason}", file=sys.stderr)
    return (*records, *added)


def _report_problems(problems) -> None:
    for problem in problems:
        print(f"warning: ledger {problem}", file=sys.stderr)


@recipe(help={"service": "only this service (default: all)",
              "env": "only this environment (default: all)",
              "json": JSON, "limit": "only the newest N records"})
@boundary
def history(c, service="", env="", *, json_=False, limit=""):
    """Show the deployment ledger: deploys, rollbacks, canary steps, migrations.

    Example: invoke history silo staging
    """
    from dome_tasks.cli.output import json_output
    from dome_tasks.lifecycle.ledger import select

    with json_output(json_, "history") as document:
        newest = parse_whole(limit, "--limit", low=0, example="--limit 20") if limit != "" else 0
        ledger, records, environment = _ledger_read(c, env, service)
        records = list(select(records, service=service or None, environment=environment))
        if newest:
            records = records[-newest:]
        if document is not None:
            document.send({"records": [json.loads(r.to_json()) for r in records]})
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
              "json": JSON, "env": "only this environment",
              "service": "only this service"})
@boundary
def metrics(c, *, since="", json_=False, env="", service=""):
    """DORA metrics from the ledger: deploy frequency, lead time, change failure rate, MTTR.

    Example: invoke metrics --since 30d
    """
    from dome_tasks.cli.output import json_output
    from dome_tasks.errors import UsageError
    from dome_tasks.lifecycle import metrics as dora

    with json_output(json_, "metrics") as document:
        try:
            start = dora.parse_since(since) if since else None
        except ValueError:
            raise UsageError(f"--since {since!r} is neither a date/time nor an age",
                             hint="e.g. --since 2026-01-31 or --since 7d (d, h, m, w)") from None
        _, records, environment = _ledger_read(c, env, service)
        report = dora.compute(dora.select_records(records, environment, service or None),
                              since=start)
        if document is not None:
            document.send(json.loads(dora.to_json(report)))
            return
    print(dora.to_table(report))


@recipe(help={"service": SERVICE, "env": ENV})
@boundary
def logs(c, service, env):
    """Stream the live logs of SERVICE in ENV (wrangler tail) until Ctrl-C.

    Example: invoke logs silo staging
    """
    from dome_tasks.lifecycle.account import tail

    opened = _open(c, service, env)
    tail(opened.session, opened.target)


@recipe(help={"service": SERVICE + "; or 'local' alone for the whole local environment",
              "env": ENV, "json": JSON, "dry_run": DRY})
@boundary
def status(c, service="", env="", *, json_=False, dry_run=False):
    """Show what serves SERVICE in ENV (wrangler deployments status); `status local`: local processes.

    Example: invoke status silo staging
    """
    from dome_tasks.cli.local_env import print_local_status, wants_local
    from dome_tasks.cli.output import json_output

    with json_output(json_, "status") as document:
        manifest = load_manifest(c)  # once: its warnings are said once
        local_services = wants_local(manifest, service, env)
        if local_services is not None:
            print_local_status(manifest, local_services, document)
            return
        from dome_tasks.lifecycle.traffic import status as traffic_status

        opened = _open(c, service, env, dry_run=dry_run, manifest=manifest)
        data = traffic_status(opened.session, opened.target)
        if document is not None:
            document.send({"dry_run": opened.session.dry_run, **(data or {})})
            return
    if not data:
        return
    if not data["deployed"]:
        print(f"{data['worker']} ({data['environment']}): not deployed")
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
    """Set secret NAME on SERVICE in ENV; the value comes from stdin or a hidden prompt.

    Example: invoke secret-put SILO_API_KEY silo staging < key.txt
    """
    from dome_tasks.lifecycle.account import secret_put as put

    opened = _open(c, service, env, dry_run=dry_run, yes=yes, log_format=log_format)
    opened.confirm(yes)
    value = _read_secret(name)
    with _summarised(opened.session):
        put(opened.session, opened.target, name, value)


def _read_secret(name: str) -> str:
    """Piped stdin (one trailing newline dropped), else a hidden prompt on the terminal."""
    if not sys.stdin.isatty():
        value = sys.stdin.read()
        return value.removesuffix("\n")
    import getpass

    return getpass.getpass(f"value for {name} (hidden): ")


@recipe(help={"env": ENV, "log_format": LOG_FORMAT})
@boundary
def resources(c, env, *, log_format=""):
    """List the D1 databases, R2 buckets and Vectorize indexes of ENV's account.

    Example: invoke resources staging
    """
    from dome_tasks.errors import CommandFailed
    from dome_tasks.lifecycle.account import resources as listings

    opened = _open(c, None, env, log_format=log_format)
    with _summarised(opened.session) as session:
        failed = listings(session, opened.request)
    if failed:
        raise CommandFailed(f"listing failed for: {', '.join(failed)}")


TASKS = [verify, rollback, canary, promote, abort, history, metrics, logs, status, secret_put, resources]
