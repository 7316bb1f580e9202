"""Deploy tasks with the just recipes' names: deploy, deploy-env, db-migrate-*, render, plan."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from invoke import task

from dome_tasks.justargs import recipe

from dome_tasks.cli.common import boundary, is_dry, load_manifest
from dome_tasks.errors import Refused, ToolMissingError

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest import Manifest
    from dome_tasks.plan import Tools
    from dome_tasks.steps import Step

SERVICE_HELP = "a service from the manifest; empty or 'all' means every service"
ENV_HELP = "development|staging|production|local (aliases: dev, stg, prod)"
DRY_HELP = "print every step and command without running anything"
YES_HELP = "do not ask for confirmation (required for protected environments without a terminal)"


def discover_tools(manifest: Manifest, *, dry_run: bool) -> Tools:
    """Find wrangler and just once; a dry run tolerates a missing wrangler."""
    import subprocess

    from dome_tasks import wrangler as wr
    from dome_tasks.plan import Tools

    try:
        wrangler_bin = wr.find_wrangler(manifest.root)
    except ToolMissingError:
        if not dry_run:
            raise
        wrangler_bin = "wrangler"
    try:
        just_bin = wr.find_just()
    except ToolMissingError:
        return Tools(wrangler=wrangler_bin)
    listing = subprocess.run(
        [just_bin, "--summary"], cwd=manifest.root, capture_output=True, text=True, check=False
    )
    recipes = frozenset(listing.stdout.split()) if listing.returncode == 0 else frozenset()
    return Tools(wrangler=wrangler_bin, just=just_bin, just_recipes=recipes)


def confirm_protected(manifest: Manifest, environment: str, services: list[str], yes: bool) -> None:
    """Protected environments ask on a terminal; without one, ``--yes`` is required."""
    env = manifest.environment(environment)
    if not env.protected or yes:
        return
    what = f"{len(services)} service(s) ({', '.join(services)}) to {env.name}"
    if not sys.stdin.isatty():
        raise Refused(
            f"refusing to deploy {what}: {env.name} is protected and there is no terminal to confirm",
            hint="pass --yes to confirm non-interactively",
        )
    answer = input(f"Deploy {what}? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise Refused("deploy cancelled")


def execute(c: Context, steps: list[Step], *, dry_run: bool) -> None:
    from dome_tasks.runner import Runner

    Runner(c, dry_run=dry_run).run(steps)


def deploy_services(
    c: Context,
    manifest: Manifest,
    services: list[str],
    environment: str,
    *,
    dry_run: bool = False,
    yes: bool = False,
    build: bool = True,
) -> None:
    """Deploy *services* (in dependency order) to *environment*: the library call behind every deploy task."""
    from dome_tasks.plan import deploy_plan

    env = manifest.environment(environment)
    ordered = manifest.deploy_order(services)
    if env.is_local:
        from dome_tasks.cli.local_env import deploy_local

        deploy_local(c, manifest, ordered, dry_run=dry_run)
        return
    tools = discover_tools(manifest, dry_run=dry_run)
    steps = deploy_plan(manifest, ordered, env.name, tools, build=build)
    if not dry_run:
        confirm_protected(manifest, env.name, ordered, yes)
    execute(c, steps, dry_run=dry_run)


@recipe(
    help={"service": SERVICE_HELP, "dry_run": DRY_HELP, "yes": YES_HELP, "no_build": "skip the build step"},
)
@boundary
def deploy(c, service="", dry_run=False, yes=False, no_build=False):
    """Deploy SERVICE (or every service, in dependency order) to production."""
    manifest = load_manifest(c)
    from dome_tasks.plan import all_services

    deploy_services(
        c, manifest, all_services(manifest, service), "production",
        dry_run=is_dry(c, dry_run), yes=yes, build=not no_build,
    )


@recipe(
    name="deploy-env",
    help={"service": SERVICE_HELP, "env": ENV_HELP, "dry_run": DRY_HELP, "yes": YES_HELP,
          "no_build": "skip the build step"},
)
@boundary
def deploy_env(c, service, env, dry_run=False, yes=False, no_build=False):
    """Deploy SERVICE ('all' for every service) to ENV."""
    manifest = load_manifest(c)
    from dome_tasks.plan import all_services

    deploy_services(
        c, manifest, all_services(manifest, service), env,
        dry_run=is_dry(c, dry_run), yes=yes, build=not no_build,
    )


def _migrate(c: Context, environment: str, dry_run: bool, yes: bool) -> None:
    from dome_tasks.plan import migrate_plan

    manifest = load_manifest(c)
    dry = is_dry(c, dry_run)
    tools = discover_tools(manifest, dry_run=dry)
    steps = migrate_plan(manifest, environment, tools)
    if not steps:
        print(f"no service has D1 migrations in {manifest.environment(environment).name}")
        return
    if not dry:
        services = list(dict.fromkeys(s.service for s in steps if s.service))
        confirm_protected(manifest, environment, services, yes)
    execute(c, steps, dry_run=dry)


MIGRATE_HELP = {"dry_run": DRY_HELP, "yes": YES_HELP}


@task(name="db-migrate-dev", help=MIGRATE_HELP)
@boundary
def db_migrate_dev(c, dry_run=False, yes=False):
    """Apply D1 migrations to development (remote)."""
    _migrate(c, "development", dry_run, yes)


@task(name="db-migrate-staging", help=MIGRATE_HELP)
@boundary
def db_migrate_staging(c, dry_run=False, yes=False):
    """Apply D1 migrations to staging (remote)."""
    _migrate(c, "staging", dry_run, yes)


@task(name="db-migrate-prod", help=MIGRATE_HELP)
@boundary
def db_migrate_prod(c, dry_run=False, yes=False):
    """Apply D1 migrations to production (remote; asks for confirmation)."""
    _migrate(c, "production", dry_run, yes)


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
        payload = {
            "environment": environment.name,
            "services": manifest.deploy_order(services),
            "waves": waves,
            "steps": [
                {"event": s.event, "service": s.service, "description": s.description, "display": s.display()}
                for s in steps
            ],
        }
        print(json.dumps(payload, indent=2))
        return
    print(f"plan for {environment.name}: {len(services)} service(s) in {len(waves)} wave(s)")
    for number, wave in enumerate(waves, 1):
        print(f"wave {number}: {', '.join(wave)}")
        for step in steps:
            if step.service in wave:
                print(f"  {step.event:<7} {step.display()}")


TASKS = [deploy, deploy_env, db_migrate_dev, db_migrate_staging, db_migrate_prod, render, plan]
