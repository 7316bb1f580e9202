"""The history earlier versions kept in Workers KV: the ``dome-history`` namespace of an account.

Before D1 (:mod:`dome_tasks.lifecycle.account_store`), the shared history lived in a Workers
KV namespace called ``dome-history``, one key per record
(``<environment>/<service>/<time>-<kind>-<id>``, the record as the key's metadata). It is no
longer written by the history: :class:`KvStore` reads it so that the account's store can carry
its records over into D1 once (and list it until then). Previews keep their own records in a
namespace of their own through it (:mod:`dome_tasks.preview.record`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi, path_segment
from dome_tasks.lifecycle.ledger import LedgerProblem, LedgerRecord

__all__ = ["NAMESPACE_TITLE", "KvStore", "key_prefix", "metadata_summary", "record_key"]

NAMESPACE_TITLE = "dome-history"
METADATA_LIMIT = 1024  # bytes of JSON, the API's limit
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
