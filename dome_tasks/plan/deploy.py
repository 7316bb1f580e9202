"""The pure deploy planners: a resolved request in, an ordered list of steps out. No I/O here.

Everything the planners need from the world (where wrangler and just are, which recipes the
justfile has) arrives in :class:`~dome_tasks.tools.Tools`, read once by the task layer; the
services arrive resolved and rendered in a :class:`~dome_tasks.plan.target.ResolvedRequest`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dome_tasks.plan.steps import Command, Step, WriteFile
from dome_tasks.plan.target import Target, render_target
from dome_tasks.tools import Tools
from dome_tasks.wrangler import argv as wrangler

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.manifest.model import WorkerConfig
    from dome_tasks.plan.target import ResolvedRequest

__all__ = [
    "build_step",
    "deploy_plan",
    "deploy_steps",
    "migrate_plan",
    "migrate_step",
    "render",
    "render_step",
]


def render(manifest: Manifest, service: str, environment: str) -> Target:
    """Render one (service, environment) config in memory (pure); for callers outside a request."""
    return render_target(manifest, manifest.resolve(service, environment))


def render_step(target: Target) -> Step:
    """Write the target's rendered config (unchanged files are left alone)."""
    return Step(
        event="render",
        description=f"render {target.worker} -> {target.path}",
        action=WriteFile(target.path, target.text, target.config.service_dir),
        service=target.service,
        environment=target.environment,
    )


def build_step(config: WorkerConfig, root: Path, tools: Tools) -> Step | None:
    """The service's build command, else ``just build-pkg SERVICE`` when the justfile has it."""
    if config.build is not None:
        if not config.build:
            return None
        argv, cwd = config.build, config.service_dir
    elif tools.just and "build-pkg" in tools.just_recipes:
        argv, cwd = (tools.just, "build-pkg", config.service), root
    else:
        return None
    return Step(
        event="build",
        description=f"build {config.service}",
        action=Command(tuple(argv), cwd=cwd),
        service=config.service,
        environment=config.environment,
    )


def deploy_steps(
    target: Target,
    root: Path,
    tools: Tools,
    *,
    build: bool = True,
    label: wrangler.VersionLabel | None = None,
) -> list[Step]:
    """Build (optional), render and ``wrangler deploy`` one target (its version labelled with
    *label*'s tag and message when given)."""
    steps: list[Step] = []
    if build:
        step = build_step(target.config, root, tools)
        if step:
            steps.append(step)
    steps.append(render_step(target))
    steps.append(
        target.step(
            "deploy",
            f"deploy {target.worker} ({target.environment})",
            Command(
                wrangler.deploy(target.wrangler, target.path, label=label),
                cwd=target.path.parent,
                retry_safe=True,
                wrangler=True,
            ),
        )
    )
    return steps


def deploy_plan(
    request: ResolvedRequest,
    tools: Tools,
    *,
    build: bool = True,
    label: wrangler.VersionLabel | None = None,
) -> list[Step]:
    """Build, render and ``wrangler deploy`` each service of the request, in dependency order."""
    return [
        step
        for target in request.targets
        for step in deploy_steps(target, request.root, tools, build=build, label=label)
    ]


def migrate_plan(request: ResolvedRequest) -> list[Step]:
    """Apply the remote D1 migrations of every service of the request with D1 and migrations.

    The local environment migrates through ``dome_tasks.local`` (its state folder and registry).
    """
    steps: list[Step] = []
    for target in request.targets:
        databases = [db for db in target.config.d1_databases if db.migrations_dir]
        if not databases:
            continue
        steps.append(render_step(target))
        steps += [migrate_step(target, db.database_name) for db in databases]
    return steps


def migrate_step(target: Target, database: str) -> Step:
    """``wrangler d1 migrations apply DATABASE --remote`` with the target's rendered config."""
    argv = wrangler.d1_migrations_apply(target.wrangler, database, target.path)
    return target.step(
        "migrate",
        f"apply D1 migrations of {database} ({target.environment})",
        Command(argv, cwd=target.path.parent, retry_safe=True, wrangler=True),
    )
