"""The deploy lifecycle below the task layer, as the integration tests drive it."""

from __future__ import annotations

import dataclasses

from invoke import Context

from dome_tasks.lifecycle.deploy import DeployOptions, deploy
from dome_tasks.lifecycle.ledger import LedgerRecord
from dome_tasks.lifecycle.session import Session
from dome_tasks.plan.target import resolve
from dome_tasks.settings import Settings, load_manifest
from dome_tasks.tools import discover_tools


def session(c: Context, *, dry_run: bool = False, **flags) -> Session:
    """The session a task opens from ``c`` (``flags`` as its command line gives them), with
    health checks retried quickly until the ``verify_deadline`` setting."""
    settings = Settings.read(c, **flags)
    manifest = load_manifest(settings)
    s = Session.open(c, settings, manifest.root, dry_run=dry_run, manifest=manifest)
    s.policy = dataclasses.replace(s.policy, initial_delay_s=0.1, request_timeout_s=1)
    return s


def deploy_verified(s: Session, services: list[str], environment: str) -> list[LedgerRecord]:
    """What ``deploy-env --no-build`` does below the task layer (without its migrations); every
    call deploys (no no-op skip)."""
    assert s.manifest is not None
    tools = discover_tools(s.manifest.root, dry_run=False)
    request = resolve(s.manifest, services, environment, wrangler=tools.wrangler)
    return deploy(s, request, DeployOptions(build=False, force=True), tools)
