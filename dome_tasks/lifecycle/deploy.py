"""Deploy and verify, as observe → decide → act: each service of a resolved request is built,
rendered, deployed with wrangler, verified and recorded; a red verification rolls it back (on
by default in protected environments) and stops the run.

:func:`observe_inputs` sums up each target's inputs and reads the live versions of those that
may be unchanged (one batch); :func:`observe_deploy` reads what deciding one target needs (the
clean seam for locks); :func:`decide_deploy` is pure (an unchanged target: an empty plan); the
session executes the plan. :func:`deploy` runs the services of one wave side by side
(:func:`~dome_tasks.runner.run_lanes`) and stops after a wave with a failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks._background import in_background
from dome_tasks.errors import DomeError, Interrupted
from dome_tasks.lifecycle.common import learned_subdomain, record_step, unchecked, verify_step
from dome_tasks.lifecycle.session import LifecycleError, Session
from dome_tasks.lifecycle.verify import serves_workers_dev, worker_urls
from dome_tasks.lifecycle.skip import (
    Unchanged,
    inputs_digest,
    interface_files,
    interface_globs,
    last_good_deploy,
    live_versions,
    unchanged,
    wrangler_version,
)
from dome_tasks.plan.deploy import deploy_steps
from dome_tasks.plan.rollout import NEW, activate_steps
from dome_tasks.plan.steps import Call, Plan, Step
from dome_tasks.plan.target import Target

if TYPE_CHECKING:
    from concurrent.futures import Future

    from dome_tasks.lifecycle.ledger import LedgerRecord
    from dome_tasks.lifecycle.reconcile import LiveDeployment
    from dome_tasks.lifecycle.verify import VerifyResult
    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.tools import Tools
    from dome_tasks.wrangler.argv import VersionLabel

__all__ = [
    "DeployOptions",
    "DeployState",
    "Inputs",
    "ReadsBefore",
    "decide_deploy",
    "decide_verify",
    "deploy",
    "digest_step",
    "held_early",
    "observe_deploy",
    "observe_inputs",
    "reads_before",
    "start_early",
    "verify_target",
]


@dataclass(frozen=True)
class DeployOptions:
    """What a deploy asks for besides the targets."""

    build: bool = True
    verify: bool = True
    rollback_on_failure: bool | None = None  # None: on for protected environments
    label: VersionLabel | None = None  # --tag/--message of each new version (CI: the commit)
    jobs: int = 1  # services of one wave deployed at once
    force: bool = False  # deploy even when nothing changed


@dataclass(frozen=True)
class DeployState:
    """What is known about a target before deploying it."""

    learned_subdomain: str | None = None  # from an earlier deploy's reported URLs
    digest: str | None = None  # of its inputs now (None: not computed, e.g. a dry run)
    unchanged: Unchanged | None = None  # set: skip it (inputs and live version unchanged)
    upstream: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)  # interface files


@dataclass(frozen=True)
class ReadsBefore:
    """API reads a deploy needs before wrangler starts, running side by side from the task's
    start (each joined where it is needed): the declared secrets, the D1 migrations tables."""

    secrets: Future[Any] | None = None  # secrets.guard.observe_declared
    applied: Future[Any] | None = None  # migrate.observe_applied


def reads_before(session: Session, request: ResolvedRequest, *, secrets: bool,
                 migrations: bool) -> ReadsBefore:
    """Start the reads that are asked for (none in a dry run)."""
    from dome_tasks.lifecycle.migrate import observe_applied
    from dome_tasks.secrets.guard import observe_declared

    if session.dry_run:
        return ReadsBefore()
    return ReadsBefore(
        in_background(observe_declared, request, name="dome-secrets") if secrets else None,
        in_background(observe_applied, session, request, name="dome-d1") if migrations else None,
    )


@contextlib.contextmanager
def held_early(session: Session, request: ResolvedRequest) -> Iterator[None]:
    """A one-service deploy holds its lock from here on (migrations included) and reads what
    serves the worker at once, beside the other reads (:meth:`Session.holding`)."""
    if len(request.targets) != 1 or session.dry_run or session.locks is None:
        yield
        return
    with session.holding(request.targets[0]):
        yield


def start_early(session: Session, request: ResolvedRequest, options: DeployOptions,
                tools: Tools) -> None:
    """A one-service deploy held early (:func:`held_early`) whose plan is render, then
    ``wrangler deploy`` (no build): start wrangler now, behind its gate, so that Node's start
    and the bundling overlap the reads that decide the deploy (:meth:`Session.start_early`)."""
    if len(request.targets) != 1 or session.dry_run:
        return
    target = request.targets[0]
    steps = deploy_steps(target, request.root, tools, build=options.build, label=options.label)
    if len(steps) >= 2 and (steps[0].event, steps[1].event) == ("render", "deploy"):
        session.start_early(target, steps[1])


def observe_deploy(
    session: Session,
    target: Target,
    *,
    records: Sequence[LedgerRecord] | None = None,
    digest: str | None = None,
    live_version: str | None = None,
    upstream: Mapping[str, tuple[Path, ...]] | None = None,
) -> DeployState:
    """Read what deciding a deploy of *target* needs (locks and the live deployment go here).

    *records* are the target's ledger records (read here when not given); *digest* and
    *live_version* come from :func:`observe_inputs` (then an unchanged target is marked)."""
    if records is None:
        records = session.ledger.records(target.service, target.environment)
    last = last_good_deploy(records, target.worker) if digest else None
    return DeployState(
        learned_subdomain=learned_subdomain(records, target.worker),
        digest=digest,
        unchanged=unchanged(last, digest, live_version) if digest else None,
        upstream=dict(upstream or {}),
    )


def observe_inputs(
    session: Session,
    request: ResolvedRequest,
    records: Sequence[LedgerRecord],
    *,
    force: bool = False,
) -> dict[str, Inputs]:
    """Each target's inputs (their digest, the interface files of what it binds to) and, for
    those whose last good deploy had that digest, the version live now (read for all of them
    at once); none in a dry run."""
    if session.dry_run:
        return {}
    manifest, environment = request.manifest, request.environment.name
    globs = interface_globs(manifest.path) if any(t.config.dependencies for t in request.targets) else {}
    upstream = {
        t.service: {dep: interface_files(manifest.resolve(dep, environment), globs.get(dep, ()))
                    for dep in t.config.dependencies}
        for t in request.targets
    }
    digests = {t.service: inputs_digest(t, wrangler_version(t.wrangler), upstream[t.service])
               for t in request.targets}
    candidates = [] if force else [
        t.worker for t in request.targets if _same_digest(_of(records, t), t, digests[t.service])
    ]
    reconciler = session.reconciler(environment)
    live = live_versions(lambda worker: _serving(reconciler.live(worker)), candidates)
    return {t.service: Inputs(digests[t.service], live.get(t.worker), upstream[t.service])
            for t in request.targets}


@dataclass(frozen=True)
class Inputs:
    """What :func:`observe_inputs` learned about one target."""

    digest: str
    live_version: str | None
    upstream: Mapping[str, tuple[Path, ...]]


def _serving(live: LiveDeployment | None) -> str | None:
    return live.version_id if live is not None else None


def _of(records: Sequence[LedgerRecord], target: Target) -> list[LedgerRecord]:
    return [r for r in records if r.service == target.service and r.environment == target.environment]


def _same_digest(records: Sequence[LedgerRecord], target: Target, digest: str) -> bool:
    last = last_good_deploy(records, target.worker)
    return last is not None and last.extra.get("digest") == digest


def decide_deploy(
    target: Target,
    state: DeployState,
    options: DeployOptions,
    *,
    tools: Tools,
    root: Path,
    subdomain: str | None = None,
) -> Plan:
    """Build, render, deploy, verify (optional) and record one target; a failure is recorded.
    An unchanged target (``state.unchanged``) has an empty plan. The record keeps the inputs'
    digest, summed up again after the build when there is one."""
    if state.unchanged is not None and not options.force:
        return Plan(())
    steps = deploy_steps(target, root, tools, build=options.build, label=options.label)
    extra: dict[str, object] = {"digest": state.digest} if state.digest else {}
    extra.update(url_fields(target, subdomain or state.learned_subdomain))
    if state.digest and steps[0].event == "build":
        steps.insert(1, digest_step(target, state.upstream))
    skipped = unchecked(target.config, options.verify)
    if skipped is None:
        steps.append(verify_step(target, subdomain=subdomain, learned=state.learned_subdomain))
    steps.append(record_step(target, "deploy", unchecked=skipped, version_id=NEW, extra=extra))
    return Plan(
        tuple(steps), on_failure=(record_step(target, "deploy", "failure", version_id=NEW),),
        on_unactivated=tuple(activate_steps(target)),
    )


def url_fields(target: Target, subdomain: str | None) -> dict[str, object]:
    """What the deploy record says about where the worker serves: ``urls`` from its config
    (custom domains, routes); ``workers_dev`` when it is on workers.dev: the subdomain known
    now ("" when unknown), which the subdomain of this deploy's own workers.dev URL replaces
    when the record is written (never wrangler's other free text)."""
    urls = worker_urls(target.config, None)
    fields: dict[str, object] = {"urls": urls} if urls else {}
    if serves_workers_dev(target.config):
        fields["workers_dev"] = subdomain or ""
    return fields


def digest_step(target: Target, upstream: Mapping[str, tuple[Path, ...]] | None = None) -> Step:
    """Sum up the target's inputs again (after its build), for the deploy record."""
    kwargs = {"target": target, "wrangler": wrangler_version(target.wrangler),
              "upstream": dict(upstream or {})}
    return target.step("digest", f"sum up the inputs of {target.worker}",
                       Call("digest", inputs_digest, kwargs))


def deploy(
    session: Session, request: ResolvedRequest, options: DeployOptions, tools: Tools
) -> list[LedgerRecord]:
    """Deploy the request's services wave by wave; verify each; on red, roll back and stop.

    The services of one wave run side by side (``options.jobs`` at a time, each one's output
    kept together); the next wave starts only when the whole wave succeeded. An unchanged
    service is skipped unless ``options.force``. Returns the ledger records written. Raises the
    first failure of the wave: :class:`LifecycleError` after a failed verification (after the
    rollback, when one ran), ``WranglerFailed`` when wrangler failed.
    """
    from dome_tasks.progress import Board
    from dome_tasks.runner import Lane, run_lanes

    if session.board is None:
        board = Board(session.out, request.services, request.environment.name)
        session = dataclasses.replace(session, board=board)
    board = session.board
    protected = request.environment.protected
    auto_rollback = (
        protected if options.rollback_on_failure is None else options.rollback_on_failure
    )
    records = session.settled(session.ledger.records(None, request.environment.name))
    inputs = observe_inputs(session, request, records, force=options.force)
    written: list[LedgerRecord] = []
    waves = request.waves
    jobs = 1 if session.dry_run else options.jobs
    for number, wave in enumerate(waves, 1):
        if len(waves) > 1 or session.dry_run:
            together = f" (up to {min(jobs, len(wave))} at once)" if len(wave) > 1 else ""
            board.say(f"wave {number}/{len(waves)}: {', '.join(wave)}{together}")
        lanes = []
        for service in wave:
            target = request.target(service)
            seen = inputs.get(service)
            state = observe_deploy(
                session, target, records=_of(records, target),
                digest=seen.digest if seen else None,
                live_version=seen.live_version if seen else None,
                upstream=seen.upstream if seen else None,
            )
            lanes.append(Lane(service, functools.partial(
                _deploy_one, session, target, options, tools, request.root, auto_rollback, state,
            )))
        results = run_lanes(lanes, jobs=jobs, out=session.out, block=board.block,
                            buffer=board.live)
        for result in results:
            if result.ok:
                written += result.value
        failures = [r for r in results if r.error is not None]
        if failures:
            board.not_run([r.name for r in results if not r.started], "an earlier failure stopped it")
            later = [s for wave in waves[number:] for s in wave]
            board.not_run(later, f"wave {number} failed")
            raise failures[0].error
    return written


def _deploy_one(
    session: Session,
    target: Target,
    options: DeployOptions,
    tools: Tools,
    root: Path,
    auto_rollback: bool,
    state: DeployState,
    out: TextIO,
) -> list[LedgerRecord]:
    """One lane of a wave: deploy, verify and record *target* (or skip it), printing to *out*."""
    from dome_tasks.progress import Outcome

    session = session.lane(out)
    board = session.board
    assert board is not None
    where = target.environment
    if state.unchanged is not None and not options.force:
        session.say(f"skip {target.worker}: {state.unchanged.reason()}; --force deploys anyway")
        session.log.emit("deploy", service=target.service, environment=where, outcome="skipped",
                         reason="unchanged", version_id=state.unchanged.record.version_id)
        record = state.unchanged.record
        urls = list(record.extra.get("urls") or ())
        board.done(Outcome(target.service, where, "skipped", target.worker, record.version_id,
                           _first(urls), _health(record.verified), 0, urls=urls))
        return []
    with session.locked(target.environment, target.service):
        return _deploy_locked(session, target, options, tools, root, auto_rollback, state)


def _deploy_locked(
    session: Session,
    target: Target,
    options: DeployOptions,
    tools: Tools,
    root: Path,
    auto_rollback: bool,
    state: DeployState,
) -> list[LedgerRecord]:
    """Deploy under the (environment, service) lock: act, then what is live decides the record.
    A wrangler failure after the new version went live is recorded as live, verified like any
    deploy, and then raised."""
    from dome_tasks.lifecycle.traffic import rollback
    from dome_tasks.progress import Outcome

    board = session.board
    assert board is not None
    where = target.environment
    plan = decide_deploy(target, state, options, tools=tools, root=root, subdomain=session.subdomain)
    try:
        facts = session.execute(plan)
    except DomeError as error:
        # what the record now says serves (a version that went live before a Ctrl-C), if any
        live = next((r.version_id for r in error.recorded if r.kind == "deploy"), None)
        result = "interrupted" if isinstance(error, Interrupted) else "failed"
        board.done(Outcome(target.service, where, result, target.worker, live,
                           note=_first_line(str(error))))
        raise
    written = list(facts.records)
    urls = list(next((r.extra.get("urls") or () for r in written if r.kind == "deploy"), ()))
    url = _first(urls)
    health = _health(None if facts.verification is None else facts.verification.ok)
    live = facts.reconciled.version_id if facts.reconciled else None
    version = live or facts.new_version
    if facts.healthy:
        if not session.dry_run:
            board.done(Outcome(target.service, where, "deployed", target.worker,
                               version, url, health, urls=urls))
        if facts.landed is not None:
            raise facts.landed
        return written
    assert facts.verification is not None
    message = f"{target.worker} failed verification after deploy: {facts.verification.summary()}"
    if not auto_rollback:
        board.done(Outcome(target.service, where, "unhealthy", target.worker,
                           version, url, health, note=message, urls=urls))
        raise LifecycleError(
            message,
            hint=f"roll back with `invoke rollback {target.service} {target.environment}`"
            " or pass --rollback-on-failure",
        )
    session.say(f"verification failed: rolling back {target.worker} automatically")
    back = rollback(
        session,
        target,
        reason=f"automatic: verification of {version} failed",
        automatic=True,
        exclude=(version,) if version else (),
        from_version=version,
    )
    written += [back] if back else []
    to = back.to_version if back else "the previous version"
    board.done(Outcome(target.service, where, "rolled back", target.worker, to, url, health, urls=urls,
                       note=f"{version} failed verification; rolled back to {to}"))
    raise LifecycleError(
        message + f"; rolled back to {to}",
        hint="fix the service and deploy again; `invoke history` shows both records",
    )


def _health(verified: bool | None) -> str | None:
    return None if verified is None else ("healthy" if verified else "unhealthy")


def _first(values: Sequence[str] | None) -> str | None:
    return values[0] if values else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# --- verify on its own -----------------------------------------------------------------------


def decide_verify(
    target: Target,
    live_version: str | None,
    *,
    smoke: bool = True,
    subdomain: str | None = None,
    learned: str | None = None,
) -> Plan:
    """Check *target* (a missing health URL is an error here) and record the result."""
    return Plan(
        (
            verify_step(target, subdomain=subdomain, learned=learned, smoke=smoke, required=True),
            record_step(target, "verify", version_id=live_version),
        )
    )


def verify_target(session: Session, target: Target, *, smoke: bool = True) -> VerifyResult | None:
    """Verify *target* now, recorded with the version serving it; ``None`` in a dry run."""
    from dome_tasks.errors import DomeError
    from dome_tasks.lifecycle.traffic import current_traffic

    session.prepare(target)
    live_version = None
    if not session.dry_run:
        try:  # the version is a bonus: verification stands on its own
            live = current_traffic(session, target)
            live_version = live[0][0] if len(live) == 1 else None
        except DomeError:
            live_version = None
    records = session.ledger.records(target.service, target.environment)
    plan = decide_verify(
        target,
        live_version,
        smoke=smoke,
        subdomain=session.subdomain,
        learned=learned_subdomain(records, target.worker),
    )
    facts = session.execute(plan)
    if session.dry_run or facts.verification is None:
        return None
    if not facts.verification.ok:
        raise LifecycleError(f"{target.worker} is unhealthy: {facts.verification.summary()}")
    return facts.verification
