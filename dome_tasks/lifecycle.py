"""The deploy lifecycle as library calls: deploy-and-verify, verify, rollback, canary, promote,
abort, status, secrets and resource listings. The invoke tasks in ``dome_tasks.cli.lifecycle``
are thin wrappers over these.

A :class:`Session` gathers what every operation needs (invoke context, manifest, wrangler,
ledger, structured event log, verification settings). Operations plan with
``dome_tasks.rollout``, execute through the one :class:`~dome_tasks.runner.Runner` (with
:class:`~dome_tasks.wrangler_exec.WranglerExec` for wrangler commands), verify with
``dome_tasks.verify``, and append one ledger record per action.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks.errors import CommandFailed, DomeError, UsageError
from dome_tasks.events import EventLog, Redactor
from dome_tasks.ledger import (
    GitFacts,
    Ledger,
    Record,
    actor,
    git_facts,
    last_healthy_version,
    open_canary,
)
from dome_tasks.rollout import (
    NEW,
    OLD,
    Target,
    abort_steps,
    canary_steps,
    promote_steps,
    resources_steps,
    rollback_steps,
    secret_put_step,
    status_step,
    tail_step,
)
from dome_tasks.steps import Step, WriteFile
from dome_tasks.verify import VerifyError, VerifyPolicy, VerifyResult, health_target, verify
from dome_tasks.wrangler_exec import WranglerExec, WranglerFailed

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest import Manifest
    from dome_tasks.model import WorkerConfig
    from dome_tasks.runner import StepResult

__all__ = [
    "LifecycleError",
    "Session",
    "abort",
    "canary",
    "current_traffic",
    "deploy_verified",
    "migrate_recorded",
    "promote",
    "resources",
    "rollback",
    "secret_put",
    "status",
    "tail",
    "verify_service",
]


class LifecycleError(DomeError):
    """A lifecycle operation cannot proceed (no canary to promote, nothing to roll back to …)."""

    exit_code = 1


def _in_background(func: Callable[..., Any], *args: Any) -> Future[Any]:
    """Run ``func(*args)`` on a daemon thread; its result (or exception) arrives in the future."""
    future: Future[Any] = Future()

    def work() -> None:
        try:
            future.set_result(func(*args))
        except BaseException as error:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(error)

    threading.Thread(target=work, name="dome-git-facts", daemon=True).start()
    return future


def _setting(c: Context | None, key: str, env_var: str) -> str | None:
    """``dome.<key>`` from invoke config, else the ``env_var`` environment variable."""
    value = None
    if c is not None:
        dome = c.config.get("dome", {}) or {}
        value = dome.get(key)
    return str(value) if value else os.environ.get(env_var) or None


@dataclass
class Session:
    """What one lifecycle command needs; build it with :meth:`open`."""

    c: Context
    manifest: Manifest
    wrangler: str
    ledger: Ledger
    log: EventLog
    redactor: Redactor
    policy: VerifyPolicy = field(default_factory=VerifyPolicy)
    subdomain: str | None = None
    base_url: str | None = None
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    base_env: Mapping[str, str] | None = None
    _git: GitFacts | Future[GitFacts] | None = None

    @classmethod
    def open(
        cls,
        c: Context,
        manifest: Manifest | None = None,
        *,
        dry_run: bool = False,
        log_format: str | None = None,
        subdomain: str | None = None,
        base_url: str | None = None,
        deadline: float | None = None,
        log_stream: TextIO | None = None,
    ) -> Session:
        """Read settings (CLI beats ``dome:`` config beats environment beats default)."""
        from dome_tasks.cli.common import Settings, load_manifest
        from dome_tasks.wrangler import find_wrangler

        settings = Settings.from_context(c)
        manifest = manifest or load_manifest(c)
        wrangler = find_wrangler(manifest.root, dry_run=dry_run)
        redactor = Redactor.from_environ()
        fmt = log_format or _setting(c, "log_format", "DOME_LOG_FORMAT") or settings.log_format
        policy = VerifyPolicy()
        deadline_setting = deadline or _setting(c, "verify_deadline", "DOME_VERIFY_DEADLINE")
        if deadline_setting:
            policy = replace(policy, deadline_s=float(deadline_setting))
        return cls(
            c=c,
            manifest=manifest,
            wrangler=wrangler,
            ledger=Ledger(settings.ledger or manifest.root / ".dome" / "ledger.jsonl"),
            log=EventLog(log_stream, fmt, redactor=redactor),
            redactor=redactor,
            policy=policy,
            subdomain=subdomain or _setting(c, "workers_subdomain", "DOME_WORKERS_SUBDOMAIN"),
            base_url=base_url or _setting(c, "health_base_url", "DOME_HEALTH_BASE_URL"),
            dry_run=dry_run,
            # Ledger records need the git facts: read them while wrangler runs, not after it.
            _git=None if dry_run else _in_background(git_facts, manifest.root),
        )

    # --- plumbing ---------------------------------------------------------------------------

    @property
    def git(self) -> GitFacts:
        if self._git is None:
            self._git = git_facts(self.manifest.root)
        elif isinstance(self._git, Future):
            self._git = self._git.result()
        return self._git

    def config(self, service: str, environment: str) -> WorkerConfig:
        return self.manifest.resolve(service, self.manifest.environment(environment).name)

    def target(self, service: str, environment: str) -> Target:
        """Render the service's config for ``environment`` (written unless dry) and address it."""
        from dome_tasks.plan import render

        env = self.manifest.environment(environment)
        if env.is_local:
            raise UsageError(
                f"{env.name} runs under `wrangler dev`: versions, rollbacks and canaries need a "
                "remote environment",
                hint="use development, staging or production",
            )
        rendered = render(self.manifest, service, env.name)
        self.run([Step("render", f"render {rendered.config.name} -> {rendered.path}",
                       WriteFile(rendered.path, rendered.text), service, env.name)], quiet=True)
        return Target(service, env.name, rendered.config.name, rendered.path, self.wrangler)

    def run(self, steps: Sequence[Step], *, quiet: bool = False) -> list[StepResult]:
        """Execute through the runner; every step emits one event (dry runs only print)."""
        from dome_tasks.runner import Runner

        runner = Runner(
            self.c,
            dry_run=self.dry_run,
            out=open(os.devnull, "w") if quiet else self.out,  # noqa: SIM115
            command_runner=WranglerExec(
                self.manifest.root / ".dome" / "wrangler", self.base_env, self.redactor
            ),
        )
        results: list[StepResult] = []
        try:
            for step in steps:
                if self.dry_run or step.event == "render":
                    results.append(runner.run_step(step))
                    continue
                with self.log.span(step.event, service=step.service,
                                   environment=step.environment) as span:
                    result = runner.run_step(step)
                    version = getattr(result.value, "version_id", None)
                    if version:
                        span.fields["version_id"] = version
                results.append(result)
        finally:
            if quiet:
                runner.out.close()
        return results

    def record(self, kind: str, target: Target, outcome: str, **fields: Any) -> Record | None:
        """Append one ledger record (not in dry runs), with git facts and the actor."""
        if self.dry_run:
            return None
        git = self.git
        fields.setdefault("commit", git.commit)
        fields.setdefault("commit_time", git.commit_time)
        fields.setdefault("dirty", git.dirty)
        record = Record(
            kind=kind,
            service=target.service,
            environment=target.environment,
            outcome=outcome,
            worker=target.worker,
            actor=actor(),
            **fields,
        )
        return self.ledger.append(_redacted(record, self.redactor))

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)


def _redacted(record: Record, redactor: Redactor) -> Record:
    if not redactor:
        return record
    data = json.loads(redactor.text(record.to_json()))
    return Record.from_dict(data)


def _ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


# --- state: what is live now --------------------------------------------------------------


def current_traffic(session: Session, target: Target) -> list[tuple[str, float]]:
    """``[(version_id, percent), …]`` of the live deployment, via ``wrangler deployments status``."""
    (result,) = session.run([status_step(target)])
    text = result.stdout.strip()
    try:
        data = json.loads(text[text.index("{"):]) if "{" in text else {}
    except ValueError as error:
        raise LifecycleError(f"cannot read `wrangler deployments status --json`: {error}") from error
    versions = data.get("versions") or []
    return [(v["version_id"], float(v.get("percentage", 0))) for v in versions]


def status(session: Session, service: str, environment: str) -> dict[str, Any]:
    """The live traffic split, annotated with what the ledger knows about each version."""
    target = session.target(service, environment)
    if session.dry_run:
        session.run([status_step(target)])
        return {}
    traffic = current_traffic(session, target)
    records = session.ledger.records(service, target.environment)
    canary_record = open_canary(records, service, target.environment)
    known: dict[str, Record] = {r.version_id: r for r in records if r.version_id}
    versions = []
    for version_id, percent in traffic:
        last = known.get(version_id)
        role = None
        if canary_record is not None:
            role = "canary" if version_id == canary_record.version_id else "stable"
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
    return {"worker": target.worker, "environment": target.environment, "versions": versions}


# --- verification -------------------------------------------------------------------------


def _learned_subdomain(session: Session, worker: str) -> str | None:
    """The workers.dev subdomain seen in an earlier deploy's targets for this worker."""
    for record in reversed(session.ledger.read().records):
        for url in record.extra.get("targets", ()) if record.worker == worker else ():
            host = url.split("://", 1)[-1].split("/", 1)[0]
            prefix = worker + "."
            if host.startswith(prefix) and host.endswith(".workers.dev"):
                return host[len(prefix) : -len(".workers.dev")]
    return None


def verify_service(
    session: Session,
    service: str,
    environment: str,
    *,
    targets: Sequence[str] = (),
    smoke: bool = True,
    required: bool = True,
) -> VerifyResult | None:
    """Health check (+ smoke commands) of one service; ``None`` when no URL is known and
    ``required`` is False (post-deploy checks then warn instead of failing)."""
    config = session.config(service, environment)
    subdomain = session.subdomain
    for url in targets:
        host = url.split("://", 1)[-1].split("/", 1)[0]
        if host.startswith(config.name + ".") and host.endswith(".workers.dev"):
            subdomain = subdomain or host[len(config.name) + 1 : -len(".workers.dev")]
    subdomain = subdomain or _learned_subdomain(session, config.name)
    try:
        target = health_target(config, subdomain=subdomain, base_url=session.base_url)
    except VerifyError:
        if required:
            raise
        session.log.emit("verify", service=service, environment=config.environment,
                         outcome="skipped", reason="no health URL (set health_url or --subdomain)")
        return None
    if session.dry_run:
        session.say(f"→ verify {config.name}: GET {target.public_url} must answer 200")
        return None
    with session.log.span("verify", service=service, environment=config.environment,
                          url=target.public_url) as span:
        result = verify(config, subdomain=subdomain, base_url=session.base_url,
                        policy=session.policy, smoke=smoke)
        span.outcome = "success" if result.ok else "unhealthy"
        span.fields["checks"] = result.summary()
    mark = "healthy" if result.ok else "UNHEALTHY"
    session.say(f"verify {config.name}: {mark}: {result.summary()}")
    return result


# --- deploy + verify + automatic rollback ---------------------------------------------------


def deploy_verified(
    session: Session,
    services: Sequence[str],
    environment: str,
    *,
    build: bool = True,
    verify_after: bool = True,
    rollback_on_failure: bool | None = None,
    tools: Any = None,
) -> list[Record]:
    """Deploy ``services`` in dependency order; verify each; on red, roll back and stop.

    ``rollback_on_failure=None`` means: on for protected environments, off otherwise. Returns
    the ledger records written. Raises :class:`LifecycleError` after a failed verification
    (after the rollback, when one ran) and :class:`WranglerFailed` when wrangler failed.
    """
    from dome_tasks.plan import deploy_plan

    env = session.manifest.environment(environment)
    auto_rollback = env.protected if rollback_on_failure is None else rollback_on_failure
    ordered = session.manifest.deploy_order(services)
    tools = tools or _tools(session)  # a plan.Tools; pass the task's discover_tools() result
    if session.dry_run:
        for service in ordered:
            session.run(deploy_plan(session.manifest, [service], env.name, tools, build=build))
            if verify_after:
                verify_service(session, service, env.name, required=False)
        return []
    written: list[Record] = []
    for service in ordered:
        steps = deploy_plan(session.manifest, [service], env.name, tools, build=build)
        config = session.config(service, env.name)
        target = Target(service, env.name, config.name, _config_path(steps), session.wrangler)
        started = time.monotonic()
        try:
            results = session.run(steps)
        except CommandFailed as error:  # wrangler, or the build before it
            rec = session.record("deploy", target, "failure", duration_ms=_ms(started),
                                 reason=_first_line(str(error)))
            written += [rec] if rec else []
            raise
        output = next((r.value for r in reversed(results) if getattr(r.value, "deploy", None)), None)
        version = output.version_id if output is not None else None
        targets = list(output.deploy.targets) if output is not None and output.deploy else []
        result = (
            verify_service(session, service, env.name, targets=targets, required=False)
            if verify_after
            else None
        )
        healthy = result is None or result.ok
        rec = session.record(
            "deploy", target, "success" if healthy else "unhealthy",
            version_id=version, verified=None if result is None else result.ok,
            duration_ms=_ms(started), extra={"targets": targets} if targets else {},
            reason=None if healthy else result.summary(),
        )
        written += [rec] if rec else []
        if healthy:
            continue
        message = f"{config.name} failed verification after deploy: {result.summary()}"
        if not auto_rollback:
            raise LifecycleError(message, hint=f"roll back with `invoke rollback {service} {env.name}`"
                                 " or pass --rollback-on-failure")
        session.say(f"verification failed: rolling back {config.name} automatically")
        back = rollback(session, service, env.name, exclude=(version,) if version else (),
                        reason=f"automatic: verification of {version} failed", automatic=True,
                        from_version=version, target=target)
        written += [back] if back else []
        raise LifecycleError(
            message + f"; rolled back to {back.to_version if back else 'the previous version'}",
            hint="fix the service and deploy again; `invoke history` shows both records",
        )
    return written


def _tools(session: Session) -> Any:
    from dome_tasks.plan import Tools

    try:
        from dome_tasks.wrangler import find_just

        just = find_just()
    except DomeError:
        just = None
    recipes: frozenset[str] = frozenset()
    if just:
        import subprocess

        listing = subprocess.run([just, "--summary"], cwd=session.manifest.root,
                                 capture_output=True, text=True, check=False)
        recipes = frozenset(listing.stdout.split()) if listing.returncode == 0 else frozenset()
    return Tools(wrangler=session.wrangler, just=just, just_recipes=recipes)


def _config_path(steps: Sequence[Step]) -> Path:
    for step in steps:
        if isinstance(step.action, WriteFile):
            return step.action.path
    raise LifecycleError("the deploy plan renders no config")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# --- rollback ---------------------------------------------------------------------------------


def rollback(
    session: Session,
    service: str,
    environment: str,
    version: str | None = None,
    *,
    reason: str = "manual rollback",
    automatic: bool = False,
    exclude: Sequence[str] = (),
    from_version: str | None = None,
    target: Target | None = None,
    verify_after: bool = True,
) -> Record | None:
    """Roll back to ``version``, else to the last version the ledger saw healthy, else to
    wrangler's previous deployment. Verifies afterwards; records the rollback."""
    target = target or session.target(service, environment)
    records = session.ledger.records(service, target.environment)
    if session.dry_run:
        chosen = version or last_healthy_version(records, service, target.environment) or None
        session.run(rollback_steps(target, chosen, message=reason))
        return None
    if from_version is None:
        live = current_traffic(session, target)
        from_version = max(live, key=lambda item: item[1])[0] if live else None
    skip = set(exclude) | ({from_version} if from_version else set())
    chosen = version or last_healthy_version(records, service, target.environment, exclude=skip)
    if chosen is None:
        session.say("the ledger knows no healthy earlier version: wrangler picks the previous deployment")
    started = time.monotonic()
    try:
        session.run(rollback_steps(target, chosen, message=reason))
    except WranglerFailed as error:
        session.record("rollback", target, "failure", from_version=from_version, to_version=chosen,
                       reason=reason, automatic=automatic, duration_ms=_ms(started),
                       extra={"error": _first_line(str(error))})
        raise
    if chosen is None:
        live = current_traffic(session, target)
        chosen = max(live, key=lambda item: item[1])[0] if live else None
    result = verify_service(session, service, target.environment, required=False) if verify_after else None
    healthy = result is None or result.ok
    record = session.record(
        "rollback", target, "success" if healthy else "unhealthy", version_id=chosen,
        from_version=from_version, to_version=chosen, reason=reason, automatic=automatic,
        verified=None if result is None else result.ok, duration_ms=_ms(started),
    )
    session.say(f"rolled {target.worker} back from {from_version or '?'} to {chosen or '?'}")
    if not healthy:
        raise LifecycleError(f"{target.worker} is still unhealthy after the rollback: {result.summary()}")
    return record


# --- canary / promote / abort ---------------------------------------------------------------


def canary(
    session: Session,
    service: str,
    environment: str,
    percent: int,
    *,
    message: str | None = None,
    tag: str | None = None,
) -> Record | None:
    """Start a canary (upload a version, give it ``percent``%) or move a running one to ``percent``%."""
    canary_steps(Target(service, environment, "", Path("x")), percent)  # validate early
    target = session.target(service, environment)
    if session.dry_run:
        session.run(canary_steps(target, percent, message=message, tag=tag))
        return None
    records = session.ledger.records(service, target.environment)
    running = open_canary(records, service, target.environment)
    live = dict(current_traffic(session, target))
    started = time.monotonic()
    text = message or f"dome canary {percent}%"
    if running is not None and set(live) == {running.version_id, running.from_version}:
        new, old = running.version_id, running.from_version
        steps = canary_steps(target, percent, old=old, new=new, message=text, upload=False)
        commit = {"commit": running.commit, "commit_time": running.commit_time, "dirty": running.dirty}
    else:
        if not live:
            raise LifecycleError(f"{target.worker} has no deployment yet: nothing to canary against",
                                 hint=f"deploy it first: `invoke deploy-env {service} {target.environment}`")
        if len(live) != 1:
            raise LifecycleError(
                f"{target.worker} already splits traffic ({_split_text(live)}) and the ledger has no "
                "canary for it",
                hint=f"settle it first: `invoke rollback {service} {target.environment} VERSION`",
            )
        (old,) = live
        upload, _ = canary_steps(target, percent, old=old, message=text, tag=tag)
        try:
            (uploaded,) = session.run([upload])
        except WranglerFailed:
            session.record("canary", target, "failure", from_version=old, percent=percent,
                           duration_ms=_ms(started), reason="versions upload failed")
            raise
        new = uploaded.value.version_id if uploaded.value is not None else None
        if not new:
            raise LifecycleError("`wrangler versions upload` reported no version id")
        steps = canary_steps(target, percent, old=old, new=new, message=text, upload=False)
        commit = {}
    try:
        session.run(steps)
    except WranglerFailed:
        session.record("canary", target, "failure", version_id=new, from_version=old,
                       percent=percent, duration_ms=_ms(started), **commit)
        raise
    record = session.record("canary", target, "success", version_id=new, from_version=old,
                            percent=percent, duration_ms=_ms(started), **commit)
    session.say(f"canary {target.worker}: {percent}% to {new}, {100 - percent}% to {old}")
    return record


def _split_text(live: Mapping[str, float]) -> str:
    return ", ".join(f"{v[:8]}@{p:g}%" for v, p in live.items())


def _running_canary(session: Session, target: Target) -> Record:
    running = open_canary(session.ledger.records(target.service, target.environment),
                          target.service, target.environment)
    if running is None or not running.version_id or not running.from_version:
        raise LifecycleError(
            f"no canary in progress for {target.worker} (according to the ledger)",
            hint=f"start one with `invoke canary {target.service} {target.environment} --percent 10`",
        )
    return running


def promote(session: Session, service: str, environment: str, *, verify_after: bool = True) -> Record | None:
    """The running canary's version takes 100% of the traffic; verified, else aborted."""
    target = session.target(service, environment)
    if session.dry_run:
        session.run(promote_steps(target, NEW))
        return None
    running = _running_canary(session, target)
    started = time.monotonic()
    commit = {"commit": running.commit, "commit_time": running.commit_time, "dirty": running.dirty}
    try:
        session.run(promote_steps(target, running.version_id))
    except WranglerFailed:
        session.record("promote", target, "failure", version_id=running.version_id,
                       from_version=running.from_version, duration_ms=_ms(started), **commit)
        raise
    result = verify_service(session, service, target.environment, required=False) if verify_after else None
    healthy = result is None or result.ok
    record = session.record(
        "promote", target, "success" if healthy else "unhealthy", version_id=running.version_id,
        from_version=running.from_version, to_version=running.version_id, percent=100,
        verified=None if result is None else result.ok, duration_ms=_ms(started), **commit,
    )
    if healthy:
        session.say(f"promoted {running.version_id} to 100% of {target.worker}")
        return record
    session.say("verification failed after promote: returning traffic to the old version")
    _abort(session, target, new=running.version_id, old=running.from_version,
           reason="automatic: verification after promote failed", automatic=True)
    raise LifecycleError(f"{target.worker} failed verification after promote: {result.summary()}")


def abort(session: Session, service: str, environment: str) -> Record | None:
    """The running canary ends: the old version takes 100% of the traffic back."""
    target = session.target(service, environment)
    if session.dry_run:
        session.run(abort_steps(target, OLD))
        return None
    running = _running_canary(session, target)
    return _abort(session, target, new=running.version_id, old=running.from_version,
                  reason="canary aborted", automatic=False)


def _abort(session: Session, target: Target, *, new: str, old: str, reason: str,
           automatic: bool) -> Record | None:
    started = time.monotonic()
    try:
        session.run(abort_steps(target, old))
    except WranglerFailed:
        session.record("abort", target, "failure", version_id=old, from_version=new, to_version=old,
                       reason=reason, automatic=automatic, duration_ms=_ms(started))
        raise
    record = session.record("abort", target, "success", version_id=old, from_version=new,
                            to_version=old, reason=reason, automatic=automatic,
                            duration_ms=_ms(started))
    session.say(f"aborted: {old} serves 100% of {target.worker} again")
    return record


# --- migrations -----------------------------------------------------------------------------


def migrate_recorded(session: Session, steps: Sequence[Step]) -> list[Record]:
    """Run a migration plan (``plan.migrate_plan``) and append one ``migrate`` record per
    ``migrate`` step (database name in ``extra``); stops at the first failure, recorded too."""
    written: list[Record] = []
    for step in steps:
        if step.event != "migrate" or session.dry_run:
            session.run([step])
            continue
        config = session.config(step.service or "", step.environment or "")
        target = Target(config.service, config.environment, config.name, Path(), session.wrangler)
        argv = list(step.action.argv)
        database = argv[argv.index("apply") + 1] if "apply" in argv[:-1] else None
        started = time.monotonic()
        try:
            session.run([step])
        except WranglerFailed as error:
            session.record("migrate", target, "failure", duration_ms=_ms(started),
                           reason=_first_line(str(error)), extra={"database": database})
            raise
        rec = session.record("migrate", target, "success", duration_ms=_ms(started),
                             extra={"database": database})
        written += [rec] if rec else []
    return written


# --- operations ---------------------------------------------------------------------------


def secret_put(session: Session, name: str, service: str, environment: str, value: str) -> None:
    """``wrangler secret put NAME`` with the value on stdin; the value is registered for redaction."""
    if not value:
        raise UsageError("refusing to set an empty secret", hint="pipe the value on stdin or type it")
    session.redactor.add(value)
    target = session.target(service, environment)
    session.run([secret_put_step(target, name, value)])
    if not session.dry_run:
        session.say(f"secret {name} set on {target.worker}")


def tail(session: Session, service: str, environment: str) -> None:
    """``wrangler tail --format pretty`` until interrupted."""
    session.run([tail_step(session.target(service, environment))])


def resources(session: Session, environment: str) -> list[str]:
    """List D1, R2 and Vectorize resources of the environment's account; returns failed kinds."""
    env = session.manifest.environment(environment)
    steps = resources_steps(session.wrangler, env.name, account_id=env.account_id,
                            cwd=session.manifest.root)
    failed: list[str] = []
    for step in steps:
        try:
            session.run([step])
        except WranglerFailed as error:
            failed.append(step.action.argv[1])
            print(f"  ({error.message})", file=sys.stderr)
    return failed
