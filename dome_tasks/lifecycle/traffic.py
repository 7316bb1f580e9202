"""Who serves a worker's traffic, and changing it: status, rollback, canary, promote, abort.

Each change is observe → decide → act: :func:`observe_traffic` reads the ledger and (in real
runs) the live split into a :class:`TrafficState`; a pure ``decide_*`` function turns it into a
:class:`~dome_tasks.plan.steps.Plan`; the session executes it. A red verification after a
rollback or promote is a new observation, decided and acted on again (promote → abort).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dome_tasks.lifecycle.common import learned_subdomain, record_step, unchecked, verify_step
from dome_tasks.lifecycle.ledger import (
    FULL_TRAFFIC_KINDS,
    LedgerRecord,
    last_healthy_version,
    open_canary,
)
from dome_tasks.lifecycle.session import LifecycleError, Session, parse_status
from dome_tasks.plan.rollout import (
    LIVE,
    NEW,
    OLD,
    abort_steps,
    canary_steps,
    check_percent,
    promote_steps,
    rollback_steps,
    status_step,
)
from dome_tasks.plan.steps import Plan
from dome_tasks.plan.target import Target

__all__ = [
    "RollbackChoice",
    "TrafficState",
    "abort",
    "canary",
    "choose_rollback",
    "current_traffic",
    "decide_abort",
    "decide_canary",
    "decide_promote",
    "decide_rollback",
    "observe_traffic",
    "promote",
    "rollback",
    "running_canary",
    "status",
]


@dataclass(frozen=True)
class TrafficState:
    """What the ledger and Cloudflare say about one target's traffic."""

    service: str
    environment: str
    records: tuple[LedgerRecord, ...] = ()  # the target's ledger records, oldest first
    live: tuple[tuple[str, float], ...] | None = None  # (version, percent); None: not read

    @property
    def canary(self) -> LedgerRecord | None:
        """The running canary according to the ledger (a canary step not yet closed)."""
        return open_canary(self.records, self.service, self.environment)

    @property
    def serving(self) -> str | None:
        """The version with the most traffic; without the live split (a dry run), the last
        version the ledger saw take all of it."""
        if self.live is not None:
            return max(self.live, key=lambda item: item[1])[0] if self.live else None
        for record in reversed(self.records):
            if (
                record.kind in FULL_TRAFFIC_KINDS
                and record.outcome not in ("failure", "unknown")
                and record.version_id
            ):
                return record.version_id
        return None

    def learned_subdomain(self, worker: str) -> str | None:
        return learned_subdomain(self.records, worker)


def current_traffic(session: Session, target: Target) -> list[tuple[str, float]]:
    """``[(version_id, percent), …]`` of the live deployment (a quiet, read-only wrangler call)."""
    return parse_status(session.observe(status_step(target)).stdout)


def observe_traffic(
    session: Session, target: Target, *, live: bool = True, direct: bool = True
) -> TrafficState:
    """The target's records (the shared history) and (``live``, real runs only) its live traffic
    split: read straight from the API (``direct``, when it answers), else with ``wrangler
    deployments status`` (whose failures come with wrangler's diagnosis)."""
    session.prepare(target)
    records = session.settled(session.ledger.records(target.service, target.environment))
    split = None
    if live and not session.dry_run:
        serving = session.reconciler(target.environment).live(target.worker) if direct else None
        split = serving.traffic if serving is not None else tuple(current_traffic(session, target))
    return TrafficState(target.service, target.environment, tuple(records), split)


def status(session: Session, target: Target) -> dict[str, Any]:
    """The live traffic split, annotated with what the ledger knows about each version; a worker
    the API says has no deployment is ``deployed: False`` (no wrangler call, no error)."""
    if session.dry_run:
        session.execute(Plan((status_step(target),)))
        return {}
    absent = session.reconciler(target.environment).live(target.worker)
    if absent is not None and absent.id is None:  # the API says: no deployment, or no worker
        return {"worker": target.worker, "environment": target.environment, "deployed": False,
                "versions": []}
    state = observe_traffic(session, target, direct=False)  # wrangler's view, its diagnosis
    running = state.canary
    known: dict[str, LedgerRecord] = {r.version_id: r for r in state.records if r.version_id}
    versions = []
    for version_id, percent in state.live or ():
        last = known.get(version_id)
        role = None
        if running is not None:
            role = "canary" if version_id == running.version_id else "stable"
        versions.append(
            {
                "version_id": version_id,
                "percentage": percent,
                "role": role,
                "last_action": last.kind if last else None,
                "verified": last.verified if last else None,
                "commit": last.commit if last else None,
            }
        )
    return {"worker": target.worker, "environment": target.environment, "deployed": True,
            "versions": versions}


# --- rollback -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RollbackChoice:
    """Where a rollback comes from and goes to (``to_version=None``: wrangler's previous one)."""

    from_version: str | None
    to_version: str | None


def choose_rollback(
    state: TrafficState,
    version: str | None = None,
    *,
    exclude: Sequence[str] = (),
    from_version: str | None = None,
) -> RollbackChoice:
    """``version``, else the last version the ledger saw healthy (not the one serving now)."""
    current = from_version or state.serving
    skip = set(exclude) | ({current} if current else set())
    if version:
        return RollbackChoice(current, version)
    chosen = last_healthy_version(state.records, state.service, state.environment, exclude=skip)
    return RollbackChoice(current, chosen)


def decide_rollback(
    target: Target,
    choice: RollbackChoice,
    *,
    reason: str,
    automatic: bool = False,
    verify: bool = True,
    subdomain: str | None = None,
    learned: str | None = None,
) -> Plan:
    """Roll back (to wrangler's previous version when none is chosen: then read which one that
    was), verify, record."""
    steps = rollback_steps(target, choice.to_version, message=reason)
    to_version = choice.to_version
    if to_version is None:
        to_version = LIVE
        steps.append(status_step(target, f"read which version serves {target.worker} now"))
    skipped = unchecked(target.config, verify)
    if skipped is None:
        steps.append(verify_step(target, subdomain=subdomain, learned=learned))
    fields = {
        "from_version": choice.from_version,
        "to_version": to_version,
        "reason": reason,
        "automatic": automatic,
    }
    steps.append(record_step(target, "rollback", unchecked=skipped, version_id=to_version,
                             **fields))
    failed = record_step(
        target, "rollback", "failure", **{**fields, "to_version": choice.to_version}
    )
    return Plan(tuple(steps), on_failure=(failed,))


def rollback(
    session: Session,
    target: Target,
    version: str | None = None,
    *,
    reason: str = "manual rollback",
    automatic: bool = False,
    exclude: Sequence[str] = (),
    from_version: str | None = None,
    verify_after: bool = True,
) -> LedgerRecord | None:
    """Roll back to ``version``, else to the last version the ledger saw healthy, else to
    wrangler's previous deployment, under the service's lock. Verifies afterwards; records the
    version that serves afterwards (read back from the API)."""
    with session.locked(target.environment, target.service):
        state = observe_traffic(session, target, live=from_version is None)
        choice = choose_rollback(state, version, exclude=exclude, from_version=from_version)
        if choice.to_version is None and not session.dry_run:
            session.say(
                "the ledger knows no healthy earlier version: wrangler picks the previous deployment"
            )
        plan = decide_rollback(
            target,
            choice,
            reason=reason,
            automatic=automatic,
            verify=verify_after,
            subdomain=session.subdomain,
            learned=state.learned_subdomain(target.worker),
        )
        facts = session.execute(plan)
        if session.dry_run:
            return None
        to_version = choice.to_version or facts.live_version
        session.say(
            f"rolled {target.worker} back from {choice.from_version or '?'} to {to_version or '?'}"
        )
        if not facts.healthy:
            assert facts.verification is not None
            raise LifecycleError(
                f"{target.worker} is still unhealthy after the rollback: {facts.verification.summary()}"
            )
        return facts.records[-1] if facts.records else None


# --- canary / promote / abort -----------------------------------------------------------------


def _commit_of(record: LedgerRecord) -> dict[str, Any]:
    """A canary's later steps describe the commit its upload came from, not today's checkout."""
    return {"commit": record.commit, "commit_time": record.commit_time, "dirty": record.dirty}


def running_canary(state: TrafficState, target: Target) -> LedgerRecord:
    """The canary in progress, else :class:`LifecycleError` saying how to start one."""
    running = state.canary
    if running is None or not running.version_id or not running.from_version:
        raise LifecycleError(
            f"no canary in progress for {target.worker} (according to the ledger)",
            hint=f"start one: `invoke canary {target.service} {target.environment} --percent 10`",
        )
    return running


def _split_text(live: Mapping[str, float]) -> str:
    return ", ".join(f"{v[:8]}@{p:g}%" for v, p in live.items())


def decide_canary(
    target: Target,
    state: TrafficState,
    percent: int,
    *,
    message: str | None = None,
    tag: str | None = None,
) -> Plan:
    """Move a running canary to ``percent``% (no upload), or upload a version and split.

    Without the live split (a dry run) the ledger's running canary is trusted and the version
    serving now is shown as ``<old-version>``.
    """
    check_percent(percent)
    text = message or f"dome canary {percent}%"
    running = state.canary
    live = dict(state.live) if state.live is not None else None
    resplit = (
        running is not None
        and running.version_id
        and running.from_version
        and (live is None or set(live) == {running.version_id, running.from_version})
    )
    if resplit:
        assert running is not None and running.version_id and running.from_version
        new, old = running.version_id, running.from_version
        steps = canary_steps(target, percent, old=old, new=new, message=text, upload=False)
        fields: dict[str, Any] = _commit_of(running)
    else:
        if live is not None and not live:
            raise LifecycleError(
                f"{target.worker} has no deployment yet: nothing to canary against",
                hint=f"deploy it first: `invoke deploy-env {target.service} {target.environment}`",
            )
        if live is not None and len(live) != 1:
            raise LifecycleError(
                f"{target.worker} already splits traffic ({_split_text(live)}) and the ledger has "
                "no canary for it",
                hint="settle it first: "
                f"`invoke rollback {target.service} {target.environment} VERSION`",
            )
        new, old = NEW, (next(iter(live)) if live else OLD)
        steps = canary_steps(target, percent, old=old, new=new, message=text, tag=tag)
        fields = {}
    fields.update(version_id=new, from_version=old, percent=percent)
    return Plan(
        (*steps, record_step(target, "canary", **fields)),
        on_failure=(record_step(target, "canary", "failure", **fields),),
    )


def canary(
    session: Session,
    target: Target,
    percent: int,
    *,
    message: str | None = None,
    tag: str | None = None,
) -> LedgerRecord | None:
    """Start a canary (upload a version, give it ``percent``%) or move a running one."""
    with session.locked(target.environment, target.service):
        check_percent(percent)
        state = observe_traffic(session, target)
        facts = session.execute(decide_canary(target, state, percent, message=message, tag=tag))
        if session.dry_run or not facts.records:
            return None
        record = facts.records[-1]
        session.say(
            f"canary {target.worker}: {percent}% to {record.version_id}, "
            f"{100 - percent}% to {record.from_version}"
        )
        return record


def decide_promote(
    target: Target,
    running: LedgerRecord,
    *,
    verify: bool = True,
    subdomain: str | None = None,
    learned: str | None = None,
) -> Plan:
    """The running canary's version takes 100% of the traffic; verified; recorded."""
    assert running.version_id and running.from_version
    steps = promote_steps(target, running.version_id)
    skipped = unchecked(target.config, verify)
    if skipped is None:
        steps.append(verify_step(target, subdomain=subdomain, learned=learned))
    fields = {
        **_commit_of(running),
        "version_id": running.version_id,
        "from_version": running.from_version,
    }
    steps.append(record_step(target, "promote", unchecked=skipped, to_version=running.version_id,
                             percent=100, **fields))
    return Plan(tuple(steps), on_failure=(record_step(target, "promote", "failure", **fields),))


def promote(session: Session, target: Target, *, verify_after: bool = True) -> LedgerRecord | None:
    """Promote the running canary; if verification then fails, abort it (old version back)."""
    with session.locked(target.environment, target.service):
        state = observe_traffic(session, target, live=False)
        running = running_canary(state, target)
        facts = session.execute(
            decide_promote(
                target,
                running,
                verify=verify_after,
                subdomain=session.subdomain,
                learned=state.learned_subdomain(target.worker),
            )
        )
        if session.dry_run:
            return None
        if facts.healthy:
            session.say(f"promoted {running.version_id} to 100% of {target.worker}")
            return facts.records[-1] if facts.records else None
        assert facts.verification is not None
        session.say("verification failed after promote: returning traffic to the old version")
        _abort(
            session,
            target,
            running,
            reason="automatic: verification after promote failed",
            automatic=True,
        )
        raise LifecycleError(
            f"{target.worker} failed verification after promote: {facts.verification.summary()}"
        )


def decide_abort(target: Target, running: LedgerRecord, *, reason: str, automatic: bool) -> Plan:
    """The running canary ends: the version it started from takes 100% back; recorded."""
    assert running.version_id and running.from_version
    old, new = running.from_version, running.version_id
    fields = {
        "version_id": old,
        "from_version": new,
        "to_version": old,
        "reason": reason,
        "automatic": automatic,
    }
    return Plan(
        (*abort_steps(target, old), record_step(target, "abort", "success", **fields)),
        on_failure=(record_step(target, "abort", "failure", **fields),),
    )


def abort(session: Session, target: Target) -> LedgerRecord | None:
    """End the running canary: the old version takes 100% of the traffic back."""
    with session.locked(target.environment, target.service):
        running = running_canary(observe_traffic(session, target, live=False), target)
        return _abort(session, target, running, reason="canary aborted", automatic=False)


def _abort(
    session: Session, target: Target, running: LedgerRecord, *, reason: str, automatic: bool
) -> LedgerRecord | None:
    facts = session.execute(decide_abort(target, running, reason=reason, automatic=automatic))
    if session.dry_run:
        return None
    session.say(f"aborted: {running.from_version} serves 100% of {target.worker} again")
    return facts.records[-1] if facts.records else None
