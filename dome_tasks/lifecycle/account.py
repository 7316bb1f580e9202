"""Operations that change no traffic: set a secret, tail the logs, list the account's resources."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dome_tasks.errors import UsageError
from dome_tasks.events import unmaskable
from dome_tasks.lifecycle.common import record_step
from dome_tasks.plan.rollout import LIVE, resources_steps, secret_put_step, tail_step
from dome_tasks.plan.steps import Plan, Step
from dome_tasks.wrangler.exec import WranglerFailed

if TYPE_CHECKING:
    from dome_tasks.lifecycle.session import Session
    from dome_tasks.plan.target import ResolvedRequest, Target

__all__ = ["change_secrets", "decide_secrets", "resources", "secret_put", "tail"]


def decide_secrets(target: Target, steps: tuple[Step, ...], *, names: tuple[str, ...],
                   removed: tuple[str, ...] = ()) -> Plan:
    """The secret commands, then a ``secret`` record of the version they made, read from the
    API (each command deploys a new version: the record names it, so history and rollback do);
    the secrets' names only, never a value."""
    extra = {"secrets": sorted(names), **({"removed": sorted(removed)} if removed else {})}
    return Plan((*steps, record_step(target, "secret", version_id=LIVE, extra=extra)),
                on_failure=(record_step(target, "secret", "failure", extra=extra),))


def change_secrets(session: Session, target: Target, plan: Plan) -> None:
    """Run a :func:`decide_secrets` plan under the worker's deploy lock (a deploy meanwhile
    would race it)."""
    with session.locked(target.environment, target.service):
        session.prepare(target)
        session.execute(plan)


def secret_put(session: Session, target: Target, name: str, value: str) -> None:
    """``wrangler secret put NAME``, the value on stdin and registered for redaction."""
    if not value:
        raise UsageError(
            "refusing to set an empty secret", hint="pipe the value on stdin or type it"
        )
    ordinary = (target.service, target.environment, target.worker)
    reason = unmaskable(value, ordinary)
    if reason is not None:
        print(f"warning: the value of {name} is {reason}, so dome cannot mask it in output "
              "without hiding ordinary text; it is set, but use a longer, random value",
              file=sys.stderr)
    session.redactor.add(value, ordinary=ordinary)
    change_secrets(session, target, decide_secrets(target, (secret_put_step(target, name, value),),
                                                   names=(name,)))
    if not session.dry_run:
        session.say(f"secret {name} set on {target.worker}")


def tail(session: Session, target: Target) -> None:
    """``wrangler tail --format pretty`` until interrupted."""
    session.prepare(target)
    session.execute(Plan((tail_step(target),)))


def resources(session: Session, request: ResolvedRequest) -> list[str]:
    """List D1, R2 and Vectorize resources of the environment's account; returns failed kinds."""
    steps = resources_steps(request.wrangler, request.environment, cwd=request.root)
    failed: list[str] = []
    for step in steps:
        try:
            session.execute(Plan((step,)))
        except WranglerFailed as error:
            failed.append(step.action.argv[1])  # type: ignore[union-attr]
            print(f"  ({error.message})", file=sys.stderr)
    return failed
