"""What a task asks for, resolved once: the environment, and each service as a :class:`Target`.

A task turns its words (``silo``, ``staging``, ``all``) into a :class:`ResolvedRequest` with
:func:`resolve` exactly once; planners and lifecycle operations take the resolved objects and
never look a name up again. Dependency order, merged configs, worker names and rendered configs
are computed here, once per run (rendering is pure: nothing is written).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dome_tasks.errors import UsageError
from dome_tasks.plan.steps import Command, Step

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.manifest.model import Environment, WorkerConfig

__all__ = ["ResolvedRequest", "Target", "render_target", "resolve"]


@dataclass(frozen=True)
class Target:
    """One worker in one environment: merged config, worker name and rendered config."""

    config: WorkerConfig
    path: Path  # where its rendered wrangler.toml goes
    text: str  # the rendered wrangler.toml
    wrangler: tuple[str, ...] = ("wrangler",)  # argv prefix: the wrangler its service pins

    @property
    def service(self) -> str:
        return self.config.service

    @property
    def environment(self) -> str:
        return self.config.environment

    @property
    def worker(self) -> str:
        """The worker's name in this environment, e.g. ``silo-staging``."""
        return self.config.name

    def command(self, *args: str, stdin: str | None = None, retry_safe: bool = False) -> Command:
        """``wrangler ARGS --config <rendered config>``, run beside the config."""
        return Command(
            (*self.wrangler, *args, "--config", str(self.path)),
            cwd=self.path.parent,
            stdin=stdin,
            retry_safe=retry_safe,
            wrangler=True,
        )

    def step(self, event: str, description: str, action: object) -> Step:
        return Step(
            event,
            description,
            action,
            service=self.service,  # type: ignore[arg-type]
            environment=self.environment,
        )


@dataclass(frozen=True, eq=False)
class ResolvedRequest:
    """An environment and the services a task acts on, in dependency order."""

    manifest: Manifest
    environment: Environment
    targets: tuple[Target, ...]
    wrangler: str = "wrangler"

    @property
    def services(self) -> list[str]:
        return [t.service for t in self.targets]

    def target(self, service: str) -> Target:
        """The target of a service of this request (one the task already resolved)."""
        for target in self.targets:
            if target.service == service:
                return target
        raise UsageError(f"{service} is not part of this request ({', '.join(self.services)})")

    @functools.cached_property
    def waves(self) -> list[list[str]]:
        """Groups of services that can deploy in parallel, in order (computed on first use)."""
        return self.manifest.waves(self.services)

    @property
    def root(self) -> Path:
        return self.manifest.root


def render_target(manifest: Manifest, config: WorkerConfig, wrangler: str = "wrangler") -> Target:
    """Render one resolved config in memory (pure) into a :class:`Target`."""
    from dome_tasks.render.config import config_path, render_config

    path = config_path(manifest.root, config.environment, config.service)
    text = render_config(
        config, manifest_path=manifest.path, out_path=path, templates_dir=manifest.templates_dir
    )
    return Target(config, path, text, config.wrangler or (wrangler,))


def resolve(
    manifest: Manifest,
    services: Sequence[str] | None,
    environment: str | Environment,
    *,
    wrangler: str = "wrangler",
    remote_only: str | None = None,
) -> ResolvedRequest:
    """Resolve *services* (``None``: every service) in *environment* (a name or an alias, or
    the environment a task already looked up).

    Each service is looked up, ordered after what it binds to, merged and rendered exactly once.
    With ``remote_only`` (what the task does), the local environment is refused with that reason.
    """
    env = manifest.environment(environment) if isinstance(environment, str) else environment
    if remote_only and env.is_local:
        raise UsageError(
            f"{env.name} runs under `wrangler dev`: {remote_only} need a remote environment",
            hint="use development, staging or production",
        )
    ordered = manifest.deploy_order(
        manifest.services_in(env.name) if services is None else list(services)
    )
    targets = tuple(
        render_target(manifest, manifest.resolve(service, env.name), wrangler)
        for service in ordered
    )
    return ResolvedRequest(manifest, env, targets, wrangler)
