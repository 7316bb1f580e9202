"""Reconciliation: record what Cloudflare serves, not what a command claimed.

After every deploy, rollback, canary step or failure, the lifecycle reads the worker's live
deployment straight from the API (``GET …/workers/scripts/<name>/deployments``, newest first:
milliseconds, no Node start) and records *that*:

* a deploy is recorded ``success`` only with the version id that is live;
* a command that failed *after* its new version went live (e.g. a 5xx on the workers.dev
  subdomain call that follows the upload) is recorded as live, ``success`` with a warning, and
  is never re-run as a whole deploy;
* a command that "succeeded" while nothing changed (wrangler exits 0 on Ctrl-C mid-upload) is
  a ``failure``;
* a ``wrangler deploy`` that uploaded its version but failed to activate it is not repeated
  (:class:`Landing` finds the uploaded version; the session activates it);
* an activation that got no answer (deadline, dropped connection) is ``unknown``;
  :func:`settle` decides it on the next read from what serves then.

:func:`reconcile` is the pure decision; :func:`read_live` the reader; :class:`Reconciler` ties
them to one account; :func:`failed_after_going_live` and :meth:`Reconciler.probe` tell the
retry path (``WranglerExec.landed_probe``) not to repeat a deploy that already went live.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dome_tasks._background import in_background
from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi, path_segment

if TYPE_CHECKING:
    from concurrent.futures import Future

    from pathlib import Path

    from dome_tasks.lifecycle.ledger import LedgerRecord
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.plan.steps import Command
    from dome_tasks.wrangler.retry import Attempt

__all__ = [
    "TRAFFIC_EVENTS",
    "Landing",
    "LiveDeployment",
    "Reconciled",
    "Reconciler",
    "expected_after",
    "is_deploy",
    "failed_after_going_live",
    "read_live",
    "read_versions",
    "reconcile",
    "reconciler_for",
    "settle",
    "settle_in",
    "unsettled",
]

#: Steps (and the records they write) that change what serves a worker: read back after them
#: (``secret``: `wrangler secret bulk/put/delete` make and deploy a new version).
TRAFFIC_EVENTS = frozenset({"deploy", "rollback", "canary", "promote", "abort", "secret"})
_NOT_FOUND = (10007, 10090)  # the worker does not exist (yet)
# Calls `wrangler deploy` makes only after the new version serves 100% of the traffic.
_AFTER_GOING_LIVE = tuple(
    re.compile(pattern)
    for pattern in (
        r"/workers/subdomain$",
        r"/workers/scripts/[^/]+/subdomain$",
        r"/workers/scripts/[^/]+/script-settings$",
        r"/workers/scripts/[^/]+/schedules$",
        r"/workers/domains(/records)?$",
        r"/workers/routes$",
        r"/zones/[^/]+/workers/routes",
        r"/queues/[^/]+/consumers",
    )
)


@dataclass(frozen=True)
class LiveDeployment:
    """What serves a worker: the newest deployment's id and its split (largest share first).
    ``id`` None with no traffic: the worker has no deployment (or does not exist)."""

    id: str | None
    traffic: tuple[tuple[str, float], ...] = ()
    created_on: str | None = None

    @classmethod
    def from_api(cls, deployment: Mapping[str, Any] | None) -> LiveDeployment:
        if not deployment:
            return cls(None)
        split = [(str(v["version_id"]), float(v.get("percentage", 0)))
                 for v in deployment.get("versions") or []]
        split.sort(key=lambda item: -item[1])
        return cls(deployment.get("id"), tuple(split), deployment.get("created_on"))

    @property
    def version_id(self) -> str | None:
        """The version with the largest share (the only one, outside a canary)."""
        return self.traffic[0][0] if self.traffic else None

    @property
    def split(self) -> dict[str, float]:
        return dict(self.traffic)

    def describe(self) -> str:
        if not self.traffic:
            return "nothing (no deployment)"
        return ", ".join(f"{v}@{p:g}%" for v, p in self.traffic)


def read_live(api: CloudflareApi, worker: str) -> LiveDeployment:
    """The live deployment of ``worker`` (no deployment if the worker does not exist).

    Raises :class:`~dome_tasks.cloudflare.api.ApiFailure` when the API cannot tell."""
    try:
        result = api.call("GET", f"/workers/scripts/{path_segment(worker)}/deployments")
    except ApiFailure as error:
        if error.status == 404 and error.code in _NOT_FOUND:
            return LiveDeployment(None)
        raise
    deployments = (result or {}).get("deployments") or []
    return LiveDeployment.from_api(deployments[0] if deployments else None)


def read_versions(api: CloudflareApi, worker: str) -> tuple[str, ...]:
    """The ids of ``worker``'s versions, newest first (none if the worker does not exist).

    Raises :class:`~dome_tasks.cloudflare.api.ApiFailure` when the API cannot tell."""
    try:
        result = api.call("GET", f"/workers/scripts/{path_segment(worker)}/versions")
    except ApiFailure as error:
        if error.status == 404 and error.code in _NOT_FOUND:
            return ()
        raise
    items = (result or {}).get("items") or []
    items = sorted(items, key=lambda item: -int(item.get("number") or 0))
    return tuple(str(item["id"]) for item in items if item.get("id"))


@dataclass(frozen=True)
class Reconciled:
    """What to record: ``outcome`` and ``version_id`` (what serves; None for failures), whether
    the action changed what serves (``went_live``), and a warning when reality and the
    command's own report disagree."""

    outcome: str  # success | failure
    version_id: str | None
    live: LiveDeployment | None
    went_live: bool | None  # None: cannot tell (the live deployment could not be read)
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def extra(self) -> dict[str, Any]:
        """Ledger ``extra`` fields: the warning and, when it differs, what serves."""
        extra: dict[str, Any] = {}
        if self.warning:
            extra["warning"] = self.warning
        if self.live is not None and self.live.version_id != self.version_id:
            extra["live"] = self.live.describe()
        return extra


def _matches(live: LiveDeployment, expected: Mapping[str, float]) -> bool:
    split = live.split
    return set(split) == set(expected) and all(abs(split[v] - p) < 0.01 for v, p in expected.items())


def reconcile(
    expected_version: str | Mapping[str, float] | None,
    live_deployment: LiveDeployment | None,
    *,
    before: LiveDeployment | None = None,
    command_ok: bool = True,
) -> Reconciled:
    """Decide what to record after an action (pure).

    ``expected_version``: the version the action meant to put at 100% (a split such as
    ``{new: 10, old: 90}`` for a canary step; None when the command did not say, e.g. wrangler
    wrote no version id). ``live_deployment``: what serves now (None: could not be read).
    ``before``: what served before the action (None: unknown). ``command_ok``: wrangler's exit.
    """
    expected: dict[str, float] | None
    if expected_version is None:
        expected = None
    elif isinstance(expected_version, str):
        expected = {expected_version: 100.0}
    else:
        expected = {v: float(p) for v, p in expected_version.items()}
    meant = ", ".join(f"{v}@{p:g}%" for v, p in expected.items()) if expected else None
    live = live_deployment
    if live is None:  # nothing to check against: wrangler's exit code decides
        if command_ok:
            top = max(expected, key=expected.__getitem__) if expected else None
            return Reconciled("success", top, None, None,
                              "could not read what serves: recorded what wrangler reported")
        return Reconciled("failure", None, None, None,
                          "could not read what serves: whether anything changed is unknown")
    changed = None if before is None else live.id != before.id
    if expected is not None and _matches(live, expected):
        if command_ok:
            return Reconciled("success", live.version_id, live, changed if changed is not None else True)
        return Reconciled("success", live.version_id, live, True,
                          f"wrangler failed after {meant} went live: recorded as live "
                          "(not repeated)")
    if expected is None and changed:
        why = "wrangler reported no version id" if command_ok else "wrangler failed after it went live"
        return Reconciled("success", live.version_id, live, True,
                          f"{why}: recorded the version now serving ({live.describe()})")
    if expected is not None and changed:
        return Reconciled("failure", None, live, True,
                          f"expected {meant}, but {live.describe()} serves (another deploy at "
                          "the same time?)")
    if command_ok:
        what = f"{meant} is not live" if meant else "nothing new went live"
        return Reconciled("failure", None, live, changed,
                          f"wrangler exited 0 but {what}; {live.describe()} serves")
    if changed is None:
        return Reconciled("failure", None, live, None,
                          f"{live.describe()} serves; whether the failed command changed it is unknown")
    return Reconciled("failure", None, live, False)


def expected_after(
    kind: str, fields: Mapping[str, Any], *, placeholders: frozenset[str] = frozenset()
) -> str | dict[str, float] | None:
    """What a ``kind`` record's *fields* say should serve after the change (pure): the version
    at 100%, a canary's split, or None when it is not known yet (a placeholder)."""

    def known(value: Any) -> str | None:
        return value if isinstance(value, str) and value and value not in placeholders else None

    if kind == "canary":
        new, old, percent = known(fields.get("version_id")), known(fields.get("from_version")), (
            fields.get("percent"))
        if new and old and isinstance(percent, (int, float)):
            return {new: float(percent), old: 100.0 - float(percent)}
        return None
    if kind in ("rollback", "abort"):
        return known(fields.get("to_version"))
    return known(fields.get("version_id"))


def is_deploy(argv: Sequence[str]) -> bool:
    """``wrangler deploy …`` (the subcommand right after the binary, as dome builds argv)."""
    words = list(argv)
    for index, word in enumerate(words[:-1]):
        if word.rsplit("/", 1)[-1] in ("wrangler", "wrangler.js", "wrangler.cmd"):
            return words[index + 1] == "deploy"
    return False


def failed_after_going_live(argv: Sequence[str], attempt: Attempt) -> bool:
    """Whether a failed ``wrangler deploy`` failed on a call it makes only after the new
    version went live (workers.dev subdomain, routes, triggers, script settings): then the
    deploy must not be repeated as a whole. Pure: reads the failure's API path."""
    from dome_tasks.wrangler.retry import classify

    if attempt.ok or not is_deploy(argv):
        return False
    failure = classify(attempt)
    path = failure.path if failure is not None else None
    return bool(path) and any(pattern.search(path) for pattern in _AFTER_GOING_LIVE)


def reconciler_for(
    manifest: Manifest | None, environment: str, environ: Mapping[str, str], root: Path
) -> Reconciler:
    """The reconciler of *environment*'s account (its ``account_id``, wrangler's credentials)."""
    from dome_tasks.cloudflare.credentials import wrangler_near

    env = manifest.environments.get(environment) if manifest else None
    return Reconciler(CloudflareApi.from_environ(
        environ, account_id=env.account_id if env else None, wrangler=wrangler_near(root)))


def settle_in(
    ledger: Any, records: Sequence[LedgerRecord], reconciler: Callable[[str], Reconciler]
) -> list[LedgerRecord]:
    """:func:`settle` the *records* of a ledger with what serves (read through
    ``reconciler(environment)``), append the settling records and return them."""
    unknown = {r.environment for r in records if unsettled(r)}
    if not unknown:
        return []
    settled: list[LedgerRecord] = []
    for environment in sorted(unknown):
        mine = [r for r in records if r.environment == environment]
        settled += settle(mine, reconciler(environment).live)
    for record in settled:
        ledger.append(record)
    return settled


@dataclass(frozen=True)
class Reconciler:
    """:func:`read_live` and :func:`reconcile` for one account (``api`` None: no API access,
    every read is unknown and wrangler's own report is recorded, with a warning)."""

    api: CloudflareApi | None

    def live(self, worker: str) -> LiveDeployment | None:
        """What serves ``worker`` now; None when it cannot be read."""
        if self.api is None:
            return None
        try:
            return read_live(self.api, worker)
        except ApiFailure:
            return None

    def after(
        self,
        worker: str,
        expected: str | Mapping[str, float] | None,
        before: LiveDeployment | None,
        *,
        command_ok: bool,
        live: LiveDeployment | None = None,
    ) -> Reconciled:
        """Read what serves ``worker`` now and reconcile it with what was meant (without API
        access, wrangler's exit code decides, silently: there is nothing to warn about).
        ``live``: what serves, read already (after the change was answered)."""
        now = live if live is not None else self.live(worker)
        found = reconcile(expected, now, before=before, command_ok=command_ok)
        return found if self.api is not None else replace(found, warning=None)

    def serving_now(self, worker: str, before: LiveDeployment | None, *, command_ok: bool
                    ) -> Reconciled:
        """After a change that names no version of its own (a secret change makes one): what
        serves ``worker`` now, recorded as such when the command worked (nothing at all when the
        worker has no deployment yet); a failed command is a ``failure`` naming nothing."""
        live = self.live(worker)
        changed = None if live is None or before is None else live.id != before.id
        if not command_ok:
            return Reconciled("failure", None, live, changed)
        if live is None:
            return Reconciled("success", None, None, None,
                              None if self.api is None else "could not read what serves")
        return Reconciled("success", live.version_id, live, changed)

    def versions(self, worker: str) -> tuple[str, ...] | None:
        """``worker``'s version ids, newest first; None when they cannot be read."""
        if self.api is None:
            return None
        try:
            return read_versions(self.api, worker)
        except ApiFailure:
            return None

    def probe(
        self, command: Command, known: Mapping[str, LiveDeployment | None] | None = None,
        *, early: Future[Any] | None = None,
    ) -> Landing | None:
        """For ``WranglerExec.landed_probe``: before a ``deploy`` command runs, note what serves
        (*known* holds what was read already, by worker) and, beside wrangler's start, its
        versions; the returned :class:`Landing` tells after a failed attempt whether the deploy
        went live anyway or uploaded a version that does not serve: either way it is not
        repeated."""
        from dome_tasks.wrangler.exec import config_worker_name

        if not is_deploy(command.argv):
            return None
        worker = config_worker_name(command.argv)
        if early is not None:  # (what served, its versions), read once the lock is held
            return Landing(self, tuple(command.argv), worker, None, None, pending=early)
        if worker and known is not None and worker in known:
            before = known[worker]
        else:
            before = self.live(worker) if worker else None
        versions = in_background(self.versions, worker, name="dome-versions") if worker else None
        return Landing(self, tuple(command.argv), worker, before, versions)


@dataclass
class Landing:
    """Where a failed ``wrangler deploy`` attempt left things: ``went_live`` (its version serves:
    a call after the activation failed), or ``uploaded`` (its version exists but does not serve:
    the activation failed). Called by the retry loop: True means "do not repeat the deploy"."""

    reconciler: Reconciler
    argv: tuple[str, ...]
    worker: str | None
    before: LiveDeployment | None  # what served before the command
    versions_before: Future[tuple[str, ...] | None] | None  # its versions then (read beside it)
    went_live: bool = False
    uploaded: str | None = None
    pending: Future[Any] | None = None  # (before, versions_before), still being read

    def _settle(self) -> None:
        if self.pending is None:
            return
        from concurrent.futures import Future

        try:
            self.before, versions = self.pending.result()
        except BaseException:  # noqa: BLE001 - the lock or the reads failed: nothing known
            self.before, versions = None, None
        self.versions_before = Future()
        self.versions_before.set_result(versions)
        self.pending = None

    def __call__(self, attempt: Attempt) -> bool:
        self._settle()
        if failed_after_going_live(self.argv, attempt):
            self.went_live = True
            return True
        if self.worker is None or self.before is None:
            return False
        now = self.reconciler.live(self.worker)
        if now is not None and now.id != self.before.id:
            self.went_live = True
            return True
        return self.find_upload() is not None

    def find_upload(self) -> str | None:
        """The version the command uploaded that does not serve (None: none, or unreadable)."""
        self._settle()
        if self.worker is None or self.versions_before is None:
            return None
        before = self.versions_before.result()
        after = self.reconciler.versions(self.worker)
        if before is None or after is None:
            return None
        live = set(self.before.split) if self.before is not None else set()
        new = [v for v in after if v not in before and v not in live]
        self.uploaded = new[0] if new else None
        return self.uploaded


# --- unknown outcomes, settled on the next read ---------------------------------------------


def unsettled(record: LedgerRecord) -> bool:
    """An ``unknown`` change, or one interrupted while its activation was in flight."""
    return record.outcome == "unknown" or bool(record.extra.get("in_flight"))


def settle(
    records: Sequence[LedgerRecord], live: Callable[[str], LiveDeployment | None]
) -> list[LedgerRecord]:
    """The records that settle each ``unknown`` one (an activation that got no answer): for the
    newest traffic record of a (service, environment) that is ``unknown`` and not settled yet,
    *live(worker)* says what serves now. Its version serving: the change landed (``success``);
    anything else: it did not (``failure``). Pure apart from *live*; unreadable: left unknown."""
    from dome_tasks.lifecycle.ledger import LedgerRecord

    settled = {r.extra.get("settles") for r in records if r.extra.get("settles")}
    newest: dict[tuple[str, str], LedgerRecord] = {}
    for record in records:
        if record.kind in TRAFFIC_EVENTS:
            newest[(record.service, record.environment)] = record
    out: list[LedgerRecord] = []
    for record in newest.values():
        if not unsettled(record) or record.id in settled or not record.worker:
            continue
        now = live(record.worker)
        if now is None:
            continue
        version = record.extra.get("in_flight") or record.version_id
        landed = bool(version) and now.version_id == version
        what = (f"{version} landed after the run that started it ended" if landed else
                f"{version or 'the change'} did not land; {now.describe()} serves")
        out.append(LedgerRecord(
            kind=record.kind, service=record.service, environment=record.environment,
            outcome="success" if landed else "failure", worker=record.worker,
            version_id=now.version_id if landed else None, commit=record.commit,
            commit_time=record.commit_time, dirty=record.dirty, actor=record.actor,
            automatic=True, reason=f"settles the unknown {record.kind} {record.id}: {what}",
            extra={"settles": record.id, "live": now.describe(),
                   **({"digest": record.extra["digest"]} if landed and "digest" in record.extra
                      else {})},
        ))
    return out
