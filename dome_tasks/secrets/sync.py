"""``invoke secrets-sync``: decide (pure) which declared secrets to set on each worker from the
values at hand, and which undeclared ones to remove; then act through the session's runner,
every value registered with the session's redactor first."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dome_tasks.events import unmaskable
from dome_tasks.plan.secrets import secret_bulk_step, secret_delete_step
from dome_tasks.plan.steps import Step

if TYPE_CHECKING:
    from dome_tasks.lifecycle.session import Session
    from dome_tasks.plan.target import Target
    from dome_tasks.secrets.status import SecretStatus

__all__ = ["SyncDecision", "decide_sync", "sync"]


@dataclass(frozen=True)
class SyncDecision:
    """What one worker gets: names set, names without a value, undeclared names removed."""

    service: str
    worker: str
    set: tuple[str, ...]
    no_value: tuple[str, ...]
    removed: tuple[str, ...] = ()
    steps: tuple[Step, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "worker": self.worker, "set": list(self.set),
                "no_value": list(self.no_value), "removed": list(self.removed)}


def decide_sync(
    pairs: Sequence[tuple[Target, SecretStatus]],
    values: Mapping[str, str],
    *,
    prune: bool = False,
    only_missing: bool = False,
) -> list[SyncDecision]:
    """Per worker: set every declared secret that has a value (``only_missing``: only those the
    worker lacks); with ``prune``, remove what it has and does not declare. Names in ``values``
    that a service does not declare are never set on it."""
    decisions = []
    for target, status in pairs:
        wanted = status.missing if only_missing else status.declared
        chosen = {name: values[name] for name in wanted if name in values}
        no_value = tuple(name for name in wanted if name not in values)
        removed = status.undeclared if prune else ()
        steps = [secret_bulk_step(target, chosen)] if chosen else []
        steps += [secret_delete_step(target, name) for name in removed]
        decisions.append(SyncDecision(target.service, target.worker, tuple(sorted(chosen)),
                                      no_value, removed, tuple(steps)))
    return decisions


def sync(session: Session, pairs: Sequence[tuple[Target, SecretStatus]],
         decisions: Sequence[SyncDecision], values: Mapping[str, str]) -> None:
    """Run the decided steps, one worker at a time, each recorded as a ``secret`` record of the
    version it made; the values are masked in all output."""
    from dome_tasks.lifecycle.account import change_secrets, decide_secrets

    for target, decision in ((t, d) for (t, _), d in zip(pairs, decisions)):
        if not decision.steps:
            continue
        ordinary = (target.service, target.environment, target.worker)
        for name in decision.set:
            session.redactor.add(values[name], ordinary=ordinary)
            reason = unmaskable(values[name], ordinary)
            if reason is not None:
                session.say(f"warning: the value of {name} is {reason}, so dome cannot mask it "
                            "in output; it is set, but use a longer, random value")
        change_secrets(session, target, decide_secrets(target, decision.steps, names=decision.set,
                                                       removed=decision.removed))
