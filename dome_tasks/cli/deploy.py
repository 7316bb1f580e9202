"""Deploy tasks with the just recipes' names: deploy, deploy-env, db-migrate-*, render, plan."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
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
    request_for,
    task,
)
from dome_tasks.tools import discover_tools

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.lifecycle.session import Session
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.manifest.model import Environment
    from dome_tasks.cli.output import JsonDocument
    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.progress import Board
    from dome_tasks.testing.emulator import Emulator
    from dome_tasks.tools import Tools
    from dome_tasks.wrangler.argv import VersionLabel

SERVICE_HELP = "a service from the manifest; empty or 'all' means every service"
ENV_HELP = "development|staging|production|local (aliases: dev, stg, prod)"
DRY_HELP = "print every step and command without running anything"
YES_HELP = "do not ask for confirmation (required for protected environments without a terminal)"


@dataclass(frozen=True)
class DeployFlags:
    """What a deploy task's flags ask for."""

    dry_run: bool = False
    yes: bool = False
    build: bool = True
    verify: bool = True
    rollback_on_failure: bool | None = None  # None: on for protected environments
    rehearse: bool = False  # against a throwaway Cloudflare API emulator
    label: VersionLabel | None = None  # --tag/--message of each deployed version (CI: the commit)
    jobs: int = 0  # services of one wave at once; 0: one per core
    force: bool = False  # deploy even what has not changed
    json: bool = False  # the summary as JSON on stdout (everything else on stderr)
    migrate: bool = True  # apply the services' pending D1 migrations before the new code


def deploy_request(
    c: Context, settings: Settings, request: ResolvedRequest, flags: DeployFlags, tools: Tools,
    document: JsonDocument | None = None, session: Session | None = None,
) -> None:
    """Deploy a resolved request (services in dependency order): the call behind every deploy task.

    Remote environments: build, render, ``wrangler deploy``, verify, and (when verification fails
    and rollback is on) roll back; each step is logged and recorded in the ledger. *document*:
    where the summary goes with ``--json`` (docs/json.md). *session*: the task's, when it opened
    one early (:func:`early_session`).
    """
    if request.environment.is_local:
        from dome_tasks.cli.local_env import deploy_local

        deploy_local(c, settings, request, dry_run=flags.dry_run, jobs=flags.jobs or None,
                     document=document)
        return
    from dome_tasks.lifecycle.deploy import (
        DeployOptions,
        deploy,
        held_early,
        reads_before,
        start_early,
    )
    from dome_tasks.lifecycle.migrate import decide_migrate, migrate, observe_applied
    from dome_tasks.lifecycle.session import open_watched

    session, board = open_watched(c, settings, request, dry_run=flags.dry_run, json=flags.json,
                                  session=session)
    rehearse = flags.rehearse and not flags.dry_run
    real = not flags.dry_run and not flags.rehearse
    reads = reads_before(session, request, secrets=real, migrations=flags.migrate and real)
    if real:
        confirm_protected(request.environment, request.services, settings, flags.yes)
    with maybe_rehearsal(session, request.environment, rehearse) as emulator, \
            held_early(session, request):
        from dome_tasks.runner import default_jobs

        options = DeployOptions(flags.build, flags.verify and emulator is None,
                                flags.rollback_on_failure, flags.label,
                                jobs=flags.jobs or default_jobs(), force=flags.force)
        start_early(session, request, options, tools)  # wrangler starts; the reads are joined
        if real:
            from dome_tasks.secrets.guard import check_declared

            # warns; refuses a protected env's live worker that lacks one
            check_declared(request, observed=reads.secrets)
        with watched(session, board, document, emulator):
            if flags.migrate:  # the schema first: the new code may need it
                applied = (reads.applied.result() if reads.applied is not None
                           else observe_applied(session, request))
                plans = decide_migrate(request, applied, say=session.say)
                if plans:
                    session.wait_held()  # the deploy's lock is held from here on
                    migrate(session, plans, waves=request.waves, jobs=options.jobs)
            deploy(session, request, options, tools)


def early_session(c: Context, settings: Settings, manifest: Manifest, env: Environment,
                  *, dry_run: bool, rehearse: bool) -> Session | None:
    """The deploy's session, opened as soon as the manifest is read, its history of *env*
    already being read (beside rendering); None when there is no remote history to read (a dry
    run, a rehearsal, the local environment)."""
    if dry_run or rehearse or env.is_local:
        return None
    from dome_tasks.lifecycle.session import Session

    session = Session.open(c, settings, manifest.root, manifest=manifest)
    session.ledger.prefetch(env.name)
    return session


@contextlib.contextmanager
def watched(session: Session, board: Board, document: JsonDocument | None = None,
            emulator: Emulator | None = None) -> Iterator[None]:
    """Show the board while the block runs; then the summary (on stdout, or as the JSON
    *document*: with the dry run's steps, or what the rehearsal's *emulator* holds) and the run
    event."""
    try:
        with board:
            yield
    finally:
        if document is not None:
            payload = {**board.to_dict(), "dry_run": session.dry_run}
            if board.planned is not None:
                payload["steps"] = board.planned
            if emulator is not None:
                from dome_tasks.cli.rehearse import holdings

                payload["rehearsal"] = holdings(emulator)
            document.send(payload)
        elif not session.dry_run:
            board.summary(sys.stdout)
        if not session.dry_run:
            session.log.emit_summary()


@contextlib.contextmanager
def maybe_rehearsal(session: Session, environment: Environment,
                    rehearse: bool) -> Iterator[Emulator | None]:
    """Point the session's wrangler at a throwaway emulator when rehearsing (yielded)."""
    if not rehearse:
        yield None
        return
    import os

    from dome_tasks.cli.rehearse import rehearsal

    with rehearsal(environment) as emulator:
        session.use_emulator({**os.environ, **emulator.env()})  # never the real history
        print("rehearsal: health checks skipped (the emulator does not run workers)")
        yield emulator


def _deploy_task(c: Context, service: str, env: str, *, dry_run: bool, yes: bool, no_build: bool,
                 no_verify: bool, rollback_on_failure: bool, no_rollback: bool, log_format: str,
                 rehearse: bool, jobs: int | str, force: bool, json: bool, no_wait: bool,
                 no_migrate: bool) -> None:
    """Read the settings, resolve the words, deploy: each exactly once."""
    from dome_tasks.cli.output import json_output

    with json_output(json, "deploy") as document:
        settings = Settings.read(c, log_format=log_format or None, yes=yes, no_wait=no_wait)
        jobs = parse_whole(jobs, "--jobs", low=0, example="--jobs 4") if jobs != 0 else 0
        manifest = load_manifest(settings)
        dry = is_dry(c, dry_run)
        environment = manifest.environment(env)  # the task's word, looked up once
        session = early_session(c, settings, manifest, environment, dry_run=dry,
                                rehearse=rehearse)
        if service and service != "all":
            manifest.service(service)  # a mistyped name is said first, even without wrangler
        tools = discover_tools(manifest.root, dry_run=dry, recipes=not no_build)
        request = request_for(manifest, service, environment, wrangler=tools.wrangler)
        rollback = True if rollback_on_failure else (False if no_rollback else None)
        flags = DeployFlags(dry, yes, not no_build, not no_verify, rollback, rehearse, jobs=jobs,
                            force=force, json=json, migrate=not no_migrate)
        deploy_request(c, settings, request, flags, tools, document, session)


JOBS_HELP = "services of one dependency wave deployed at once (default: one per CPU core)"
DEPLOY_HELP = {
    "service": SERVICE_HELP, "env": ENV_HELP, "dry_run": DRY_HELP, "yes": YES_HELP,
    "no_build": "skip the build step",
    "no_verify": "skip the health check after deploying",
    "rollback_on_failure": "roll back when verification fails (default for protected environments)",
    "no_rollback": "never roll back automatically, even in protected environments",
    "log_format": "text (default) or json: structured log events on stderr",
    "rehearse": "run everything against a throwaway Cloudflare API emulator and show the result",
    "jobs": JOBS_HELP,
    "force": "deploy even the services whose inputs and live version have not changed",
    "json": "print the summary as JSON on stdout (everything else goes to stderr)",
    "no_wait": "refuse at once (naming the holder) when another deploy of the service is running",
    "no_migrate": "do not apply the services' pending D1 migrations before deploying",
}


@recipe(help={k: v for k, v in DEPLOY_HELP.items() if k != "env"})
@boundary
def deploy(c, service="", *, dry_run=False, yes=False, jobs=0, force=False, no_build=False,
           no_verify=False, rollback_on_failure=False, no_rollback=False, log_format="",
           rehearse=False, json_=False, no_wait=False, no_migrate=False):
    """Deploy SERVICE (or every service, in dependency order) to production.

    Example: invoke deploy silo --yes
    """
    _deploy_task(c, service, "production", dry_run=dry_run, yes=yes, no_build=no_build,
                 no_verify=no_verify, rollback_on_failure=rollback_on_failure,
                 no_rollback=no_rollback, log_format=log_format, rehearse=rehearse, jobs=jobs,
                 force=force, json=json_, no_wait=no_wait, no_migrate=no_migrate)


@recipe(name="deploy-env", help=DEPLOY_HELP)
@boundary
def deploy_env(c, service, env, *, dry_run=False, yes=False, jobs=0, force=False, no_build=False,
               no_verify=False, rollback_on_failure=False, no_rollback=False, log_format="",
               rehearse=False, json_=False, no_wait=False, no_migrate=False):
    """Deploy SERVICE ('all' for every service) to ENV.

    Example: invoke deploy-env silo staging
    """
    _deploy_task(c, service, env, dry_run=dry_run, yes=yes, no_build=no_build,
                 no_verify=no_verify, rollback_on_failure=rollback_on_failure,
                 no_rollback=no_rollback, log_format=log_format, rehearse=rehearse, jobs=jobs,
                 force=force, json=json_, no_wait=no_wait, no_migrate=no_migrate)


def _migrate(c: Context, environment: str, dry_run: bool, yes: bool, rehearse: bool,
             jobs: int | str = 0, json: bool = False, no_wait: bool = False) -> None:
    from dome_tasks.cli.output import json_output

    with json_output(json, "migrate") as document:
        settings = Settings.read(c, yes=yes, no_wait=no_wait)
        jobs = parse_whole(jobs, "--jobs", low=0, example="--jobs 4") if jobs != 0 else 0
        manifest = load_manifest(settings)
        dry = is_dry(c, dry_run)
        wrangler = discover_tools(manifest.root, dry_run=dry).wrangler
        request = request_for(manifest, "all", environment, wrangler=wrangler)
        migrate_request(c, settings, request, dry_run=dry, yes=yes, rehearse=rehearse, jobs=jobs,
                        json=json, document=document)


def migrate_request(c: Context, settings: Settings, request: ResolvedRequest, *, dry_run: bool, yes: bool,
                    rehearse: bool, quiet_when_none: bool = False, jobs: int = 0,
                    json: bool = False, document: JsonDocument | None = None) -> None:
    """Apply the request's remote D1 migrations (confirmed, recorded), wave by wave; says when
    there are none."""
    from dome_tasks.lifecycle.migrate import decide_migrate, migrate
    from dome_tasks.runner import default_jobs

    plans = decide_migrate(request)
    if not plans:
        if not quiet_when_none:
            print(f"no service has D1 migrations in {request.environment.name}")
        if document is not None:
            document.send({"title": "migrate", "environment": request.environment.name,
                           "ok": True, "counts": {}, "services": [], "dry_run": dry_run})
        return
    touched = [t.service for t in request.targets
               if any(step.service == t.service for plan in plans for step in plan.steps)]
    if not dry_run and not rehearse:
        confirm_protected(request.environment, touched, settings, yes)
    from dome_tasks.lifecycle.session import open_watched

    session, board = open_watched(c, settings, request, dry_run=dry_run, json=json,
                                  title="migrate", services=touched)
    rehearse = rehearse and not dry_run
    with maybe_rehearsal(session, request.environment, rehearse) as emulator, \
            watched(session, board, document, emulator):
        migrate(session, plans, waves=request.waves, jobs=jobs or default_jobs())


MIGRATE_HELP = {"dry_run": DRY_HELP, "yes": YES_HELP, "jobs": JOBS_HELP,
                "rehearse": "apply them in a throwaway Cloudflare API emulator and show the result",
                "json": "print the summary as JSON on stdout (everything else goes to stderr)",
                "no_wait": "refuse at once (naming the holder) when migrations of ENV are running"}


@task(name="db-migrate-dev", help=MIGRATE_HELP)
@boundary
def db_migrate_dev(c, dry_run=False, yes=False, jobs=0, rehearse=False, json_=False, no_wait=False):
    """Apply D1 migrations to development (remote).

    Example: invoke db-migrate-dev --dry-run
    """
    _migrate(c, "development", dry_run, yes, rehearse, jobs, json_, no_wait)


@task(name="db-migrate-staging", help=MIGRATE_HELP)
@boundary
def db_migrate_staging(c, dry_run=False, yes=False, jobs=0, rehearse=False, json_=False, no_wait=False):
    """Apply D1 migrations to staging (remote).

    Example: invoke db-migrate-staging
    """
    _migrate(c, "staging", dry_run, yes, rehearse, jobs, json_, no_wait)


@task(name="db-migrate-prod", help=MIGRATE_HELP)
@boundary
def db_migrate_prod(c, dry_run=False, yes=False, jobs=0, rehearse=False, json_=False, no_wait=False):
    """Apply D1 migrations to production (remote; asks for confirmation).

    Example: invoke db-migrate-prod --yes
    """
    _migrate(c, "production", dry_run, yes, rehearse, jobs, json_, no_wait)


@recipe(help={"service": SERVICE_HELP, "env": ENV_HELP + "; empty means every environment"})
@boundary
def render(c, service="", env=""):
    """Render the wrangler.toml of SERVICE (or all) for ENV (or all) into .dome/build/.

    Example: invoke render silo staging
    """
    from dome_tasks.render.config import render_all

    manifest = load_manifest(c)
    services = manifest.deploy_order(None if not service or service == "all" else [service])
    environments = [manifest.environment(env).name] if env else list(manifest.environments)
    if service and service != "all" and env:
        manifest.resolve(service, env)  # refuses a service that does not deploy there
    for path in render_all(manifest, services, environments):
        print(path)


@recipe(
    help={"service": SERVICE_HELP, "env": ENV_HELP + " (default: production)",
          "json": "print the plan as JSON: waves and steps, for CI matrices"},
)
@boundary
def plan(c, service="", env="production", json_=False):
    """Print the steps a deploy would run, wave by wave: exactly what its --dry-run shows.

    Example: invoke plan all staging
    """
    from dome_tasks.cli.output import json_output

    with json_output(json_, "plan") as document:
        settings = Settings.read(c)
        manifest = load_manifest(settings)
        tools = discover_tools(manifest.root, dry_run=True)
        request = request_for(manifest, service, env, wrangler=tools.wrangler)
        dry = _Kept() if document is not None else None
        deploy_request(c, settings, request, DeployFlags(dry_run=True, json=json_), tools, dry)
        if document is not None and dry is not None:
            from dome_tasks.ci.events import waves_json

            payload = waves_json(manifest, request.services, request.environment.name)
            document.send({**payload, "steps": dry.payload.get("steps", [])})


class _Kept:
    """A JSON document kept in memory (``plan --json`` reshapes the dry run's)."""

    sent = False
    payload: dict = {}

    def send(self, payload: dict) -> None:
        self.sent, self.payload = True, payload


TASKS = [deploy, deploy_env, db_migrate_dev, db_migrate_staging, db_migrate_prod, render, plan]
