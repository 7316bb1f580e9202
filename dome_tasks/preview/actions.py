"""The preview operations, as observe → decide → act: up, down, list, prune.

``preview_up`` derives the ``pr-N`` environment from the template (pure), refuses a worker name
that someone else's worker already has, records the workers it will own, creates the resources
the preview lacks (``invoke provision``, each created one recorded with its id), sets the
preview's missing declared secrets, applies migrations, runs each seed once on a database it
created, then deploys, verifies and records like any environment (the no-op skip included).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TextIO

from dome_tasks._time import parse_time
from dome_tasks.adopt.resources import KINDS
from dome_tasks.errors import DomeError, Refused, UsageError
from dome_tasks.plan.steps import Plan, Step
from dome_tasks.preview.derive import environment_name, preview_manifest
from dome_tasks.preview.down import Teardown, decide_down, empty_bucket, live_workers
from dome_tasks.preview.record import Owned, PreviewRecord, PreviewStore

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.lifecycle.session import Session
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.plan.target import ResolvedRequest
    from dome_tasks.settings import Settings
    from dome_tasks.tools import Tools
    from dome_tasks.wrangler.argv import VersionLabel

__all__ = ["UpOptions", "list_previews", "preview_down", "preview_up", "stores_of"]

_CREATED_KIND = {"d1": "d1", "kv": "kv", "r2": "r2", "queues": "queue", "vectorize": "vectorize"}


@dataclass(frozen=True)
class UpOptions:
    template: str = "staging"
    build: bool = True
    verify: bool = True
    force: bool = False
    jobs: int = 0
    json: bool = False
    label: VersionLabel | None = None
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


def stores_of(manifest: Manifest, environ: Mapping[str, str] | None = None) -> list[PreviewStore]:
    """One record store per account of the manifest's remote environments."""
    import os

    env = os.environ if environ is None else environ
    accounts = dict.fromkeys(e.account_id or env.get("CLOUDFLARE_ACCOUNT_ID")
                             for e in manifest.environments.values() if not e.is_local)
    return [PreviewStore.for_account(a, manifest.root, env) for a in accounts]


# --- up -----------------------------------------------------------------------------------------


def preview_up(c: Context, settings: Settings, manifest: Manifest, number: int,
               options: UpOptions, tools: Tools) -> dict[str, Any]:
    """Bring preview ``number`` up to date; returns what it prints with ``--json``."""
    derived = preview_manifest(manifest, options.template, number)
    name = environment_name(number)
    env = derived.environment(name)
    template = manifest.environment(options.template).name
    out = sys.stderr if options.json else sys.stdout
    store = PreviewStore.for_account(env.account_id, manifest.root)
    record = store.get(number)
    if record is not None and record.template != template:
        raise UsageError(f"{name} was made from {record.template}, not {template}",
                         hint=f"use --from {record.template}, or `invoke preview-down {number}` first")
    record = record or PreviewRecord.new(number, template, env.account_id)
    workers = {s: derived.declared(s, name).name for s in derived.deploy_order()}
    _claim(store, record, workers)
    record = store.put(replace(record, workers={**record.workers, **workers}))
    record = _provision(c, derived, name, store, record, out)
    from dome_tasks.lifecycle.session import open_watched
    from dome_tasks.plan.target import resolve

    request = resolve(derived, None, name, wrangler=tools.wrangler)
    session, board = open_watched(c, settings, request, dry_run=False, json=options.json,
                                  title="preview")
    try:
        with board:
            _sync_missing_secrets(session, request, store, options.secrets)
            _migrate(session, request, options)
            record = _seed(session, request, derived, store, record)
            _deploy(session, request, options, tools)
    finally:
        urls = {o.service: o.url for o in board.ordered() if o.url}
        record = store.put(replace(record, urls={**record.urls, **urls},
                                   commit=session.git.commit))
        result = {"preview": name, "number": number, "from": template,
                  "commit": record.commit, "urls": dict(record.urls),
                  "workers": dict(record.workers),
                  "resources": [dataclasses.asdict(r) for r in record.resources],
                  "deploy": board.to_dict()}
        result["ok"] = result["deploy"]["ok"]
        if not options.json:
            board.summary(sys.stdout)
        session.log.emit_summary()
    return result


def _claim(store: PreviewStore, record: PreviewRecord, workers: Mapping[str, str]) -> None:
    """Refuse a worker name that an existing worker the preview did not create has."""
    owned = set(record.workers.values())
    live = live_workers(store.api, [w for w in workers.values() if w not in owned])
    taken = [w for w, exists in live.items() if exists]
    if taken:
        raise Refused(f"worker(s) {', '.join(taken)} exist and were not created by "
                      f"{record.environment}: a preview never deploys over them",
                      hint="delete or rename them, or use another pull request number")


def _provision(c: Context, derived: Manifest, name: str, store: PreviewStore,
               record: PreviewRecord, out: TextIO) -> PreviewRecord:
    """Create what the preview lacks; record each created resource with its id (also when a
    later creation fails); warn about same-named resources it uses but did not create."""
    from dome_tasks.adopt.provision import _Runners, _runners, provision, read_inventory
    from dome_tasks.adopt.read import AdoptError
    from dome_tasks.tools import find_wrangler

    base = _runners(c, derived, name, False, out, echo=True)
    created: list[tuple[str, str]] = []

    def act(step: Step) -> Any:
        result = base.act(step)
        argv = step.action.argv  # type: ignore[union-attr]
        created.append((_CREATED_KIND[argv[1]], argv[argv.index("create") + 1]))
        return result

    report = None
    try:
        report = provision(c, derived, name, out=out, runners=_Runners(base.read, act))
    finally:
        if created:
            kinds = list(dict.fromkeys(k for k, _ in created))
            inventory = read_inventory(base.read, find_wrangler(derived.root), derived.root,
                                       record.account, name, kinds)
            owned = [Owned(k, n, inventory.id_of(k, n) or "") for k, n in created
                     if inventory.id_of(k, n)]
            record = store.put(record.with_resources(*owned))
    if report is not None and report.problems:
        raise AdoptError("; ".join(d.problem or "" for d in report.problems),
                         hint="fix the template environment's bindings in the manifest")
    for decision in (report.decisions if report else []):
        need = decision.need
        if decision.action == "exists" and need.name and not record.owns(need.kind, need.name):
            print(f"warning: {name} uses the existing {KINDS[need.kind]} {need.name}, which it "
                  "did not create: preview-down leaves it alone", file=out)
    return record


def _sync_missing_secrets(session: Session, request: ResolvedRequest, store: PreviewStore,
                          values: Mapping[str, str]) -> None:
    """Set the declared secrets a preview worker lacks, from the values given (before its
    deploy: wrangler creates the worker as a draft, so the deploy stays its live version)."""
    from dome_tasks.secrets.status import observe
    from dome_tasks.secrets.sync import decide_sync, sync

    targets = [t for t in request.targets if t.config.secrets]
    if not targets:
        return
    statuses = observe(store.api, targets)
    pairs = list(zip(targets, statuses))
    decisions = decide_sync(pairs, values, only_missing=True)
    for decision in decisions:
        if decision.no_value:
            session.say(f"warning: {decision.worker} lacks declared secret(s) "
                        f"{', '.join(decision.no_value)} and no value was given "
                        "(--secrets-from-file or --secrets-from-env)")
    sync(session, pairs, decisions, values)


def _migrate(session: Session, request: ResolvedRequest, options: UpOptions) -> None:
    from dome_tasks.lifecycle.migrate import decide_migrate, migrate, observe_applied
    from dome_tasks.runner import default_jobs

    plans = decide_migrate(request, observe_applied(session, request), say=session.say)
    if plans:
        migrate(session, plans, waves=request.waves, jobs=options.jobs or default_jobs())


def _seed(session: Session, request: ResolvedRequest, derived: Manifest, store: PreviewStore,
          record: PreviewRecord) -> PreviewRecord:
    """Run each ``previews.seed`` file once, on a database this preview created."""
    for service, files in derived.preview_seeds.items():
        target = request.target(service)
        for binding, path in files.items():
            key = f"{service}.{binding}"
            database = next(d for d in target.config.d1_databases if d.binding == binding)
            if key in record.seeded:
                continue
            if not record.owns("d1", database.database_name):
                session.say(f"not seeding {database.database_name}: {record.environment} did not "
                            "create it")
                continue
            session.prepare(target)
            command = target.command("d1", "execute", database.database_name, "--remote",
                                     "--file", str(path), "-y")
            session.execute(Plan((target.step("seed", f"seed {database.database_name} from "
                                                      f"{path.name}", command),)))
            record = store.put(replace(record, seeded=(*record.seeded, key)))
    return record


def _deploy(session: Session, request: ResolvedRequest, options: UpOptions, tools: Tools) -> None:
    from dome_tasks.lifecycle.deploy import DeployOptions, deploy
    from dome_tasks.runner import default_jobs

    deploy(session, request, DeployOptions(options.build, options.verify, False, options.label,
                                           jobs=options.jobs or default_jobs(),
                                           force=options.force), tools)


# --- down ---------------------------------------------------------------------------------------


def find_record(manifest: Manifest, number: int) -> tuple[PreviewStore, PreviewRecord] | None:
    """The store holding preview ``number``'s record, and the record; None when none has it."""
    for store in stores_of(manifest):
        record = store.get(number)
        if record is not None:
            return store, record
    return None


def preview_down(c: Context, manifest: Manifest, number: int, *, dry_run: bool = False,
                 out: TextIO | None = None) -> Teardown | None:
    """Delete what preview ``number`` owns; None when nothing is recorded (already down)."""
    from dome_tasks.adopt.provision import _runners, read_inventory
    from dome_tasks.tools import find_wrangler

    out = out or sys.stdout
    found = find_record(manifest, number)
    if found is None:
        return None
    store, record = found
    name = record.environment
    runners = _runners(c, manifest, name, dry_run, out, echo=True)
    wrangler = find_wrangler(manifest.root, dry_run=dry_run)
    live = live_workers(store.api, list(record.workers.values()))
    kinds = list(dict.fromkeys(r.kind for r in record.resources))
    inventory = read_inventory(runners.read, wrangler, manifest.root, record.account, name, kinds)
    teardown = decide_down(record, live, inventory, wrangler=wrangler, root=manifest.root,
                           empty=functools.partial(empty_bucket, store.api))
    for note in teardown.kept:
        print(f"kept {note}", file=out)
    for step in teardown.steps:
        runners.act(step)
    if not dry_run:
        _forget(store, record, manifest)
    return teardown


def _forget(store: PreviewStore, record: PreviewRecord, manifest: Manifest) -> None:
    """Everything is deleted: drop the preview's history, its ids in .dome/resources.json and
    its record (last, so a failure above leaves the record for the next run)."""
    from dome_tasks.lifecycle.kv_history import KvStore
    from dome_tasks.manifest.resource_ids import ResourceLock

    history = KvStore(store.api)
    namespace = history.namespace(create=False)
    if namespace is not None:
        page = store.api.call("GET", f"/storage/kv/namespaces/{namespace}/keys",
                              query={"prefix": f"{record.environment}/", "limit": 1000}) or []
        keys = [str(item["name"]) for item in page]
        if keys:
            store.api.call("POST", f"/storage/kv/namespaces/{namespace}/bulk/delete",
                           json_body=keys)
    lock = ResourceLock.load(manifest.root)
    if lock.forget(record.account, {(r.kind, r.name) for r in record.resources}):
        lock.save()
    store.delete(record.number)


# --- list and prune -----------------------------------------------------------------------------


def list_previews(manifest: Manifest) -> list[PreviewRecord]:
    """Every recorded preview of the manifest's accounts, by number."""
    found: dict[int, PreviewRecord] = {}
    for store in stores_of(manifest):
        for record in store.list():
            found.setdefault(record.number, record)
    return [found[n] for n in sorted(found)]


def age_seconds(record: PreviewRecord, now: datetime | None = None) -> float:
    """Seconds since the preview was last brought up."""
    now = now or datetime.now(timezone.utc)
    return (now - parse_time(record.updated)).total_seconds()


def parse_age(text: str) -> float:
    """``7d``, ``36h``, ``90m`` or ``45s`` in seconds; else one clear :class:`UsageError`."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    value = text.strip().lower()
    if len(value) >= 2 and value[-1] in units and value[:-1].isdigit():
        return int(value[:-1]) * units[value[-1]]
    raise UsageError(f"--older-than {text!r} is not an age", hint="e.g. --older-than 7d (d, h, m, s)")


def prune(c: Context, manifest: Manifest, older_than: float, *, dry_run: bool = False,
          say: Callable[[str], None] = print) -> list[int]:
    """Take down every preview not brought up for ``older_than`` seconds; returns their numbers."""
    old = [r for r in list_previews(manifest) if age_seconds(r) > older_than]
    done: list[int] = []
    for record in old:
        say(f"{'would take' if dry_run else 'taking'} down {record.environment} "
            f"(last up {record.updated})")
        try:
            preview_down(c, manifest, record.number, dry_run=dry_run,
                         out=io.StringIO() if dry_run else None)
        except DomeError as error:
            say(f"  {record.environment}: {error.message}")
            continue
        done.append(record.number)
    return done
