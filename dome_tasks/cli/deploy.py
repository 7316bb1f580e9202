"""Deploy tasks with the just recipes' names: deploy, deploy-env, db-migrate-*, render, plan."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from invoke import task

from dome_tasks.justargs import recipe

from dome_tasks.cli.common import Settings, boundary, is_dry, load_manifest
from dome_tasks.errors import Refused, ToolMissingError

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest import Manifest
    from dome_tasks.lifecycle import Session
    from dome_tasks.plan import Tools

SERVICE_HELP = "a service from the manifest; empty or 'all' means every service"
ENV_HELP = "development|staging|production|local (aliases: dev, stg, prod)"
DRY_HELP = "print every step and command without running anything"
YES_HELP = "do not ask for confirmation (required for protected environments without a terminal)"


def discover_tools(manifest: Manifest, *, dry_run: bool) -> Tools:
    """Find wrangler and just once; a dry run tolerates a missing wrangler."""
    import subprocess

    from dome_tasks import wrangler as wr
    from dome_tasks.plan import Tools

    wrangler_bin = wr.find_wrangler(manifest.root, dry_run=dry_run)
    try:
        just_bin = wr.find_just()
    except ToolMissingError:
        return Tools(wrangler=wrangler_bin)
    listing = subprocess.run(
        [just_bin, "--summary"], cwd=manifest.root, capture_output=True, text=True, check=False
    )
    recipes = frozenset(listing.stdout.split()) if listing.returncode == 0 else frozenset()
    return Tools(wrangler=wrangler_bin, just=just_bin, just_recipes=recipes)


def confirm_protected(
    c: Context, manifest: Manifest, environment: str, services: list[str], yes: bool
) -> None:
    """Protected environments ask on a terminal; without one, ``--yes`` (or ``dome.yes`` in
    invoke's configuration, e.g. ``INVOKE_DOME_YES=1`` for ``just deploy`` in a script) is required."""
    env = manifest.environment(environment)
    if not env.protected or yes or Settings.from_context(c).assume_yes:
        return
    what = f"{len(services)} service(s) ({', '.join(services)}) to {env.name}"
    if not sys.stdin.isatty():
        raise Refused(
            f"refusing to deploy {what}: {env.name} is protected and there is no terminal to confirm",
            hint="pass --yes (or set INVOKE_DOME_YES=1) to confirm non-interactively",
        )
    answer = input(f"Deploy {what}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Refused("deploy cancelled")


@dataclass(frozen=True)
class DeployOptions:
    """What a deploy task's flags ask for."""

    dry_run: bool = False
    yes: bool = False
    build: bool = True
    verify: bool = True
    rollback_on_failure: bool | None = None  # None: on for protected environments
    log_format: str = ""
    rehearse: bool = False  # against a throwaway Cloudflare API emulator


def deploy_services(
    c: Context, manifest: Manifest, services: list[str], environment: str, options: DeployOptions
) -> None:
    """Deploy *services* (in dependency order) to *environment*: the call behind every deploy task.

    Remote environments: build, render, ``wrangler deploy``, verify, and (when verification fails
    and rollback is on) roll back; each step is logged and recorded in the ledger.
    """
    env = manifest.environment(environment)
    ordered = manifest.deploy_order(services)
    if env.is_local:
        from dome_tasks.cli.local_env import deploy_local

        deploy_local(c, manifest, ordered, dry_run=options.dry_run)
        return
    from dome_tasks.lifecycle import Session, deploy_verified

    tools = discover_tools(manifest, dry_run=options.dry_run)
    if not options.dry_run and not options.rehearse:
        confirm_protected(c, manifest, env.name, ordered, options.yes)
    session = Session.open(c, manifest, dry_run=options.dry_run, log_format=options.log_format or None)
    with maybe_rehearsal(session, env.name, options.rehearse and not options.dry_run) as rehearsing:
        try:
            deploy_verified(
                session, ordered, env.name, build=options.build, tools=tools,
                verify_after=options.verify and not rehearsing,
                rollback_on_failure=options.rollback_on_failure,
            )
        finally:
            if not options.dry_run:
                session.log.emit_summary()


@contextlib.contextmanager
def maybe_rehearsal(session: Session, environment: str, rehearse: bool) -> Iterator[bool]:
    """Point the session's wrangler at a throwaway emulator when rehearsing."""
    if not rehearse:
        yield False
        return
    import os

    from dome_tasks.cli.rehearse import rehearsal

    with rehearsal(session.manifest, environment) as emulator:
        session.base_env = {**os.environ, **emulator.env()}
        print("rehearsal: health checks skipped (the emulator does not run workers)")
        yield True


def _options(c: Context, dry_run: bool, yes: bool, no_build: bool, no_verify: bool,
             rollback_on_failure: bool, no_rollback: bool, log_format: str, rehearse: bool) -> DeployOptions:
    rollback = True if rollback_on_failure else (False if no_rollback else None)
    return DeployOptions(is_dry(c, dry_run), yes, not no_build, not no_verify, rollback, log_format, rehearse)


DEPLOY_HELP = {
    "service": SERVICE_HELP, "env": ENV_HELP, "dry_run": DRY_HELP, "yes": YES_HELP,
    "no_build": "skip the build step",
    "no_verify": "skip the health check after deploying",
    "rollback_on_failure": "roll back when verification fails (default for protected environments)",
    "no_rollback": "never roll back automatically, even in protected environments",
    "log_format": "text (default) or json: structured log events on stderr",
    "rehearse": "run everything against a throwaway Cloudflare API emulator and show the result",
}


@recipe(help={k: v for k, v in DEPLOY_HELP.items() if k != "env"})
@boundary
def deploy(c, service="", *, dry_run=False, yes=False, no_build=False, no_verify=False,
           rollback_on_failure=False, no_rollback=False, log_format="", rehearse=False):
    """Deploy SERVICE (or every service, in dependency order) to production."""
    from dome_tasks.plan import all_services

    manifest = load_manifest(c)
    options = _options(c, dry_run, yes, no_build, no_verify, rollback_on_failure, no_rollback,
                       log_format, rehearse)
    deploy_services(c, manifest, all_services(manifest, service), "production", options)


@recipe(name="deploy-env", help=DEPLOY_HELP)
@boundary
def deploy_env(c, service, env, *, dry_run=False, yes=False, no_build=False, no_verify=False,
               rollback_on_failure=False, no_rollback=False, log_format="", rehearse=False):
    """Deploy SERVICE ('all' for every service) to ENV."""
    from dome_tasks.plan import all_services

    manifest = load_manifest(c)
    options = _options(c, dry_run, yes, no_build, no_verify, rollback_on_failure, no_rollback,
                       log_format, rehearse)
    deploy_services(c, manifest, all_services(manifest, service), env, options)


def _migrate(c: Context, environment: str, dry_run: bool, yes: bool, rehearse: bool) -> None:
    from dome_tasks.lifecycle import Session, migrate_recorded
    from dome_tasks.plan import migrate_plan

    manifest = load_manifest(c)
    dry = is_dry(c, dry_run)
    steps = migrate_plan(manifest, environment, discover_tools(manifest, dry_run=dry))
    if not steps:
        print(f"no service has D1 migrations in {manifest.environment(environment).name}")
        return
    if not dry and not rehearse:
        services = list(dict.fromkeys(s.service for s in steps if s.service))
        confirm_protected(c, manifest, environment, services, yes)
    session = Session.open(c, manifest, dry_run=dry)
    with maybe_rehearsal(session, environment, rehearse and not dry):
        migrate_recorded(session, steps)


MIGRATE_HELP = {"dry_run": DRY_HELP, "yes": YES_HELP,
                "rehearse": "apply them in a throwaway Cloudflare API emulator and show the result"}


@task(name="db-migrate-dev", help=MIGRATE_HELP)
@boundary
def db_migrate_dev(c, dry_run=False, yes=False, rehearse=False):
    """Apply D1 migrations to development (remote)."""
    _migrate(c, "development", dry_run, yes, rehearse)


@task(name="db-migrate-staging", help=MIGRATE_HELP)
@boundary
def db_migrate_staging(c, dry_run=False, yes=False, rehearse=False):
    """Apply D1 migrations to staging (remote)."""
    _migrate(c, "staging", dry_run, yes, rehearse)


@task(name="db-migrate-prod", help=MIGRATE_HELP)
@boundary
def db_migrate_prod(c, dry_run=False, yes=False, rehearse=False):
    """Apply D1 migrations to production (remote; asks for confirmation)."""
    _migrate(c, "production", dry_run, yes, rehearse)


@recipe(help={"service": SERVICE_HELP, "env": ENV_HELP + "; empty means every environment"})
@boundary
def render(c, service="", env=""):
    """Render the wrangler.toml of SERVICE (or all) for ENV (or all) into .dome/build/."""
    from dome_tasks.plan import all_services
    from dome_tasks.render import render_all

    manifest = load_manifest(c)
    services = all_services(manifest, service)
    environments = [manifest.environment(env).name] if env else list(manifest.environments)
    for path in render_all(manifest, services, environments):
        print(path)


@recipe(
    help={"service": SERVICE_HELP, "env": ENV_HELP + " (default: production)",
          "json": "print the plan as JSON: waves and steps, for CI matrices"},
)
@boundary
def plan(c, service="", env="production", json_=False):
    """Print the ordered steps a deploy would run, wave by wave."""
    from dome_tasks.plan import all_services, deploy_plan

    manifest = load_manifest(c)
    environment = manifest.environment(env)
    services = all_services(manifest, service)
    waves = manifest.waves(services)
    if environment.is_local:
        steps = []
    else:
        steps = deploy_plan(manifest, services, environment.name, discover_tools(manifest, dry_run=True))
    if json_:
        from dome_tasks.ci_events import waves_json

        payload = waves_json(manifest, manifest.deploy_order(services), environment.name)
        payload["steps"] = [
            {"event": s.event, "service": s.service, "description": s.description, "display": s.display()}
            for s in steps
        ]
        print(json.dumps(payload, indent=2))
        return
    print(f"plan for {environment.name}: {len(services)} service(s) in {len(waves)} wave(s)")
    for number, wave in enumerate(waves, 1):
        print(f"wave {number}: {', '.join(wave)}")
        for step in steps:
            if step.service in wave:
                print(f"  {step.event:<7} {step.display()}")


TASKS = [deploy, deploy_env, db_migrate_dev, db_migrate_staging, db_migrate_prod, render, plan]
