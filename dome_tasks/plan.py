"""The pure planner: a request in, an ordered list of steps out. No I/O happens here.

Everything the planner needs from the world (where wrangler and just are, which recipes the
justfile has) arrives in :class:`Tools`, read once by the task layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dome_tasks import wrangler
from dome_tasks.steps import Command, Step, WriteFile

if TYPE_CHECKING:
    from dome_tasks.manifest import Manifest
    from dome_tasks.model import Environment, WorkerConfig


@dataclass(frozen=True)
class Tools:
    """Facts about this machine the planner may use."""

    wrangler: str = "wrangler"
    just: str | None = None
    just_recipes: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Rendered:
    """One rendered config: which worker, where it goes, and its text."""

    config: WorkerConfig
    path: Path
    text: str


def render(manifest: Manifest, service: str, environment: str) -> Rendered:
    """Render one (service, environment) config in memory (pure)."""
    from dome_tasks.render import config_path, render_config

    config = manifest.resolve(service, environment)
    path = config_path(manifest.root, config.environment, service)
    text = render_config(
        config, manifest_path=manifest.path, out_path=path, templates_dir=manifest.templates_dir
    )
    return Rendered(config, path, text)


def render_step(rendered: Rendered) -> Step:
    config = rendered.config
    return Step(
        event="render",
        description=f"render {config.name} -> {rendered.path}",
        action=WriteFile(rendered.path, rendered.text),
        service=config.service,
        environment=config.environment,
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


def deploy_plan(
    manifest: Manifest,
    services: Sequence[str],
    environment: str,
    tools: Tools,
    *,
    build: bool = True,
) -> list[Step]:
    """Build, render and ``wrangler deploy`` each service, in dependency order."""
    env = manifest.environment(environment)
    steps: list[Step] = []
    for service in manifest.deploy_order(services):
        rendered = render(manifest, service, env.name)
        config = rendered.config
        if build:
            step = build_step(config, manifest.root, tools)
            if step:
                steps.append(step)
        steps.append(render_step(rendered))
        steps.append(_deploy_step(rendered, env, tools))
    return steps


def _deploy_step(rendered: Rendered, env: Environment, tools: Tools) -> Step:
    config = rendered.config
    return Step(
        event="deploy",
        description=f"deploy {config.name} ({env.name})",
        action=Command(
            wrangler.deploy(tools.wrangler, rendered.path),
            cwd=rendered.path.parent,
            retry_safe=True,
            wrangler=True,
        ),
        service=config.service,
        environment=env.name,
    )


def migrate_plan(
    manifest: Manifest, environment: str, tools: Tools, services: Sequence[str] | None = None
) -> list[Step]:
    """Apply the remote D1 migrations of every service with D1 (and migrations) in *environment*.

    The local environment migrates through ``dome_tasks.local`` (its state folder and registry).
    """
    env = manifest.environment(environment)
    steps: list[Step] = []
    for service in manifest.deploy_order(services):
        rendered = render(manifest, service, env.name)
        databases = [db for db in rendered.config.d1_databases if db.migrations_dir]
        if not databases:
            continue
        steps.append(render_step(rendered))
        for db in databases:
            argv = wrangler.d1_migrations_apply(tools.wrangler, db.database_name, rendered.path)
            steps.append(
                Step(
                    event="migrate",
                    description=f"apply D1 migrations of {db.database_name} ({env.name})",
                    action=Command(argv, cwd=rendered.path.parent, retry_safe=True, wrangler=True),
                    service=service,
                    environment=env.name,
                )
            )
    return steps


def all_services(manifest: Manifest, service: str | None) -> list[str]:
    """``None``, ``""`` or ``"all"`` mean every service; otherwise the named one (validated)."""
    if not service or service == "all":
        return manifest.deploy_order()
    manifest.service(service)
    return [service]
