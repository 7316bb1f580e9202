"""Pure: which environment a GitHub Actions event deploys to, and the waves as JSON for CI.

The mapping (docs/ci.md explains the why):

==================================  ==============================================
event                               decision
==================================  ==============================================
``push`` to the default branch      development (changed services only, by default)
``release`` ``created``             staging, when the release is a pre-release;
                                    skipped for a full release (its ``published``
                                    event, fired at the same moment, deploys it)
``release`` ``published``           production, when it is a full release;
                                    skipped for a pre-release (staged on ``created``)
``workflow_dispatch``               the ``environment`` input (aliases allowed);
                                    ``only-changed: true`` deploys only what changed
anything else                       refused (:class:`EventRefused`)
==================================  ==============================================

A *skip* is a :class:`Decision` whose ``environment`` is None: nothing to deploy, not an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks.errors import Refused, UsageError, did_you_mean

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest

__all__ = [
    "Decision",
    "EventRefused",
    "decide",
    "read_event",
    "remote_environment",
    "waves_json",
]

ZERO_SHA = "0" * 40
DEFAULT_BRANCH = "main"
HOW_TO_FIX = (
    "deploys run on a push to the default branch, a release (created: pre-release -> staging; "
    "published: full release -> production) or workflow_dispatch with an 'environment' input; "
    "or pass --env ENV explicitly"
)


class EventRefused(Refused):
    """The GitHub event does not map to any environment."""


@dataclass(frozen=True)
class Decision:
    """What one event means for a deploy. ``environment`` None means: nothing to deploy."""

    event: str
    environment: str | None
    reason: str
    action: str | None = None
    since: str | None = None  # push: the commit before the push, for "only what changed"
    only_changed: bool = False  # the default for this event: push deploys what changed

    @property
    def deploys(self) -> bool:
        return self.environment is not None


def read_event(
    name: str | None = None,
    path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The event name and payload: arguments first, then ``GITHUB_EVENT_NAME``/``_PATH``."""
    environ = os.environ if environ is None else environ
    name = name or environ.get("GITHUB_EVENT_NAME", "")
    path = path or environ.get("GITHUB_EVENT_PATH", "")
    if not name:
        raise UsageError(
            "no GitHub event: GITHUB_EVENT_NAME is not set and no --event was given",
            hint="run inside GitHub Actions, pass --event NAME --event-path FILE, or pass --env ENV",
        )
    if not path:
        return name, {}
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(
            f"cannot read the event payload: {error.strerror or error}",
            where=str(path),
            hint="GITHUB_EVENT_PATH / --event-path must name the event's JSON file",
        ) from None
    except json.JSONDecodeError as error:
        raise UsageError(
            f"the event payload is not JSON: {error.msg} (line {error.lineno})",
            where=str(path),
            hint="pass the webhook payload GitHub wrote to GITHUB_EVENT_PATH",
        ) from None
    if not isinstance(payload, dict):
        raise UsageError("the event payload is not a JSON object", where=str(path))
    return name, payload


def remote_environment(manifest: Manifest, name: str) -> str:
    """Validate an environment name or alias for CI: canonical name; ``local`` is refused."""
    env = manifest.environment(name)
    if env.is_local:
        raise UsageError(
            f"environment '{env.name}' runs on this machine (wrangler dev); CI cannot deploy it",
            hint="choose a remote environment: " + ", ".join(_remote_names(manifest)),
        )
    return env.name


def decide(
    event: str,
    payload: Mapping[str, Any],
    manifest: Manifest | None = None,
    *,
    default_branch: str | None = None,
) -> Decision:
    """Map a GitHub event to a :class:`Decision`, or raise :class:`EventRefused`.

    *manifest*, when given, validates the environments (names, aliases, ``local`` refused).
    """
    if event == "push":
        return _push(payload, manifest, default_branch)
    if event == "release":
        return _release(payload, manifest)
    if event == "workflow_dispatch":
        return _dispatch(payload, manifest)
    known = ("push", "release", "workflow_dispatch")
    hint = did_you_mean(event, known)
    raise EventRefused(
        f"the GitHub event '{event}' does not deploy anything",
        hint=f"{hint} {HOW_TO_FIX}" if hint else HOW_TO_FIX,
    )


def _push(payload: Mapping[str, Any], manifest: Manifest | None, default: str | None) -> Decision:
    ref = str(payload.get("ref") or "")
    repository = payload.get("repository") or {}
    branch = default or (repository.get("default_branch") if isinstance(repository, dict) else None)
    branch = branch or DEFAULT_BRANCH
    if ref != f"refs/heads/{branch}":
        raise EventRefused(
            f"a push to '{ref or '(no ref)'}' does not deploy: only pushes to '{branch}' go to development",
            hint=f"merge into {branch}, or run the deploy workflow manually with an environment",
        )
    if payload.get("deleted"):
        raise EventRefused(f"the push deleted '{ref}': nothing to deploy", hint=HOW_TO_FIX)
    env = _validate(manifest, "development")
    before = str(payload.get("before") or "")
    since = before if before and before != ZERO_SHA else None
    return Decision(
        "push", env, f"push to {branch} deploys {env}", since=since, only_changed=True
    )


def _release(payload: Mapping[str, Any], manifest: Manifest | None) -> Decision:
    action = str(payload.get("action") or "")
    release = payload.get("release") or {}
    if not isinstance(release, dict):
        release = {}
    tag = release.get("tag_name") or "(untagged)"
    pre = bool(release.get("prerelease"))
    kind = "pre-release" if pre else "release"
    if action == "created":
        if pre or release.get("draft"):
            env = _validate(manifest, "staging")
            return Decision("release", env, f"{kind} {tag} created: deploys {env}", action=action)
        return Decision(
            "release",
            None,
            f"release {tag} created as a full release: GitHub fires 'published' for it at the "
            "same moment, and that event deploys production; staging is not deployed",
            action=action,
        )
    if action == "published":
        if not pre:
            env = _validate(manifest, "production")
            return Decision("release", env, f"release {tag} published: deploys {env}", action=action)
        return Decision(
            "release",
            None,
            f"pre-release {tag} published: pre-releases deploy staging on 'created' (a pre-release "
            "that was a draft fires no 'created': run the deploy workflow with environment "
            "staging), and production waits for a full release",
            action=action,
        )
    raise EventRefused(
        f"the release action '{action or '(none)'}' does not deploy anything",
        hint="only 'created' (pre-release -> staging) and 'published' (release -> production) do",
    )


def _dispatch(payload: Mapping[str, Any], manifest: Manifest | None) -> Decision:
    inputs = payload.get("inputs") or {}
    name = str(inputs.get("environment") or "").strip() if isinstance(inputs, dict) else ""
    if not name:
        raise EventRefused(
            "workflow_dispatch without an 'environment' input",
            hint="run the workflow with the environment input set (development, staging, production)",
        )
    env = _validate(manifest, name)
    only_changed = str(inputs.get("only-changed", "")).lower() == "true"
    what = "the services changed since its last deploy" if only_changed else "every service"
    return Decision(
        "workflow_dispatch", env, f"manual run deploys {what} to {env}", only_changed=only_changed
    )


def _validate(manifest: Manifest | None, name: str) -> str:
    return remote_environment(manifest, name) if manifest is not None else name


def _remote_names(manifest: Manifest) -> list[str]:
    return [name for name, env in manifest.environments.items() if not env.is_local]


def waves_json(manifest: Manifest, services: Sequence[str], env: str) -> dict[str, Any]:
    """The deploy waves of *services* in *env*, for CI matrices (pure).

    ``{"environment", "services" (deploy order), "waves" ([[...], ...]), "count"}``: each wave
    only binds to services of earlier waves, so a wave's services may deploy in parallel.
    """
    environment = manifest.environment(env).name
    if not services:
        return {"environment": environment, "services": [], "waves": [], "count": 0}
    waves = [list(wave) for wave in manifest.waves(list(services)) if wave]
    return {
        "environment": environment,
        "services": [name for wave in waves for name in wave],
        "waves": waves,
        "count": len(waves),
    }
