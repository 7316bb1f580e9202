"""dome's own state in the Cloudflare account: one small D1 database, ``dome-state``.

It holds what every machine that deploys must see the same way, at once:

* ``dome_history``: the deploy history, one row per ledger record (its JSON whole);
* ``dome_locks``: the account lock of each (environment, worker) being changed, and of each
  environment's migrations (see :mod:`dome_tasks.lifecycle.account_lock`);
* ``dome_meta``: small facts, such as when the Workers KV history was carried over.

D1 is strongly consistent (one primary per database): a record written by CI is listed by a
laptop the moment the write returns, and a conditional ``INSERT … ON CONFLICT … WHERE`` is
atomic for every client. Workers KV, where the history lived before, is eventually consistent
(up to 60 s) and has no compare-and-set, so it could keep neither a lock nor a history that a
lock's next holder reads. The database is created on the first write (or lock) and its schema
with it; reads create nothing.

**Carried over from KV.** The first time a machine uses the database, the records of the old
``dome-history`` KV namespace (when there is one) are copied into it, once per account
(``INSERT OR IGNORE``: two machines doing it at once copy each record once); the namespace is
left as it was. Until the database exists, reads list the KV namespace instead.

:class:`AccountStore` is the shared driver of :mod:`dome_tasks.lifecycle.record_store`
(``put``, ``list``, ``defer``); the history's policy lives above it
(:class:`~dome_tasks.lifecycle.history.History`), the lock's statements beside it
(:mod:`dome_tasks.lifecycle.account_lock`): a lock's release writes the records held back for
its scope in the same transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi
from dome_tasks.cloudflare.d1 import D1Client
from dome_tasks.lifecycle.kv_history import NAMESPACE_TITLE, KvStore, key_prefix
from dome_tasks.lifecycle.ledger import LedgerProblem, LedgerRead, LedgerRecord

if TYPE_CHECKING:
    from dome_tasks.cloudflare.credentials import Credentials
    from dome_tasks.manifest.loader import Manifest

__all__ = ["DATABASE_NAME", "NOW", "AccountStore", "known_path", "stores_for"]

DATABASE_NAME = "dome-state"
#: D1's clock, in seconds since the epoch: every machine's lock expiry is judged by one clock.
NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_IMPORTED = "kv_history_imported"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS dome_history (
  id TEXT PRIMARY KEY, environment TEXT NOT NULL, service TEXT NOT NULL,
  time TEXT NOT NULL, kind TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS dome_history_by_target ON dome_history (environment, service, time, id);
CREATE TABLE IF NOT EXISTS dome_locks (
  scope TEXT PRIMARY KEY, token TEXT NOT NULL, holder TEXT NOT NULL,
  since REAL NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS dome_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
SELECT value FROM dome_meta WHERE key = '{_IMPORTED}';
"""
_INSERT = """
INSERT OR IGNORE INTO dome_history (id, environment, service, time, kind, record)
SELECT json_extract(value, '$.id'), json_extract(value, '$.environment'),
       json_extract(value, '$.service'), json_extract(value, '$.time'),
       json_extract(value, '$.kind'), value
FROM json_each(?1)
"""
_PAGE = 500
_LIST = f"""
SELECT time, id, record FROM dome_history
WHERE (?1 = '' OR environment = ?1) AND (?2 = '' OR service = ?2)
  AND (time > ?3 OR (time = ?3 AND id > ?4))
ORDER BY time, id LIMIT {_PAGE}
"""
_CHUNK = 256 * 1024  # bytes of records per INSERT (D1 takes up to 100 KB of SQL, 2 MB a value)
_GONE = 7404  # the database could not be found
_SQL_ERROR = 7500  # e.g. "no such table": the schema is gone
T = TypeVar("T")


@dataclass
class AccountStore:
    """The ``dome-state`` database of one account (shared by that account's environments): the
    record store every machine sees, and the table of its locks."""

    api: CloudflareApi
    note: Callable[[str], None] = lambda message: None  # says what the carry-over did
    #: where the id of a database found ready is remembered (.dome/cache/dome-state.json), so
    #: that the next run skips finding it and making its schema: two waits on the API
    known: Path | None = None
    database: D1Client = field(init=False)
    _ready: bool = field(default=False, repr=False)
    _remembered: bool = field(default=False, repr=False)  # ready from ``known``, unchecked
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: the records of each lock scope this run holds, written with the lock's release
    _held_back: dict[str, list[LedgerRecord]] = field(default_factory=dict, repr=False)
    #: told the records a release wrote (the history then drops them from its outbox)
    written: Callable[[Sequence[LedgerRecord]], None] = lambda records: None

    def __post_init__(self) -> None:
        self.database = D1Client(self.api, DATABASE_NAME)

    def ready(self, *, create: bool) -> bool:
        """Whether the database is there with its schema (made when ``create``); the first
        time, the KV history is carried over."""
        with self._lock:
            if self._ready:
                return True
            known = _recall(self.known, self._account_key)
            if known is not None:
                self.database._id, self._ready, self._remembered = known, True, True
                return True
            if self.database.database_id(create=create) is None:
                return False
            *_, imported = self.database.script(_SCHEMA)
            if not imported.get("results"):
                self._carry_over_kv()
            self._ready = True
            _remember(self.known, self._account_key, self.database.database_id(create=False))
            return True

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """One statement on the database (made first when absent)."""
        return self._checked(lambda: self.database.query(sql, params), create=True)

    @property
    def _account_key(self) -> str:
        return f"{self.api.base_url} {self.api.account_id}"

    def _checked(self, call: Callable[[], T], *, create: bool) -> T:
        """``call()`` once the database is ready. When the id remembered from an earlier run
        is stale (the database or its schema is gone), it is forgotten and found again, and
        ``call()`` runs once more: nothing happened on a database that is not there."""
        self.ready(create=create)
        try:
            return call()
        except ApiFailure as error:
            if not self._remembered or error.code not in (_GONE, _SQL_ERROR):
                raise
            with self._lock:
                _remember(self.known, self._account_key, None)
                self.database._id, self._ready, self._remembered = None, False, False
            if not self.ready(create=create):
                raise
            return call()

    # -- records written with a lock's release ---------------------------------------------------

    def hold_back(self, scope: str) -> None:
        """From now on, records of *scope* (a lock this run holds) wait for its release."""
        with self._lock:
            self._held_back.setdefault(scope, [])

    def defer(self, scope: str, record: LedgerRecord) -> bool:
        """Keep *record* for the release of *scope*'s lock; False when that lock is not held."""
        with self._lock:
            if scope not in self._held_back:
                return False
            self._held_back[scope].append(record)
            return True

    def release(self, scope: str, sql: str, params: Sequence[Any]) -> None:
        """Write the records held back for *scope*, then run the lock's release statement: one
        request, one transaction, so the lock's next holder lists them."""
        with self._lock:
            records = self._held_back.pop(scope, [])
        statements = [(_INSERT, (chunk,)) for chunk in _chunks(records)] + [(sql, tuple(params))]
        self._checked(lambda: self.database.batch(statements), create=True)
        if records:
            self.written(records)

    # -- the history -----------------------------------------------------------------------------

    def put(self, records: Sequence[LedgerRecord]) -> None:
        """Write ``records`` (a record already there is kept: records never change)."""
        if records:
            self._checked(lambda: self._insert(records), create=True)

    def list(self, environment: str | None = None, service: str | None = None) -> LedgerRead:
        """The records of one environment (or one service in it, or all), oldest first."""
        if not self.ready(create=False):  # not carried over yet: the KV history, if any
            records, problems = KvStore(self.api).list(key_prefix(environment, service))
        else:
            records, problems = self._checked(lambda: self._list(environment, service),
                                              create=False)
        return LedgerRead(tuple(records), tuple(problems))

    def _list(self, environment: str | None, service: str | None
              ) -> tuple[list[LedgerRecord], list[LedgerProblem]]:
        records: list[LedgerRecord] = []
        problems: list[LedgerProblem] = []
        after = ("", "")
        while True:
            rows = self.database.query(_LIST, (environment or "", service or "", *after))
            for row in rows:
                try:
                    data = json.loads(row["record"])
                    if not isinstance(data, dict):
                        raise TypeError("not a JSON object")
                    records.append(LedgerRecord.from_dict(data))
                except (ValueError, TypeError, KeyError) as error:
                    problems.append(LedgerProblem(0, str(row.get("id"))[:200], str(error)))
            if len(rows) < _PAGE:
                return records, problems
            after = (rows[-1]["time"], rows[-1]["id"])

    def _insert(self, records: Sequence[LedgerRecord]) -> None:
        for chunk in _chunks(records):
            self.database.query(_INSERT, (chunk,))

    def _carry_over_kv(self) -> None:
        from dome_tasks._time import utc_now

        records, _problems = KvStore(self.api).list("")
        self._insert(records)
        self.database.query("INSERT OR REPLACE INTO dome_meta (key, value) VALUES (?1, ?2)",
                            (_IMPORTED, json.dumps({"time": utc_now(), "records": len(records)})))
        if records:
            self.note(f"history: carried {len(records)} record(s) over from Workers KV "
                      f"({NAMESPACE_TITLE}) into D1 ({DATABASE_NAME}); the KV namespace is no "
                      "longer written")


def _chunks(records: Sequence[LedgerRecord]) -> Iterator[str]:
    """*records* as JSON arrays of at most ``_CHUNK`` bytes each (one INSERT each)."""
    chunk: list[str] = []
    size = 0
    for record in records:
        text = record.to_json()
        if chunk and size + len(text) > _CHUNK:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 0
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield "[" + ",".join(chunk) + "]"


NO_CREDENTIALS = ("no Cloudflare credentials: set CLOUDFLARE_API_TOKEN or run `wrangler login` "
                  "to share the history and the locks through Cloudflare")


def _recall(known: Path | None, account: str) -> str | None:
    """The database id remembered for *account* in *known* (None: none, or unreadable)."""
    if known is None:
        return None
    try:
        value = json.loads(known.read_text(encoding="utf-8")).get(account)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None


def _remember(known: Path | None, account: str, database_id: str | None) -> None:
    """Remember (None: forget) *account*'s ready database in *known*; a cache, so a failure to
    write it only costs the next run its two reads."""
    from dome_tasks._atomic import write_atomic

    if known is None:
        return
    try:
        data = json.loads(known.read_text(encoding="utf-8"))
        data = data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        data = {}
    if database_id is None:
        data.pop(account, None)
    else:
        data[account] = database_id
    try:
        known.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(known, json.dumps(data, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass


def known_path(folder: Path) -> Path:
    """Where a workspace remembers each account's ready ``dome-state`` database: under its
    ``.dome`` *folder* (the ledger's)."""
    return folder / "cache" / f"{DATABASE_NAME}.json"


def stores_for(manifest: Manifest, environ: Mapping[str, str], credentials: Credentials | None,
               *, timeout: float = 10.0, known: Path | None = None
               ) -> tuple[dict[str, AccountStore | None], str | None]:
    """One store per account, shared by the manifest's remote environments in it (None for an
    environment without credentials or account id); and why there is none, if so. *known*:
    where the stores remember their ready database (:func:`known_path`)."""
    stores: dict[str, AccountStore | None] = {}
    by_account: dict[tuple[str, str], AccountStore] = {}
    reason = None
    for name, env in manifest.environments.items():
        if env.is_local:
            continue
        account = env.account_id or environ.get("CLOUDFLARE_ACCOUNT_ID")
        if credentials is None or not account:
            stores[name] = None
            reason = reason or (NO_CREDENTIALS if account else
                                "no account id: set account_id or CLOUDFLARE_ACCOUNT_ID")
            continue
        api = CloudflareApi.with_credentials(environ, credentials, account, timeout=timeout)
        stores[name] = by_account.setdefault((api.base_url, account),
                                             AccountStore(api, known=known))
    return stores, reason
