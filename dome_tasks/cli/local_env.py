"""The ``local`` environment as tasks: deploy-env SERVICE local, stop, db-migrate-local, status.

Workers run under ``wrangler dev`` (workerd); the process management is ``dome_tasks.local``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from dome_tasks.cli.common import boundary, is_dry, load_manifest, recipe

if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextlib import AbstractContextManager

    from invoke import Context

    from dome_tasks.cli.output import JsonDocument
    from dome_tasks.local import LocalEnv, LocalService, Outcome, ServiceStatus
    from dome_tasks.settings import Settings
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.plan.steps import Step
    from dome_tasks.plan.target import ResolvedRequest, Target


def local_env(manifest: Manifest, *, dry_run: bool = False) -> LocalEnv:
    """The manifest's local settings as a :class:`LocalEnv` (state folder made absolute)."""
    from pathlib import Path

    from dome_tasks.local import LocalEnv, PortRange
    from dome_tasks.tools import find_wrangler

    env = manifest.environment("local")
    settings = env.local
    assert settings is not None, "the manifest always has a local environment"
    wrangler_bin = find_wrangler(manifest.root, dry_run=dry_run)
    return LocalEnv(
        state_dir=(manifest.root / settings.state_dir).resolve(),
        wrangler=Path(wrangler_bin),
        ports=PortRange(settings.port_first, settings.port_last),
    )


def local_lock(env: LocalEnv, settings: Settings) -> AbstractContextManager[object]:
    """One ``deploy-env … local`` (or ``stop``) at a time per state folder: a second one waits,
    saying for whom, or with ``--no-wait`` refuses naming it."""
    from dome_tasks.lifecycle.lock import Locks

    locks = Locks(env.state_dir / "locks", wait=not settings.no_wait,
                  timeout=settings.lock_timeout)
    return locks.hold("local", what="the local environment")


def local_plan(
    manifest: Manifest,
    services: list[str],
    env: LocalEnv,
    *,
    jobs: int | None = None,
    rendered: Mapping[str, Target] | None = None,
) -> list[Step]:
    """Render each service's local config, then start them by dependency wave (each service:
    its D1 migrations, then wrangler dev), up to ``jobs`` at a time. *rendered*: the targets
    the task resolved already (not rendered again)."""
    from dome_tasks import local
    from dome_tasks.plan.deploy import render, render_step
    from dome_tasks.plan.steps import Call, Step
    from dome_tasks.runner import default_jobs

    steps: list[Step] = []
    targets: dict[str, LocalService] = {}
    for service in services:
        target = (rendered or {}).get(service) or render(manifest, service, "local")
        steps.append(render_step(target))
        config = target.config
        # health_path: null skips the health check: up once the worker answers at all
        targets[service] = local.LocalService(
            service, config.name, target.path, config.health_path or "/",
            ready_on_any_status=config.health_path is None,
        )
    jobs = jobs or default_jobs()
    waves = manifest.waves(services)
    shown = " → ".join(
        "[" + ", ".join(targets[name].worker for name in wave) + "]" for wave in waves
    )
    what = f"migrate and start under wrangler dev, wave by wave, up to {jobs} at a time"
    count = f"{len(services)} service(s) in {len(waves)} wave(s)"
    steps.append(
        Step(
            event="start",
            description=f"{what}: {shown}",
            action=Call(
                f"wrangler dev: {count} (state in {env.state_dir})",
                local.start_stack,
                {
                    "env": env,
                    "waves": [[targets[name] for name in wave] for wave in waves],
                    "jobs": jobs,
                    "on_done": functools.partial(_print_outcome, len(waves)),
                },
            ),
            environment="local",
        )
    )
    return steps


def _print_outcome(waves: int, outcome: Outcome) -> None:
    """One block per service, printed as it finishes (a wave's services start side by side)."""
    text = f"[wave {outcome.wave + 1}/{waves}] {outcome.describe()}"
    print("  " + text.replace("\n", "\n  "), flush=True)


def deploy_local(c: Context, settings: Settings, request: ResolvedRequest, *, dry_run: bool,
                 jobs: int | None = None, document: JsonDocument | None = None) -> None:
    """``deploy-env SERVICE local``: render, migrate, (re)start wave by wave, wait for health,
    print the table (with ``--json``: the *document*), one run at a time. ``jobs``: services
    of one wave started at once (default: the cores)."""
    from contextlib import nullcontext

    from dome_tasks import local
    from dome_tasks.progress import step_json
    from dome_tasks.runner import Runner

    manifest, services = request.manifest, request.services
    env = local_env(manifest, dry_run=dry_run)
    rendered = {target.service: target for target in request.targets}
    steps = local_plan(manifest, services, env, jobs=jobs, rendered=rendered)
    with nullcontext() if dry_run else local_lock(env, settings):
        Runner(c, dry_run=dry_run).run(steps)
    statuses = [] if dry_run else local.status(env, services)
    if document is not None:
        payload = status_json(statuses, "local")
        payload.update(title="deploy", dry_run=dry_run,
                       ok=all(s.state == "running" and s.healthy is not False for s in statuses))
        if dry_run:
            payload["steps"] = [step_json(step) for step in steps]
        document.send(payload)
    elif not dry_run:
        print(local.format_status(statuses))


def status_json(statuses: list[ServiceStatus], environment: str) -> dict[str, Any]:
    """The local services' state as ``--json`` shows it (docs/json.md)."""
    import dataclasses

    return {"environment": environment,
            "services": [dataclasses.asdict(status) for status in statuses]}


def migrate_local(c: Context, manifest: Manifest, *, dry_run: bool) -> None:
    """``db-migrate-local``: apply every service's local D1 migrations; says when none apply."""
    from dome_tasks import local
    from dome_tasks.runner import Runner

    env = local_env(manifest, dry_run=dry_run)
    services = [s for s in manifest.deploy_order(manifest.services_in("local"))
                if manifest.resolve(s, "local").d1_databases]
    if not services:
        print("no service has D1 databases in local")
        return
    steps = [step for step in local_plan(manifest, services, env) if step.event == "render"]
    Runner(c, dry_run=dry_run).run(steps)
    if dry_run:
        return
    targets = [
        local.LocalService(s, manifest.resolve(s, "local").name, step.action.path)
        for s, step in zip(services, steps)
    ]
    for result in local.migrate_all(env, targets):
        print(result.describe())


def _local_services(manifest: Manifest, service: str, env: str) -> list[str] | None:
    """``stop``/``status`` words: ``[SERVICE] [ENV]`` where ENV must be local; None = all."""
    if service == "local" and "local" not in manifest.deploy_order():
        service = ""
    if env:
        manifest.environment(env)  # validates, with did-you-mean
        if manifest.environment(env).name != "local":
            from dome_tasks.errors import UsageError

            raise UsageError(
                f"only the local environment runs processes here, not '{env}'",
                hint="for a remote worker use `invoke status SERVICE ENV`",
            )
    if not service or service == "all":
        return None
    manifest.service(service)
    return [service]


@recipe(
    help={
        "service": "a service, or empty / 'all' for every running service",
        "env": "must be 'local' (the default)",
    }
)
@boundary
def stop(c, service="", env="local"):
    """Stop SERVICE (or every service) running in the local environment.

    Example: invoke stop silo
    """
    from dome_tasks import local
    from dome_tasks.settings import Settings

    manifest = load_manifest(c)
    names = _local_services(manifest, service, env)
    where = local_env(manifest)
    with local_lock(where, Settings.read(c)):  # not in the middle of a deploy's start
        stopped = local.stop(where, names)
    print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def wants_local(manifest: Manifest, service: str, env: str) -> list[str] | None:
    """For ``status [SERVICE] [ENV]``: the local services asked for, or None for a remote status."""
    from dome_tasks.errors import UsageError

    if service == "local" and "local" not in manifest.services:
        service, env = env, "local"
    if not env or manifest.environment(env).name != "local":
        if not service or not env:
            raise UsageError(
                "status needs SERVICE and ENV (or `status local`)",
                hint="e.g. `invoke status silo staging` or `invoke status local`",
            )
        return None
    return _local_services(manifest, service, "local") or list(
        manifest.deploy_order(manifest.services_in("local"))
    )


def print_local_status(manifest: Manifest, services: list[str],
                       document: JsonDocument | None = None) -> None:
    """Each local service's state, URL, health, pid and uptime (as the *document* with --json)."""
    from dome_tasks import local

    statuses = local.status(local_env(manifest), services)
    if document is not None:
        document.send(status_json(statuses, "local"))
    else:
        print(local.format_status(statuses))


@recipe(name="db-migrate-local", help={"dry_run": "print the steps without running anything"})
@boundary
def db_migrate_local(c, dry_run=False):
    """Apply D1 migrations to the local environment's state folder.

    Example: invoke db-migrate-local
    """
    migrate_local(c, load_manifest(c), dry_run=is_dry(c, dry_run))


TASKS = [stop, db_migrate_local]
