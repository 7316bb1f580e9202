"""Pure planners for the deploy lifecycle on Workers versions: canary, promote, abort, rollback,
and the operations around them (status, logs, secrets, resource lists).

Blue-green and canary both map onto Workers *versions*: ``wrangler versions upload`` creates a
version that serves no traffic; ``wrangler versions deploy NEW@N% OLD@(100-N)% --yes`` splits
the traffic between the new ("blue") and the old ("green") version; promote moves NEW to 100%,
abort moves OLD back to 100%. ``--yes`` is always passed: without it wrangler opens a prompt,
reads EOF on a non-terminal, exits 0 and deploys nothing.

Every function returns :class:`~dome_tasks.plan.steps.Step` values; nothing runs here. Version ids
that are only known at run time (the id ``versions upload`` prints) are the placeholders
:data:`NEW` / :data:`LIVE`, filled by the act phase from what earlier steps learned; a dry run
shows them (and :data:`OLD` for the live version it does not ask for) as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from dome_tasks.errors import UsageError
from dome_tasks.plan.steps import Command, Step
from dome_tasks.plan.target import Target

if TYPE_CHECKING:
    from dome_tasks.manifest.model import Environment

__all__ = [
    "LIVE",
    "NEW",
    "OLD",
    "Target",
    "abort_steps",
    "activate_steps",
    "canary_steps",
    "check_percent",
    "promote_steps",
    "resources_steps",
    "rollback_steps",
    "secret_put_step",
    "split_step",
    "status_step",
    "tail_step",
    "upload_step",
    "version_spec",
]

NEW = "<new-version>"  # the version this plan uploads or deploys (learned from wrangler's output)
OLD = "<old-version>"  # the version serving now (a dry run does not ask Cloudflare)
LIVE = "<live-version>"  # whatever serves after the plan's status read (wrangler's own choice)


def check_percent(percent: int, *, low: int = 1, high: int = 99) -> int:
    """*percent* when it is a whole number from *low* to *high*, else :class:`UsageError`."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not low <= percent <= high:
        raise UsageError(
            f"percent must be a whole number from {low} to {high}, not {percent!r}",
            hint="e.g. --percent 10 sends 10% of requests to the new version",
        )
    return percent


def version_spec(version: str, percent: int) -> str:
    """``<version-id>@<percent>%`` as ``wrangler versions deploy`` expects it."""
    return f"{version}@{percent}%"


def upload_step(target: Target, *, message: str, tag: str | None = None) -> Step:
    """``wrangler versions upload``: a new version that serves no traffic yet."""
    args = ["versions", "upload", "--message", message]
    if tag:
        args += ["--tag", tag]
    return target.step(
        "upload", f"upload a new version of {target.worker}", target.command(*args)
    )


def split_step(
    target: Target, new: str, old: str, percent: int, *, message: str, event: str = "canary",
    retry_safe: bool = False,
) -> Step:
    """``wrangler versions deploy NEW@N% OLD@(100-N)% --yes`` (NEW@100% alone when N is 100)."""
    check_percent(percent, low=1, high=100)
    specs = [version_spec(new, percent)]
    if percent < 100:
        if not old or old == new:
            raise UsageError("a traffic split needs two different versions")
        specs.append(version_spec(old, 100 - percent))
    command = target.command("versions", "deploy", *specs, "--yes", "--message", message,
                             retry_safe=retry_safe)
    split = f"{percent}% to {_short(new)}"
    if percent < 100:
        split += f", {100 - percent}% to {_short(old)}"
    return target.step(event, f"{event} {target.worker}: {split}", command)


def canary_steps(
    target: Target,
    percent: int,
    *,
    old: str = OLD,
    new: str = NEW,
    message: str | None = None,
    tag: str | None = None,
    upload: bool = True,
) -> list[Step]:
    """Upload a version (unless ``upload=False``: re-split an existing canary), then split."""
    check_percent(percent)
    text = message or f"dome canary {percent}%"
    steps = [upload_step(target, message=text, tag=tag)] if upload else []
    steps.append(split_step(target, new, old, percent, message=text, event="canary"))
    return steps


def promote_steps(target: Target, new: str, *, message: str | None = None) -> list[Step]:
    """The canary version takes 100% of the traffic."""
    return [split_step(target, new, "", 100, message=message or "dome promote", event="promote")]


def abort_steps(target: Target, old: str, *, message: str | None = None) -> list[Step]:
    """The old version takes 100% of the traffic back."""
    return [split_step(target, old, "", 100, message=message or "dome abort", event="abort")]


def activate_steps(target: Target, version: str = NEW) -> list[Step]:
    """After a ``wrangler deploy`` that uploaded *version* but failed to activate it: give it all
    the traffic (``versions deploy VERSION@100% --yes``, safe to repeat), then apply what the
    deploy applies after activating (``triggers deploy``: workers.dev, routes, crons). Never a
    second upload."""
    message = "dome: activate the uploaded version"
    triggers = target.command("triggers", "deploy", retry_safe=True)
    return [
        split_step(target, version, "", 100, message=message, event="activate", retry_safe=True),
        target.step("triggers", f"apply the triggers of {target.worker}", triggers),
    ]


def rollback_steps(target: Target, version: str | None, *, message: str) -> list[Step]:
    """``wrangler rollback [VERSION] --message M -y`` (no VERSION: wrangler picks the previous)."""
    args = ["rollback"] + ([version] if version else []) + ["--message", message, "-y"]
    where = _short(version) if version else "the previous version"
    return [target.step("rollback", f"roll {target.worker} back to {where}", target.command(*args))]


def status_step(target: Target, description: str = "") -> Step:
    """``wrangler deployments status --json``: the current deployment's versions and percentages."""
    return target.step(
        "status",
        description or f"deployment status of {target.worker}",
        target.command("deployments", "status", "--json", retry_safe=True),
    )


def tail_step(target: Target, *, fmt: str = "pretty") -> Step:
    """``wrangler tail --format pretty``: live logs until interrupted."""
    return target.step(
        "logs", f"tail the logs of {target.worker}", target.command("tail", "--format", fmt)
    )


def secret_put_step(target: Target, name: str, value: str) -> Step:
    """``wrangler secret put NAME`` with the value on stdin: never in argv, logs or dry runs."""
    if not name or not name.replace("_", "").isalnum():
        raise UsageError(
            f"invalid secret name {name!r}", hint="use letters, digits and underscores"
        )
    command = target.command("secret", "put", name, stdin=value)
    return target.step("secret", f"set secret {name} on {target.worker}", command)


def resources_steps(wrangler: str, environment: Environment, *, cwd: Path | None = None) -> list[Step]:
    """The D1 databases, R2 buckets and Vectorize indexes of the environment's account (9.2.4)."""
    account_id = environment.account_id
    env: Mapping[str, str] = {"CLOUDFLARE_ACCOUNT_ID": account_id} if account_id else {}
    listings = (
        ("d1", ("d1", "list")),
        ("r2", ("r2", "bucket", "list")),
        ("vectorize", ("vectorize", "list")),
    )
    return [
        Step(
            "resources",
            f"list {kind} resources ({environment.name})",
            Command((wrangler, *args), cwd=cwd, env=env, retry_safe=True, wrangler=True),
            environment=environment.name,
        )
        for kind, args in listings
    ]


def _short(version: str | None) -> str:
    if not version:
        return "?"
    return version if version.startswith("<") else version[:8]
