"""The run context of one lifecycle task, and its act phase.

A :class:`Session` is built once per task from the validated settings. It does the two things
operations may not do themselves: *observe* (quiet, read-only wrangler calls and ledger reads)
and *act* (:meth:`Session.execute` runs a decided :class:`~dome_tasks.plan.steps.Plan` through
the one :class:`~dome_tasks.runner.Runner`). While a plan runs, :class:`Facts` collects what its
steps learn (the version wrangler uploaded, the URLs it reports, the verification), fills the
plan's placeholders from them, and :meth:`Session.record` writes the ledger: the one seam for
locks, shared history and reconciliation.

* **History**: ``Session.ledger`` is always a :class:`~dome_tasks.lifecycle.history.History`,
  the one policy over the record stores: the account's D1 cached in the local ledger, or the
  local ledger alone (``dome.history: false``, dry runs); a rehearsal swaps in the emulator's.
* **Locks**: :meth:`Session.locked` holds the deploy lock of (environment, worker), or the
  environment's migration lock, around an operation's observe and act phases: on this machine
  (whatever the checkout), then in the account (a row in its ``dome-state`` D1).
* **Reconciliation**: right after a step that changes what serves (deploy, rollback, canary,
  promote, abort) the session reads the live deployment from the API and records *that*; a
  failed command whose change went live anyway is recorded as live, with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks._background import in_background
from dome_tasks.errors import CommandFailed, DomeError, Interrupted
from dome_tasks.events import EventLog, Redactor
from dome_tasks.lifecycle.ledger import GitFacts, LedgerRecord, actor, git_facts
from dome_tasks.lifecycle.reconcile import (
    TRAFFIC_EVENTS,
    Landing,
    Reconciled,
    Reconciler,
    expected_after,
    reconciler_for,
    settle_in,
)
from dome_tasks.lifecycle.verify import (
    VerifyError,
    VerifyPolicy,
    VerifyResult,
    health_target,
    verify,
)
from dome_tasks.plan.rollout import LIVE, NEW, OLD
from dome_tasks.process import interruptible, stop_requested
from dome_tasks.plan.steps import Command, Plan, Step, Verify, WriteFile, WriteRecord
from dome_tasks.wrangler.exec import CommandTimedOut, WranglerExec, WranglerFailed

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.lifecycle.account_lock import AccountLocks
    from dome_tasks.lifecycle.account_store import AccountStore
    from dome_tasks.lifecycle.history import History
    from dome_tasks.lifecycle.lock import Locks
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.plan.target import ResolvedRequest, Target
    from dome_tasks.progress import Board
    from dome_tasks.runner import Runner, StepResult
    from dome_tasks.settings import Settings
    from dome_tasks.wrangler.early import EarlyRun

__all__ = ["Facts", "LifecycleError", "Session", "parse_status", "subdomain_in"]

#: Steps that emit no event of their own through the generic span (render and record are
#: bookkeeping; verification emits a richer one itself).
_UNLOGGED = frozenset({"render", "record", "verify"})
_PLACEHOLDERS = frozenset({NEW, OLD, LIVE})  # left unfilled: the record leaves the field out


class LifecycleError(DomeError):
    """A lifecycle operation cannot proceed (no canary to promote, nothing to roll back to …)."""

    exit_code = 1


@dataclass
class Facts:
    """What a plan's steps learned while they ran."""

    started: float = field(default_factory=time.monotonic)
    new_version: str | None = None  # the version wrangler deployed or uploaded
    live_version: str | None = None  # the version serving most traffic, after a status read
    targets: tuple[str, ...] = ()  # URLs wrangler's deploy reported
    verification: VerifyResult | None = None
    error: BaseException | None = None
    records: list[LedgerRecord] = field(default_factory=list)
    reconciled: Reconciled | None = None  # what the API said serves after the change
    landed: CommandFailed | None = None  # wrangler failed, but its change went live anyway
    activated: str | None = None  # its activation failed; dome activated the upload (why)
    uploaded: str | None = None  # a version uploaded whose activation failed (not serving)
    unknown: str | None = None  # that activation got no answer: it may still land (why)
    in_flight: str | None = None  # the version whose activation may still land (to settle)
    digest: str | None = None  # of the inputs, summed up after the build (the deploy record's)
    replaced: str | None = None  # the version serving before the change (a secret record's from)

    @property
    def healthy(self) -> bool:
        """No verification ran, or it passed."""
        return self.verification is None or self.verification.ok

    def learn(self, result: StepResult) -> None:
        output = result.value
        version = getattr(output, "version_id", None)
        if version:
            self.new_version = version
        deploy = getattr(output, "deploy", None)
        if deploy is not None and deploy.targets:
            self.targets = tuple(deploy.targets)
        if result.step.event == "digest" and isinstance(result.value, str):
            self.digest = result.value
        if result.step.event == "status" and result.stdout:
            live = parse_status(result.stdout)
            self.live_version = max(live, key=lambda item: item[1])[0] if live else None

    def bind(self, text: str, *, short: bool = False) -> str:
        """*text* with the placeholders this plan has learned filled in."""
        for placeholder, value in ((NEW, self.new_version), (LIVE, self.live_version)):
            if value and placeholder in text:
                text = text.replace(placeholder, value[:8] if short else value)
        return text


def parse_status(stdout: str) -> list[tuple[str, float]]:
    """``[(version_id, percent), …]`` from ``wrangler deployments status --json``."""
    text = stdout.strip()
    try:
        data = json.loads(text[text.index("{") :]) if "{" in text else {}
    except ValueError as error:
        raise LifecycleError(
            f"cannot read `wrangler deployments status --json`: {error}"
        ) from error
    return [(v["version_id"], float(v.get("percentage", 0))) for v in data.get("versions") or []]


def subdomain_in(urls: Sequence[str], worker: str) -> str | None:
    """The workers.dev subdomain in ``https://<worker>.<subdomain>.workers.dev`` URLs."""
    for url in urls:
        host = url.split("://", 1)[-1].split("/", 1)[0]
        if host.startswith(worker + ".") and host.endswith(".workers.dev"):
            return host[len(worker) + 1 : -len(".workers.dev")] or None
    return None


def _stores(manifest: Manifest) -> dict[str, AccountStore | None]:
    """The account stores of *manifest*'s environments, for the locks (the history is off)."""
    from dome_tasks.cloudflare.credentials import find_credentials, wrangler_near
    from dome_tasks.lifecycle.account_store import known_path, stores_for

    credentials = find_credentials(os.environ, wrangler=wrangler_near(manifest.root))
    known = known_path(manifest.root / ".dome")
    return stores_for(manifest, os.environ, credentials, known=known)[0]


@dataclass
class Session:
    """What one lifecycle task needs; build it once with :meth:`open`."""

    c: Context
    root: Path
    ledger: History
    log: EventLog
    redactor: Redactor
    policy: VerifyPolicy = field(default_factory=VerifyPolicy)
    subdomain: str | None = None
    base_url: str | None = None
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    base_env: Mapping[str, str] | None = None
    executed: list[Step] = field(default_factory=list)  # every plan step run (or shown), bound
    manifest: Manifest | None = None  # its environments' accounts: the history and live reads
    locks: Locks | None = None  # one deploy per (environment, worker); None: no locking
    stores: Mapping[str, AccountStore | None] = field(default_factory=dict)  # by environment
    command_timeout: float | None = None  # seconds one wrangler run may take
    board: Board | None = None  # the progress display of a multi-service run
    captured: bool = False  # commands' own output goes to ``out`` too (one lane of a wave)
    _git: GitFacts | Future[GitFacts] | None = None
    _reconcilers: dict[str, Reconciler] = field(default_factory=dict, repr=False)
    # worker -> (what served it, its versions), read once its account lock is held, which is
    # taken in the background (see :meth:`holding`)
    _early: dict[str, Future[Any]] = field(default_factory=dict, repr=False)
    _early_used: set[str] = field(default_factory=set, repr=False)  # its reads taken by a plan
    # worker -> its ``wrangler deploy``, started before the plan runs (see :meth:`start_early`)
    _started: dict[str, EarlyRun] = field(default_factory=dict, repr=False)

    _account_locks: dict[int, AccountLocks] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls,
        c: Context,
        settings: Settings,
        root: Path,
        *,
        dry_run: bool = False,
        log_stream: TextIO | None = None,
        manifest: Manifest | None = None,
    ) -> Session:
        """The session of one task, from its settings and manifest (each read once by the task;
        without *manifest* it is loaded from the settings)."""
        from dome_tasks.lifecycle.history import History
        from dome_tasks.lifecycle.lock import Locks, machine_lock_dir
        from dome_tasks.settings import load_manifest

        manifest = manifest or load_manifest(settings)
        redactor = Redactor.from_environ()
        shared = settings.shared_history and not dry_run
        history = History.open(manifest, settings.ledger_path(root), shared=shared)
        # the history's account stores hold the locks too
        stores = history.stores if shared else {} if dry_run else _stores(manifest)
        return cls(
            c=c,
            root=root,
            ledger=history,
            stores=stores,
            log=EventLog(log_stream, settings.log_format, redactor=redactor),
            redactor=redactor,
            policy=VerifyPolicy(deadline_s=settings.verify_deadline),
            subdomain=settings.workers_subdomain,
            base_url=settings.health_base_url,
            dry_run=dry_run,
            manifest=manifest,
            locks=None
            if dry_run
            else Locks(
                machine_lock_dir(),
                wait=not settings.no_wait,
                timeout=settings.lock_timeout,
            ),
            command_timeout=settings.command_timeout,
            # Ledger records need the git facts: read them while wrangler runs, not after it.
            _git=None if dry_run else in_background(git_facts, root, name="dome-git-facts"),
        )

    @property
    def git(self) -> GitFacts:
        if self._git is None:
            self._git = git_facts(self.root)
        elif isinstance(self._git, Future):
            self._git = self._git.result()
        return self._git

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def use_emulator(self, environ: Mapping[str, str]) -> None:
        """Point wrangler, the live reads and the history at a throwaway emulator (a rehearsal):
        nothing is written to the real history, and no lock is needed."""
        from dome_tasks.lifecycle.history import History

        self.base_env = environ
        self._reconcilers.clear()
        self._early.clear()
        self.locks = None
        self.stores = {}
        if self.manifest is not None:
            self.ledger = History.for_rehearsal(self.manifest, environ)

    @contextlib.contextmanager
    def locked(self, environment: str, service: str | None = None) -> Iterator[None]:
        """Hold the deploy lock of (environment, the service's worker), or with no service the
        environment's migration lock, for the ``with`` block: this machine's, then the
        account's (re-entrant; nothing in dry runs or rehearsals)."""
        from dome_tasks.lifecycle.lock import deploy_scope, machine_scope, migration_scope

        if self.locks is None or self.dry_run:
            yield
            return
        worker = self._worker(environment, service) if service else "migrations"
        what = f"{environment}/{worker}"
        scope = deploy_scope(environment, worker) if service else migration_scope(environment)
        store = self.stores.get(environment)
        account, api = self._account_of(environment)
        with contextlib.ExitStack() as held:
            held.enter_context(self.locks.hold(machine_scope(scope, account=account, api=api),
                                               what=what))
            early = self._early.get(worker) if service else None
            if store is not None and early is None:  # held early: taken in the background
                held.enter_context(self._account_lock(store).hold(what, what=what))
            yield

    @contextlib.contextmanager
    def holding(self, target: Target) -> Iterator[None]:
        """Hold *target*'s deploy lock for the block: this machine's at once; the account's in
        the background, followed at once by the reads of what serves the worker and of its
        versions, beside the task's other reads and beside wrangler's start (its deploy waits
        at its network gate until they are done, see :meth:`_Watch.gate`). When the lock cannot
        be had, the first step that needs it raises why (wrangler leaves, having sent nothing)."""
        from dome_tasks.lifecycle.lock import deploy_scope, machine_scope

        if self.dry_run or self.locks is None:
            yield
            return
        environment, worker = target.environment, target.worker
        what = f"{environment}/{worker}"
        account, api = self._account_of(environment)
        machine = machine_scope(deploy_scope(environment, worker), account=account, api=api)
        cancel, locked = threading.Event(), threading.Event()
        with self.locks.hold(machine, what=what), contextlib.ExitStack() as held:
            ready = in_background(self._take_early, environment, worker, held, cancel, locked,
                                  name="dome-account-lock")
            self._early[worker] = ready
            try:
                yield
            finally:
                started = self._started.pop(worker, None)
                if started is not None:  # never adopted: it leaves having sent nothing
                    started.cancel()
                self._early.pop(worker, None)
                self._early_used.discard(worker)
                cancel.set()  # a wait for a busy lock ends; a lock taken is released below
                with contextlib.suppress(BaseException):
                    locked.wait()  # not its reads: they change nothing (a Ctrl-C leaves at once)

    def _take_early(self, environment: str, worker: str, held: contextlib.ExitStack,
                    cancel: threading.Event, locked: threading.Event,
                    ) -> tuple[Any, tuple[str, ...] | None]:
        """Take the account lock of (environment, worker) into *held* (*locked* is set once it
        is held or given up), then read what serves the worker and its versions (side by
        side): what a deploy's record compares with."""
        store = self.stores.get(environment)
        what = f"{environment}/{worker}"
        try:
            if store is not None:
                held.enter_context(self._account_lock(store).hold(what, what=what, cancel=cancel))
        finally:
            locked.set()  # held, or given up: the holding may end
        reconciler = self.reconciler(environment)
        versions = in_background(reconciler.versions, worker, name="dome-versions")
        return reconciler.live(worker), versions.result()

    def start_early(self, target: Target, step: Step) -> None:
        """Start *step* (*target*'s ``wrangler deploy``, its config rendered first) now, behind
        its gate: it reaches the API once the lock taken early is held and the plan runs the
        step (:class:`~dome_tasks.wrangler.early.EarlyRun`). Only under :meth:`holding`; a
        run the plan does not take is cancelled when the holding ends."""
        early = self._early.get(target.worker)
        command = step.action
        if early is None or self.dry_run or not (isinstance(command, Command)
                                                 and command.wrangler):
            return
        self.prepare(target)
        wrangler = self._runner(Facts(), quiet=True).command_runner
        assert isinstance(wrangler, WranglerExec)
        self._started[target.worker] = wrangler.start_early(step, command, early)

    def wait_held(self) -> None:
        """Wait until the locks taken early are held (raises why one cannot be had)."""
        for ready in list(self._early.values()):
            ready.result()

    def _worker(self, environment: str, service: str) -> str:
        if self.manifest is None or service not in self.manifest.services:
            return service
        return self.manifest.resolve(service, environment).name

    def _account_of(self, environment: str) -> tuple[str | None, str]:
        """(account id, API base URL) of *environment*: what makes its worker names unique."""
        from dome_tasks.cloudflare.api import DEFAULT_BASE_URL

        environ = os.environ if self.base_env is None else self.base_env
        env = self.manifest.environments.get(environment) if self.manifest else None
        account = (env.account_id if env else None) or environ.get("CLOUDFLARE_ACCOUNT_ID")
        return account, (environ.get("CLOUDFLARE_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")

    def _account_lock(self, store: AccountStore) -> AccountLocks:
        from dome_tasks.lifecycle.account_lock import AccountLocks

        assert self.locks is not None
        if id(store) not in self._account_locks:
            self._account_locks[id(store)] = AccountLocks(
                store, wait=self.locks.wait, timeout=self.locks.timeout, out=self.locks.out)
        return self._account_locks[id(store)]

    def reconciler(self, environment: str) -> Reconciler:
        """Reads what serves in *environment*'s account, straight from the API (no API access:
        wrangler's own report is taken)."""
        if environment not in self._reconcilers:
            environ = os.environ if self.base_env is None else self.base_env
            self._reconcilers[environment] = reconciler_for(self.manifest, environment, environ,
                                                            self.root)
        return self._reconcilers[environment]

    def settled(self, records: Sequence[LedgerRecord]) -> list[LedgerRecord]:
        """*records* plus the records that settle their ``unknown`` changes with what serves now
        (written to the history; none in a dry run)."""
        if self.dry_run:
            return list(records)
        added = settle_in(self.ledger, records, self.reconciler)
        for record in added:
            self.say(f"history: {record.worker}: {record.reason}")
        return [*records, *added]
    def lane(self, out: TextIO) -> Session:
        """This session printing everything (step lines, commands' output, text log lines) to
        *out*: one service's block of a concurrent wave. Ledger, events and board are shared."""
        if out is self.out:
            return self
        return dataclasses.replace(self, out=out, log=self.log.routed(out), captured=True)

    # --- observe ------------------------------------------------------------------------------

    def prepare(self, target: Target) -> None:
        """Write the target's rendered config (wrangler reads it), quietly; not in dry runs."""
        if not self.dry_run:
            step = Step(
                "render",
                f"render {target.worker}",
                WriteFile(target.path, target.text, target.config.service_dir),
                target.service,
                target.environment,
            )
            self._runner(Facts(), quiet=True).run_step(step)

    def observe(self, step: Step) -> StepResult:
        """Run one read-only step quietly (its event is still logged); never in dry runs."""
        return self._run_step(self._runner(Facts(), quiet=True), step)

    # --- act ----------------------------------------------------------------------------------

    def execute(self, plan: Plan) -> Facts:
        """Run the plan's steps in order (a dry run prints them). After a step that changes what
        serves, what serves is read back (reconciled). When a command fails, the plan's
        ``on_failure`` steps record it (as ``interrupted`` after Ctrl-C/SIGTERM), then the failure
        propagates; unless the change went live anyway: then the plan goes on, records it as live
        with a warning, and the failure is left in ``facts.landed`` for the caller."""
        facts = Facts()
        watch = self._watch(plan)
        runner = self._runner(facts, probe=watch.probe if watch else None,
                              gate=watch.gate if watch else None)
        for step in plan.steps:
            step = self._bound(step, facts)
            self.executed.append(step)
            try:
                stopping = None if self.dry_run else stop_requested()
                if stopping is not None:  # a signal stopped the run: this lane's next step waits
                    raise Interrupted(stopping)
                result = self._run_step(runner, step)
            except KeyboardInterrupt as interrupt:  # a signal during an in-process step (verify)
                error = Interrupted(getattr(interrupt, "signum", signal.SIGINT))
                self._unverified(watch, facts)
                self._failed(plan, facts, runner, error)
                raise error from None
            except (CommandFailed, Interrupted) as error:
                if watch and step.event in TRAFFIC_EVENTS and isinstance(error, Interrupted):
                    self._read_back_interrupted(watch, facts)
                elif isinstance(error, Interrupted):  # passed on to a wave's thread, between
                    self._unverified(watch, facts)    # steps or while verifying
                if watch and step.event in TRAFFIC_EVENTS and isinstance(error, WranglerFailed):
                    found = watch.after(facts, command_ok=False)
                    if found.ok:
                        facts.landed = error
                        self.say(f"warning: {watch.worker}: {found.warning}")
                        continue
                    if step.event == "deploy" and self._activate(plan, facts, runner, watch, error):
                        continue
                self._failed(plan, facts, runner, error)
                raise
            facts.learn(result)
            if watch and step.event in TRAFFIC_EVENTS:
                found = watch.after(facts, command_ok=True)
                if not found.ok:
                    error = LifecycleError(
                        f"{watch.worker}: {found.warning}",
                        hint=f"`invoke status {step.service} {step.environment}` shows what serves",
                    )
                    self._failed(plan, facts, runner, error)
                    raise error
        return facts

    def _unverified(self, watch: _Watch | None, facts: Facts) -> None:
        """Say that the plan's change serves, unverified (a signal stopped it after the change)."""
        live = facts.reconciled.version_id if facts.reconciled else None
        if watch and live:
            self.say(f"warning: {watch.worker}: {live} serves, not verified (recorded as "
                     "interrupted)")

    def _activate(
        self, plan: Plan, facts: Facts, runner: Runner, watch: _Watch, error: WranglerFailed
    ) -> bool:
        """``wrangler deploy`` failed after its upload and its version does not serve: give it
        the traffic with the plan's ``on_unactivated`` steps (never a second upload). True when
        it now serves (the plan goes on). Otherwise the version is noted for the record:
        ``unknown`` when no answer came (it may still land), else a ``failure`` naming it."""
        uploaded = watch.uploaded()
        if uploaded is None:
            return False
        self.say(f"warning: {watch.worker}: uploaded {uploaded}, but activating it failed "
                 f"({_first_line(str(error))})")
        if isinstance(error, CommandTimedOut) or not plan.on_unactivated:
            return self._unsettled(facts, watch, uploaded, error)  # the API hangs: do not pile on
        facts.new_version = uploaded
        try:
            for step in plan.on_unactivated:
                step = self._bound(step, facts)
                self.executed.append(step)
                self._run_step(runner, step)
        except WranglerFailed as again:
            return self._unsettled(facts, watch, uploaded, again)
        except Interrupted as stop:
            self._read_back_interrupted(watch, facts)
            self._failed(plan, facts, runner, stop)
            raise
        found = watch.after(facts, command_ok=True)
        if not found.ok:
            return self._unsettled(facts, watch, uploaded, error)
        facts.activated = f"activating {uploaded} failed once ({_first_line(str(error))}): " \
                          "activated the uploaded version with `wrangler versions deploy`"
        self.say(f"{watch.worker}: {uploaded} serves now (activated without a second upload)")
        return True

    def _unsettled(self, facts: Facts, watch: _Watch, uploaded: str, error: WranglerFailed) -> bool:
        """The upload's activation failed for good (a ``failure``) or got no answer
        (``unknown``: the next read settles it): note it for the record."""
        facts.uploaded = uploaded
        if error.unanswered:
            facts.unknown = (f"activating {uploaded} got no answer ({error.kind}): it may still "
                             "land; the next `invoke status`, `history` or deploy settles it")
            facts.new_version = facts.in_flight = uploaded
            self.say(f"warning: {watch.worker}: {facts.unknown}")
        else:
            facts.new_version = None
        return False

    def _read_back_interrupted(self, watch: _Watch, facts: Facts) -> None:
        """Ctrl-C or SIGTERM stopped wrangler mid-change: read what serves, so that the
        ``interrupted`` record names the version that went live before the signal (if one
        did); a change that did not land leaves the record without a version."""
        if watch.early is not None and not watch.early.done():
            facts.reconciled = None  # wrangler never passed its gate: nothing could change
            return
        found = watch.after(facts, command_ok=False)
        if not found.ok:
            facts.reconciled = None
            uploaded = watch.uploaded()
            if uploaded:  # stopped while activating it: that request may still land
                facts.in_flight = uploaded
                self.say(f"warning: {watch.worker}: {uploaded} was uploaded and its activation "
                         "may still land; the next `invoke status`, `history` or deploy settles it")
            return
        if found.version_id:
            self.say(f"warning: {watch.worker}: {found.version_id} went live before the "
                     "interrupt (recorded as interrupted: not verified)")

    def _failed(self, plan: Plan, facts: Facts, runner: Runner, error: BaseException) -> None:
        """Record a failed plan with its ``on_failure`` steps (``interrupted`` after a signal)."""
        facts.error = error
        if self.dry_run:
            return
        outcome = ("interrupted" if isinstance(error, Interrupted)
                   else "unknown" if facts.unknown else None)
        for step in plan.on_failure:
            step = self._bound(step, facts, strict=False)
            if outcome and isinstance(step.action, WriteRecord):
                action = dataclasses.replace(step.action, outcome=outcome)
                label = step.description.replace("(failure)", f"({outcome})")
                step = dataclasses.replace(step, action=action, description=label)
            runner.run_step(step)
        if isinstance(error, DomeError):
            error.recorded = tuple(facts.records)

    def _watch(self, plan: Plan) -> _Watch | None:
        """What to read back after the plan's traffic change: the worker its record names."""
        if self.dry_run:
            return None
        for step in plan.steps:
            action = step.action
            if isinstance(action, WriteRecord) and action.kind in TRAFFIC_EVENTS:
                worker = str(action.fields["worker"])
                reconciler = self.reconciler(step.environment or "")
                early = self._early.get(worker)  # read under the lock, once it is held
                if early is not None and worker not in self._early_used:
                    self._early_used.add(worker)  # the next plan (a rollback) reads anew
                    return _Watch(self, step, worker, reconciler, None, early=early)
                if early is not None:
                    early.result()  # the lock is held (or why not is raised)
                return _Watch(self, step, worker, reconciler, reconciler.live(worker))
        return None

    def record(
        self, kind: str, outcome: str, *, service: str, environment: str, worker: str, **fields: Any
    ) -> LedgerRecord | None:
        """Append one ledger record (not in dry runs), with git facts and the actor."""
        if self.dry_run:
            return None
        git = self.git
        fields.setdefault("commit", git.commit)
        fields.setdefault("commit_time", git.commit_time)
        fields.setdefault("dirty", git.dirty)
        record = LedgerRecord(
            kind=kind,
            service=service,
            environment=environment,
            outcome=outcome,
            worker=worker,
            actor=actor(),
            **fields,
        )
        if self.redactor:  # the values, never the keys: a short secret cannot break a record
            record = LedgerRecord.from_dict(self.redactor.data(json.loads(record.to_json())))
        return self.ledger.append(record)

    # --- plumbing -----------------------------------------------------------------------------

    def _runner(
        self,
        facts: Facts,
        *,
        quiet: bool = False,
        probe: Callable[[Command], Callable[[Any], bool] | None] | None = None,
        gate: Callable[[Command], Any] | None = None,
    ) -> Runner:
        from dome_tasks.runner import Runner

        timeout = {} if self.command_timeout is None else {"command_timeout": self.command_timeout}

        return Runner(
            self.c,
            dry_run=self.dry_run,
            out=io.StringIO() if quiet else self.out,  # quiet: the lines are dropped
            stdout=self.out if self.captured else None,
            stderr=self.out if self.captured else None,
            on_step=None if quiet or self.board is None else self.board.step,
            command_runner=WranglerExec(
                self.root / ".dome" / "wrangler",
                self.base_env,
                self.redactor,
                landed_probe=probe,
                gate=gate,
                **timeout,
            ),
            handlers={
                Verify: lambda step: self._verify(step, facts),
                WriteRecord: lambda step: self._write_record(step, facts),
            },
        )

    def _run_step(self, runner: Runner, step: Step) -> StepResult:
        if self.dry_run or step.event in _UNLOGGED:
            return runner.run_step(step)
        with self.log.span(step.event, service=step.service, environment=step.environment) as span:
            result = runner.run_step(step)
            version = getattr(result.value, "version_id", None)
            if version:
                span.fields["version_id"] = version
        return result

    def _bound(self, step: Step, facts: Facts, *, strict: bool = True) -> Step:
        """The step with the placeholders its plan has learned filled in."""
        action = step.action
        if isinstance(action, Command):
            argv = tuple(facts.bind(arg) for arg in action.argv)
            unknown = [arg for arg in argv if NEW in arg or LIVE in arg]
            if unknown and strict and not self.dry_run:
                raise LifecycleError(
                    f"{step.description}: the version is unknown ({unknown[0]}): "
                    "the step before it reported no version id"
                )
            action = dataclasses.replace(action, argv=argv)
        elif isinstance(action, WriteRecord):
            values = {
                k: facts.bind(v) if isinstance(v, str) else v for k, v in action.fields.items()
            }
            action = dataclasses.replace(action, fields=values)
        return dataclasses.replace(
            step, description=facts.bind(step.description, short=True), action=action
        )

    def _verify(self, step: Step, facts: Facts) -> VerifyResult | None:
        check: Verify = step.action  # type: ignore[assignment]
        config = check.config
        subdomain = (
            check.subdomain or subdomain_in(facts.targets, config.name) or check.learned_subdomain
        )
        try:
            where = health_target(config, subdomain=subdomain, base_url=self.base_url)
        except VerifyError:
            if check.required:
                raise
            self.log.emit(
                "verify",
                service=config.service,
                environment=config.environment,
                outcome="skipped",
                reason="no health URL (set health_url or --subdomain)",
            )
            return None
        with self.log.span(
            "verify", service=config.service, environment=config.environment, url=where.public_url
        ) as span, interruptible() as pause:  # a signal passed on to a wave's thread stops it
            result = verify(
                config,
                subdomain=subdomain,
                base_url=self.base_url,
                policy=self.policy,
                smoke=check.smoke,
                sleep=pause,
            )
            span.outcome = "success" if result.ok else "unhealthy"
            span.fields["checks"] = result.summary()
        self.say(
            f"verify {config.name}: {'healthy' if result.ok else 'UNHEALTHY'}: {result.summary()}"
        )
        facts.verification = result
        return result

    def _write_record(self, step: Step, facts: Facts) -> LedgerRecord | None:
        entry: WriteRecord = step.action  # type: ignore[assignment]
        values = {
            k: v for k, v in entry.fields.items() if not (isinstance(v, str) and v in _PLACEHOLDERS)
        }
        worker = values.pop("worker")
        extra = dict(values.pop("extra", None) or {})
        outcome = entry.outcome or ("success" if facts.healthy else "unhealthy")
        if facts.verification is not None:
            values.setdefault("verified", facts.verification.ok)
            if outcome == "unhealthy":
                values.setdefault("reason", facts.verification.summary())
        if facts.targets:
            extra.setdefault("targets", list(facts.targets))
        if "workers_dev" in extra:  # the worker's workers.dev URL, from this deploy's if known
            known = subdomain_in(facts.targets, worker) or extra.pop("workers_dev")
            extra.pop("workers_dev", None)
            if known:
                extra["urls"] = [*extra.get("urls", ()), f"https://{worker}.{known}.workers.dev"]
        if facts.reconciled is not None:
            extra.update(facts.reconciled.extra())
            live = facts.reconciled.version_id
            if outcome != "failure" and live and entry.kind in ("deploy", "rollback", "secret"):
                values["version_id"] = live  # what serves, not what wrangler said
                if entry.kind == "rollback":
                    values["to_version"] = live
        if entry.kind == "secret" and facts.replaced and values.get("version_id") != facts.replaced:
            values.setdefault("from_version", facts.replaced)
        if facts.digest:
            extra["digest"] = facts.digest
        if facts.activated:
            extra["warning"] = facts.activated
        if facts.uploaded:
            extra["uploaded"] = facts.uploaded
        if facts.unknown:
            extra["warning"] = facts.unknown
        if facts.in_flight:
            extra["in_flight"] = facts.in_flight
        if outcome == "failure" and facts.error is not None:
            first = _first_line(str(facts.error))
            if values.get("reason"):
                extra.setdefault("error", first)
            else:
                values["reason"] = first
        values.setdefault("duration_ms", round((time.monotonic() - facts.started) * 1000))
        record = self.record(
            entry.kind,
            outcome,
            service=step.service or "",
            environment=step.environment or "",
            worker=worker,
            extra=extra,
            **values,
        )
        if record is not None:
            facts.records.append(record)
        return record


@dataclass
class _Watch:
    """The traffic change a plan makes, to read back from the API after it."""

    session: Session
    record: Step  # the plan's record step: what it meant to serve
    worker: str
    reconciler: Reconciler
    read_before: Any  # LiveDeployment | None: what served before the plan, read at once …
    early: Future[Any] | None = None  # … or (what served, versions) once the lock is held
    landing: Landing | None = None  # what the deploy command's probe learned
    answered: Future[Any] | None = None  # what serves, read once the change was answered

    @property
    def before(self) -> Any:
        """What served before the plan (waits for the lock taken early, and raises when it
        cannot be had)."""
        return self.early.result()[0] if self.early is not None else self.read_before

    def after(self, facts: Facts, *, command_ok: bool) -> Reconciled:
        """Read what serves now (after a command that worked, the read made when the API
        answered its change, beside wrangler's last calls); remember it in *facts* (and the
        version, for ``<live>``)."""
        bound = self.session._bound(self.record, facts, strict=False)
        action: WriteRecord = bound.action  # type: ignore[assignment]
        if action.kind == "secret":  # a new version of the same code: whatever serves now
            found = self.reconciler.serving_now(self.worker, self.before, command_ok=command_ok)
        else:
            expected = expected_after(action.kind, action.fields, placeholders=_PLACEHOLDERS)
            read = self.answered.result() if command_ok and self.answered is not None else None
            found = self.reconciler.after(self.worker, expected, self.before,
                                          command_ok=command_ok, live=read)
        facts.reconciled = found
        if self.before is not None:
            facts.replaced = self.before.version_id
        if found.ok and found.live is not None and found.version_id:
            facts.live_version = found.version_id
        return found

    def probe(self, command: Command) -> Callable[[Any], bool] | None:
        """For the retry path: did a failed ``wrangler deploy`` go live anyway, or upload?"""
        if self.reconciler.api is None:
            return None
        known = None if self.early is not None else {self.worker: self.read_before}
        landing = self.reconciler.probe(command, known=known, early=self.early)
        if landing is not None:
            self.landing = landing
        return landing

    def gate(self, command: Command) -> Any:
        """A deploy started while its lock is being taken waits at a gate on its network
        (:class:`~dome_tasks.wrangler.gate.NetGate`) until the lock is held and what served
        is read (one started before the plan is adopted, see :meth:`Session.start_early`);
        what serves is read again as soon as the API answers its activation."""
        from dome_tasks.lifecycle.reconcile import is_deploy
        from dome_tasks.wrangler.gate import NetGate

        started = self.session._started.pop(self.worker, None)
        if started is not None:
            if started.command == command:  # started before the plan: this step adopts it
                started.on_answer = self._answered
                return started
            started.cancel()
        if self.early is None or not is_deploy(command.argv):
            return None
        return NetGate(self.early, on_answer=self._answered)

    def _answered(self, method: str, path: str, status: int) -> None:
        """wrangler got an answer: after its activation (the deployment call, or an upload
        that deploys at once) start reading what serves; a later one starts a new read."""
        from dome_tasks.cloudflare.api import path_segment

        script = f"/workers/scripts/{path_segment(self.worker)}"
        path = path.split("?", 1)[0]
        activation = ((method == "POST" and path.endswith(f"{script}/deployments"))
                      or (method == "PUT" and path.endswith(script)))
        if activation and 200 <= status < 300:
            self.answered = in_background(self.reconciler.live, self.worker,
                                          name="dome-live-after")

    def uploaded(self) -> str | None:
        """The version the failed deploy uploaded that does not serve, if any."""
        if self.landing is None:
            return None
        return self.landing.uploaded or self.landing.find_upload()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def open_watched(c: Context, settings: Settings, request: ResolvedRequest, *, dry_run: bool,
                 json: bool, title: str = "deploy", services: list[str] | None = None,
                 session: Session | None = None) -> tuple[Session, Board]:
    """The task's session (*session*, when the task opened it already) and its progress board.
    With ``--json`` every human line (wrangler's own output too) goes to stderr, and stdout gets
    the summary alone. A dry run's board keeps the steps it shows (``--json`` lists them)."""
    from dome_tasks.progress import Board

    if session is None:
        session = Session.open(c, settings, request.root, dry_run=dry_run,
                               manifest=request.manifest)
    out = sys.stderr if json else sys.stdout
    board = Board.open(request.services if services is None else services,
                       request.environment.name, out=out,
                       fmt="json" if json else "text", title=title)
    if dry_run:
        board.planned = []
    session = dataclasses.replace(session, out=out, board=board, captured=json)
    return session, board
