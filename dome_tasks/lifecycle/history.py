"""The shared deploy history: kept in Cloudflare itself, so every machine sees the same one.

Like Helm keeps a release's history in the cluster it deploys to, dome-tasks keeps each
environment's history in the Cloudflare account that serves it: the ``dome_history`` table of
the account's ``dome-state`` D1 database (:mod:`dome_tasks.lifecycle.account_store`), which
also holds the account locks. D1 is strongly consistent: what one machine wrote, the next
lock holder reads.

The local ``.dome/ledger.jsonl`` stays as a read-through cache: reads merge the shared records
with it (by record id; the shared record wins) and append shared records the machine had not
seen, so ``history`` still answers offline. Writes go to both. When Cloudflare cannot be reached
the record is kept locally, queued in ``<ledger>.unsynced``, and pushed on the next run.
Credentials are wrangler's (an API token, a global key, or ``wrangler login``; see
:mod:`dome_tasks.cloudflare.credentials`); without any, the history is this machine's only.

Before D1, the history lived in a Workers KV namespace called ``dome-history``, one key per
record (``<environment>/<service>/<time>-<kind>-<id>``, the record as the key's metadata).
:class:`KvStore` still reads it: its records are carried over into D1 once per account.

A rehearsal (:meth:`History.for_rehearsal`) writes only to the emulator's account: never to the
real ledger, never to the real account.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks._atomic import exclusive, write_atomic
from dome_tasks._background import in_background
from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi, path_segment
from dome_tasks.cloudflare.credentials import find_credentials, wrangler_near
from dome_tasks.lifecycle.account_store import AccountStore, known_path, stores_for
from dome_tasks.lifecycle.ledger import Ledger, LedgerProblem, LedgerRead, LedgerRecord, select

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest

__all__ = [
    "NAMESPACE_TITLE",
    "History",
    "KvStore",
    "Outbox",
    "key_prefix",
    "metadata_summary",
    "record_key",
]

NAMESPACE_TITLE = "dome-history"
METADATA_LIMIT = 1024  # bytes of JSON, the API's limit
# What a store call can raise: the API failed, or answered in a shape we did not expect.
_STORE_ERRORS = (ApiFailure, KeyError, TypeError, ValueError, AttributeError)
_CORE = ("kind", "service", "environment", "outcome", "time", "id", "worker", "version_id",
         "from_version", "to_version", "percent", "verified", "automatic", "schema")


def record_key(record: LedgerRecord) -> str:
    """``<environment>/<service>/<time>-<kind>-<id>``: sorts by time under each prefix."""
    return f"{record.environment}/{record.service}/{record.time}-{record.kind}-{record.id}"


def key_prefix(environment: str | None = None, service: str | None = None) -> str:
    """The key prefix of one environment, or one service in it ('' for everything)."""
    if environment is None:
        return ""
    return f"{environment}/" if service is None else f"{environment}/{service}/"


def _size(data: Mapping[str, Any]) -> int:
    return len(json.dumps(data, separators=(",", ":")).encode("utf-8"))


def metadata_summary(record: LedgerRecord) -> dict[str, Any]:
    """The record as key metadata: whole when it fits in 1024 bytes, else ``partial``."""
    data = json.loads(record.to_json())
    if _size(data) <= METADATA_LIMIT:
        return data
    data.pop("extra", None)
    data["partial"] = True
    if isinstance(data.get("reason"), str) and len(data["reason"]) > 160:
        data["reason"] = data["reason"][:159] + "…"
    if _size(data) > METADATA_LIMIT:
        data = {k: v for k, v in data.items() if k in _CORE} | {"partial": True}
    return data


# --- the KV history of earlier versions (read to carry it over) ------------------------------


@dataclass
class KvStore:
    """The ``dome-history`` namespace of one account, over the API (earlier versions wrote the
    history there; it is read to carry it over into D1)."""

    api: CloudflareApi
    title: str = NAMESPACE_TITLE
    _namespace_id: str | None = field(default=None, repr=False)

    def namespace(self, *, create: bool) -> str | None:
        """The namespace id, found by title (created when ``create`` and absent)."""
        if self._namespace_id:
            return self._namespace_id
        page = 1
        while True:
            spaces = self.api.call("GET", "/storage/kv/namespaces", query={
                "page": page, "per_page": 100, "order": "title", "direction": "asc"}) or []
            for space in spaces:
                if space.get("title") == self.title:
                    self._namespace_id = str(space["id"])
                    return self._namespace_id
            if len(spaces) < 100:
                break
            page += 1
        if not create:
            return None
        try:
            created = self.api.call("POST", "/storage/kv/namespaces", json_body={"title": self.title})
        except ApiFailure as error:
            if error.code == 10014:  # another machine created it a moment ago
                return self.namespace(create=False)
            raise
        self._namespace_id = str(created["id"])
        return self._namespace_id

    def put(self, records: Sequence[LedgerRecord]) -> None:
        """Write ``records`` (one bulk call per 10,000)."""
        if not records:
            return
        namespace = self.namespace(create=True)
        pairs = [{"key": record_key(r), "value": r.to_json(), "metadata": metadata_summary(r)}
                 for r in records]
        for start in range(0, len(pairs), 10_000):
            self.api.call("PUT", f"/storage/kv/namespaces/{namespace}/bulk",
                          json_body=pairs[start : start + 10_000])

    def list(self, prefix: str = "") -> tuple[list[LedgerRecord], list[LedgerProblem]]:
        """Every record under ``prefix``, oldest first, and the entries that could not be read."""
        namespace = self.namespace(create=False)
        if namespace is None:
            return [], []
        records: list[LedgerRecord] = []
        problems: list[LedgerProblem] = []
        cursor = None
        while True:
            page = self.api.call("GET", f"/storage/kv/namespaces/{namespace}/keys", whole=True,
                                 query={"prefix": prefix, "limit": 1000, "cursor": cursor})
            for item in page.get("result") or []:
                try:
                    records.append(self._record(namespace, item))
                except (ValueError, TypeError, KeyError) as error:
                    problems.append(LedgerProblem(0, str(item.get("name"))[:200], str(error)))
            cursor = (page.get("result_info") or {}).get("cursor")
            if not cursor:
                return records, problems

    def _record(self, namespace: str, item: Mapping[str, Any]) -> LedgerRecord:
        metadata = item.get("metadata")
        if isinstance(metadata, dict) and not metadata.get("partial") and "kind" in metadata:
            return LedgerRecord.from_dict(metadata)
        body = self.api.call("GET", f"/storage/kv/namespaces/{namespace}/values/"
                             f"{path_segment(item['name'])}", raw=True)
        data = json.loads(body)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        return LedgerRecord.from_dict(data)


# --- the queue of records not yet pushed ----------------------------------------------------


@dataclass
class Outbox:
    """Records kept locally because Cloudflare could not be reached (JSON Lines, locked)."""

    path: Path

    def _locked(self) -> AbstractContextManager[None]:
        return exclusive(self.path.with_name(self.path.name + ".lock"))

    def add(self, records: Iterable[LedgerRecord]) -> None:
        lines = "".join(r.to_json() + "\n" for r in records)
        with self._locked(), open(self.path, "a", encoding="utf-8") as out:
            out.write(lines)
            out.flush()
            os.fsync(out.fileno())

    def pending(self) -> list[LedgerRecord]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        found: dict[str, LedgerRecord] = {}
        for line in text.splitlines():
            try:
                record = LedgerRecord.from_dict(json.loads(line))
            except (ValueError, TypeError):
                continue  # a torn line: its record is still in the ledger itself
            found[record.id] = record
        return list(found.values())

    def remove(self, ids: Iterable[str]) -> None:
        """Drop the records with these ids (the rest stays queued)."""
        done = set(ids)
        with self._locked():
            left = [r for r in self.pending() if r.id not in done]
            if not left:
                self.path.unlink(missing_ok=True)
                return
            write_atomic(self.path, "".join(r.to_json() + "\n" for r in left))


# --- the history: shared store + local cache --------------------------------------------------


class History:
    """Reads and writes like :class:`~dome_tasks.lifecycle.ledger.Ledger` (``append``, ``read``,
    ``records``), over the shared store of each environment's account and the local cache.

    ``stores`` maps each environment to its account's store (None: no shared history for it).
    ``cache`` is the local ledger (None in rehearsals). Warnings go to ``warn`` once each.
    """

    def __init__(
        self,
        cache: Ledger | None,
        stores: Mapping[str, AccountStore | None],
        *,
        outbox: Outbox | None = None,
        warn: Callable[[str], None] | None = None,
        off_reason: str | None = None,
    ) -> None:
        self.cache = cache
        self.stores = dict(stores)
        self.outbox = outbox
        self._warn = warn or (lambda message: print(message, file=sys.stderr, flush=True))
        self._warned: set[str] = set()
        self._off_reason = off_reason
        # (store, environment, service) -> its records; a Future while a prefetch runs
        self._listed: dict[tuple[int, str | None, str | None],
                           list[LedgerRecord] | Future[Any]] = {}
        self._synced = False
        for store in self.stores.values():
            if store is not None:
                store.note = self._note
                store.written = self._written

    # -- construction --------------------------------------------------------------------------

    @classmethod
    def for_manifest(
        cls,
        manifest: Manifest,
        ledger_path: Path | str,
        environ: Mapping[str, str] | None = None,
        *,
        timeout: float = 10.0,
        warn: Callable[[str], None] | None = None,
    ) -> History:
        """The history of ``manifest``'s remote environments, cached in ``ledger_path``."""
        env = os.environ if environ is None else environ
        path = Path(ledger_path)
        credentials = find_credentials(env, wrangler=wrangler_near(manifest.root))
        stores, reason = stores_for(manifest, env, credentials, timeout=timeout,
                                    known=known_path(path.parent))
        return cls(Ledger(path), stores, outbox=Outbox(path.with_name(path.name + ".unsynced")),
                   warn=warn, off_reason=reason)

    @classmethod
    def for_rehearsal(
        cls,
        manifest: Manifest,
        emulator_environ: Mapping[str, str],
        *,
        warn: Callable[[str], None] | None = None,
    ) -> History:
        """A rehearsal's history: the emulator's account only (no local file, no real account)."""
        stores, reason = stores_for(manifest, emulator_environ,
                                    find_credentials(emulator_environ))
        if any(store is not None and not store.api.is_loopback for store in stores.values()):
            raise ValueError("a rehearsal history must point at the emulator (127.0.0.1)")
        return cls(None, stores, warn=warn, off_reason=reason)

    # -- the Ledger interface --------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.cache.path if self.cache is not None else Path("(rehearsal: the emulator's D1)")

    @property
    def unsynced(self) -> list[LedgerRecord]:
        """Records written here that Cloudflare does not have yet."""
        return self.outbox.pending() if self.outbox is not None else []

    def append(self, record: LedgerRecord) -> LedgerRecord:
        """Write ``record`` to the cache, then to the shared store (queued when unreachable)."""
        if self.cache is not None:
            self.cache.append(record)
        self.sync()
        store = self.stores.get(record.environment)
        for (store_id, environment, service) in list(self._listed):
            if (store is not None and store_id == id(store)
                    and environment in (None, record.environment)
                    and service in (None, record.service)):
                try:
                    self._list(store, environment, service).append(record)
                except _STORE_ERRORS:
                    pass  # the prefetch failed: the next read lists again
        if store is None:
            if self._off_reason and self.cache is not None:
                self._note(f"history: kept in {self.cache.path} only ({self._off_reason})")
            return record
        if store.defer(f"{record.environment}/{record.worker}", record):
            if self.outbox is not None:  # kept locally until the lock's release writes it
                self.outbox.add([record])
            return record
        try:
            store.put([record])
        except _STORE_ERRORS as error:
            if self.outbox is None:
                self._note(f"history: could not record in the shared history: {_reason(error)}")
                return record
            self.outbox.add([record])
            self._note(f"history: Cloudflare D1 unreachable ({_reason(error)}); the record is kept "
                       f"in {self.path} and will be pushed on the next run")
        return record

    def read(self) -> LedgerRead:
        """Every record of the manifest's environments, oldest first (shared ones win)."""
        return self._read(None, None)

    def records(self, service: str | None = None, environment: str | None = None
                ) -> tuple[LedgerRecord, ...]:
        return tuple(select(self._read(service, environment).records, service=service,
                            environment=environment))

    def prefetch(self, environment: str) -> None:
        """Start listing *environment*'s shared records on a daemon thread, so that the first
        read of them (``records(…, environment)``) waits for less: reads beside the task's
        other work. Records appended meanwhile are added to what it finds."""
        for store, scope, _ in self._sources(None, environment):
            key = (id(store), *scope)
            if key not in self._listed:
                self._listed[key] = in_background(store.list, *scope, name="dome-history")

    # -- sync and merge --------------------------------------------------------------------------

    def sync(self) -> int:
        """Push the queued records (once per object); returns how many were pushed."""
        if self._synced or self.outbox is None:
            return 0
        self._synced = True
        pending = self.outbox.pending()
        pushed: list[str] = []
        by_store: dict[int, tuple[AccountStore, list[LedgerRecord]]] = {}
        for record in pending:
            store = self.stores.get(record.environment)
            if store is not None:
                by_store.setdefault(id(store), (store, []))[1].append(record)
        for store, records in by_store.values():
            try:
                store.put(records)
            except _STORE_ERRORS as error:
                self._note(f"history: {len(records)} record(s) still not pushed to Cloudflare D1 "
                           f"({_reason(error)}); trying again on the next run")
                continue
            pushed += [r.id for r in records]
        if pushed:
            self.outbox.remove(pushed)
            self._note(f"history: pushed {len(pushed)} record(s) kept locally while Cloudflare "
                       "was unreachable")
        return len(pushed)

    def _read(self, service: str | None, environment: str | None) -> LedgerRead:
        self.sync()
        local = self.cache.read() if self.cache is not None else LedgerRead(())
        merged: dict[str, LedgerRecord] = {r.id: r for r in local.records}  # later lines win
        problems = list(local.problems)
        shared: list[LedgerRecord] = []
        for store, scope, wanted in self._sources(service, environment):
            try:
                found = self._list(store, *scope)
            except _STORE_ERRORS as error:
                self._note(f"history: the shared history is unreachable ({_reason(error)}); "
                           f"showing what {self.path} holds")
                continue
            shared += [r for r in found if r.environment in wanted]
        new = [r for r in shared if merged.get(r.id) != r]
        merged.update({r.id: r for r in shared})
        if new and self.cache is not None:
            try:
                self.cache.extend(new)
            except OSError:
                pass  # a read-only cache still reads
        records = sorted(merged.values(), key=lambda r: (r.moment, r.id))
        return LedgerRead(tuple(records), tuple(problems))

    def _sources(self, service: str | None, environment: str | None
                 ) -> list[tuple[AccountStore, tuple[str | None, str | None], set[str]]]:
        """(store, (environment, service) to list, environments wanted) for a query."""
        if environment is not None:
            store = self.stores.get(environment)
            return [(store, (environment, service), {environment})] if store else []
        grouped: dict[int, tuple[AccountStore, set[str]]] = {}
        for name, store in self.stores.items():
            if store is not None:
                grouped.setdefault(id(store), (store, set()))[1].add(name)
        return [(store, (None, None), names) for store, names in grouped.values()]

    def _list(self, store: AccountStore, environment: str | None, service: str | None
              ) -> list[LedgerRecord]:
        key = (id(store), environment, service)
        known = self._listed.get(key)
        if isinstance(known, list):
            return known
        try:
            records, problems = (store.list(environment, service) if known is None
                                 else known.result())
        except BaseException:
            self._listed.pop(key, None)  # a failed prefetch: the next read tries again
            raise
        for problem in problems:
            self._note(f"history: unreadable shared record {problem.text}: {problem.error}")
        self._listed[key] = records
        return records

    def _written(self, records: Sequence[LedgerRecord]) -> None:
        """A lock's release wrote *records* to the shared store: no longer pending locally."""
        if self.outbox is not None:
            self.outbox.remove([r.id for r in records])

    def _note(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self._warn(message)


def _reason(error: Exception) -> str:
    if isinstance(error, ApiFailure):
        return error.message
    return f"unexpected answer: {type(error).__name__}: {error}"
