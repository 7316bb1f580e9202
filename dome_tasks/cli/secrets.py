"""Secret tasks: secrets-check, secrets-sync. Thin: read the settings and words once, observe
the workers' secret names through the API, decide, act through the session, print."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from dome_tasks.cli.common import (
    Settings,
    boundary,
    confirm_protected,
    is_dry,
    load_manifest,
    recipe,
)

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.cloudflare.api import CloudflareApi
    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.secrets.status import SecretStatus

ENV = "development|staging|production, or a preview (pr-N)"
SERVICE = "only this service (default: every service)"


def _request(settings: Settings, service: str, env: str) -> ResolvedRequest:
    """ENV resolved once: a manifest environment, or a recorded preview ``pr-N``."""
    from dome_tasks.plan.target import resolve
    from dome_tasks.tools import find_wrangler

    manifest = load_manifest(settings)
    if env not in manifest.environments and env.lower().startswith("pr-"):
        from dome_tasks.preview.actions import find_record
        from dome_tasks.preview.derive import parse_number, preview_manifest

        number = parse_number(env)
        found = find_record(manifest, number)
        if found is not None:
            manifest = preview_manifest(manifest, found[1].template, number)
    services = None if not service or service == "all" else [service]
    return resolve(manifest, services, env, wrangler=find_wrangler(manifest.root),
                   remote_only="secrets")


def _api(request: ResolvedRequest) -> CloudflareApi:
    import os

    from dome_tasks.cloudflare.api import CloudflareApi
    from dome_tasks.cloudflare.credentials import wrangler_near
    from dome_tasks.errors import UsageError

    api = CloudflareApi.from_environ(os.environ, account_id=request.environment.account_id,
                                     wrangler=wrangler_near(request.root))
    if api is None:
        raise UsageError("reading secrets needs Cloudflare credentials and an account id",
                         hint="set CLOUDFLARE_API_TOKEN (or run `wrangler login`) and the "
                              "environment's account_id (or CLOUDFLARE_ACCOUNT_ID)")
    return api


def _observe(request: ResolvedRequest) -> list[SecretStatus]:
    from dome_tasks.secrets.status import observe

    return observe(_api(request), list(request.targets))


@recipe(name="secrets-check", help={"env": ENV, "service": SERVICE,
                                    "json": "print the result as JSON on stdout"})
@boundary
def secrets_check(c, env, service="", *, json_=False):
    """List, per service, the declared secrets ENV lacks (and undeclared ones); exit 1 if any.

    Example: invoke secrets-check production
    """
    from dome_tasks.cli.output import json_output

    with json_output(json_, "secrets-check") as document:
        request = _request(Settings.read(c), service, env)
        statuses = _observe(request)
        ok = not any(s.missing for s in statuses)
        if document is not None:
            document.send({"environment": request.environment.name, "ok": ok,
                           "services": [s.to_dict() for s in statuses]})
    if document is None:
        print(f"secrets in {request.environment.name}:")
        for s in statuses:
            state = "" if s.deployed else " (not deployed)"
            print(f"  {s.service:<20} {s.worker}{state}")
            print(f"    missing:    {', '.join(s.missing) or '-'}")
            if s.undeclared:
                print(f"    undeclared: {', '.join(s.undeclared)}")
        print("every declared secret is set" if ok else
              f"missing secrets: set them with `invoke secrets-sync {request.environment.name} "
              "--from-file FILE` (or --from-env)")
    if not ok:
        from invoke.exceptions import Exit

        raise Exit(code=1)


@recipe(name="secrets-sync", help={
    "env": ENV, "service": SERVICE, "from_file": "a dotenv file of NAME=value lines",
    "from_env": "take the values from environment variables of the same names (CI secrets)",
    "prune": "also remove the secrets a service does not declare (asks; --yes confirms)",
    "yes": "confirm protected environments and --prune without a prompt",
    "dry_run": "print the steps (never the values) without running anything",
    "json": "print what was set and removed as JSON on stdout"})
@boundary
def secrets_sync(c, env, service="", *, from_file="", from_env=False, prune=False, yes=False,
                 dry_run=False, json_=False):
    """Set ENV's declared secrets from a dotenv file or the environment (values on stdin only).

    --prune also removes the secrets a service does not declare.

    Example: invoke secrets-sync staging --from-file .env.staging
    """
    from dome_tasks.cli.output import json_output

    with json_output(json_, "secrets-sync") as document:
        environment, decisions = _sync(c, env, service, from_file=from_file, from_env=from_env,
                                       prune=prune, yes=yes, dry_run=dry_run, json_=json_)
        if document is not None:
            document.send({"environment": environment, "ok": True,
                           "services": [d.to_dict() for d in decisions]})
            return
    for d in decisions:
        parts = [f"set {', '.join(d.set)}" if d.set else "nothing set"]
        parts += [f"removed {', '.join(d.removed)}"] if d.removed else []
        parts += [f"no value for {', '.join(d.no_value)}"] if d.no_value else []
        print(f"  {d.service:<20} {'; '.join(parts)}")


def _sync(c: Context, env: str, service: str, *, from_file: str, from_env: bool, prune: bool,
          yes: bool, dry_run: bool, json_: bool) -> tuple[str, list[Any]]:
    """secrets-sync's work: the environment's name and the decision of each service."""
    import dataclasses

    from dome_tasks.cli.preview import _confirm, secret_values
    from dome_tasks.errors import UsageError
    from dome_tasks.lifecycle.session import Session
    from dome_tasks.secrets.sync import decide_sync, sync

    if not from_file and not from_env:
        raise UsageError("say where the values come from",
                         hint="--from-file FILE (dotenv) or --from-env")
    settings = Settings.read(c, yes=yes)
    request = _request(settings, service, env)
    values = secret_values(request.manifest, from_file, from_env)
    statuses = _observe(request)
    pairs = list(zip(request.targets, statuses))
    decisions = decide_sync(pairs, values, prune=prune)
    dry = is_dry(c, dry_run)
    if not dry and any(d.steps for d in decisions):
        confirm_protected(request.environment, [d.service for d in decisions if d.steps],
                          settings, yes)
        if any(d.removed for d in decisions):
            names = "; ".join(f"{d.worker}: {', '.join(d.removed)}" for d in decisions if d.removed)
            _confirm(f"remove undeclared secrets ({names})", settings, yes)
    session = Session.open(c, settings, request.root, dry_run=dry, manifest=request.manifest)
    session = dataclasses.replace(session, out=sys.stderr if json_ else sys.stdout)
    sync(session, pairs, decisions, values)
    return request.environment.name, decisions


TASKS = [secrets_check, secrets_sync]
