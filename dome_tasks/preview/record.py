"""What a preview owns, recorded in the account itself: its workers and the resources it created,
with their ids. ``preview-down`` deletes exactly these and nothing else.

The records live in the Workers KV namespace ``dome-previews`` of the template environment's
account (beside ``dome-history``), one key per preview (``pr-7``), so CI's ``preview-up`` on a
pull request and a ``preview-down`` from a laptop read the same one. A record is written before
anything is created and after each creation, so an interrupted ``preview-up`` still leaves a
record of what exists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dome_tasks._time import utc_now
from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi, path_segment
from dome_tasks.errors import DomeError
from dome_tasks.lifecycle.kv_history import KvStore

__all__ = ["NAMESPACE_TITLE", "Owned", "PreviewRecord", "PreviewStore", "PreviewStoreError"]

NAMESPACE_TITLE = "dome-previews"


class PreviewStoreError(DomeError):
    """The record of previews cannot be read or written."""

    exit_code = 1


@dataclass(frozen=True)
class Owned:
    """A resource the preview created: its kind (d1, kv, r2, queue, vectorize), name and id."""

    kind: str
    name: str
    id: str


@dataclass(frozen=True)
class PreviewRecord:
    """One preview: what it was made from and everything it owns."""

    number: int
    template: str
    account: str | None
    created: str
    updated: str
    commit: str | None = None
    workers: Mapping[str, str] = field(default_factory=dict)  # service -> worker
    resources: tuple[Owned, ...] = ()
    seeded: tuple[str, ...] = ()  # "service.BINDING" seeded once
    urls: Mapping[str, str] = field(default_factory=dict)  # service -> URL

    @property
    def environment(self) -> str:
        return f"pr-{self.number}"

    @classmethod
    def new(cls, number: int, template: str, account: str | None) -> PreviewRecord:
        now = utc_now()
        return cls(number, template, account, now, now)

    def owns(self, kind: str, name: str) -> Owned | None:
        return next((r for r in self.resources if r.kind == kind and r.name == name), None)

    def with_resources(self, *owned: Owned) -> PreviewRecord:
        known = {(r.kind, r.name) for r in self.resources}
        return replace(self, resources=self.resources + tuple(
            r for r in owned if (r.kind, r.name) not in known))

    def to_json(self) -> str:
        data = asdict(self)
        data["workers"], data["urls"] = dict(self.workers), dict(self.urls)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreviewRecord:
        return cls(
            number=int(data["number"]), template=str(data["template"]),
            account=data.get("account"), created=str(data["created"]),
            updated=str(data.get("updated") or data["created"]), commit=data.get("commit"),
            workers=dict(data.get("workers") or {}),
            resources=tuple(Owned(str(r["kind"]), str(r["name"]), str(r["id"]))
                            for r in data.get("resources") or ()),
            seeded=tuple(data.get("seeded") or ()), urls=dict(data.get("urls") or {}))


@dataclass
class PreviewStore:
    """The ``dome-previews`` namespace of one account."""

    kv: KvStore

    @classmethod
    def for_account(cls, account: str | None, root: Path,
                    environ: Mapping[str, str] | None = None) -> PreviewStore:
        """The store of ``account``, with the credentials wrangler would use."""
        from dome_tasks.cloudflare.credentials import wrangler_near

        api = CloudflareApi.from_environ(os.environ if environ is None else environ,
                                         account_id=account, wrangler=wrangler_near(root))
        if api is None:
            raise PreviewStoreError(
                "previews are recorded in the Cloudflare account: no credentials or no account id",
                hint="set CLOUDFLARE_API_TOKEN (or run `wrangler login`) and the environment's "
                     "account_id (or CLOUDFLARE_ACCOUNT_ID)")
        return cls(KvStore(api, title=NAMESPACE_TITLE))

    @property
    def api(self) -> CloudflareApi:
        return self.kv.api

    def get(self, number: int) -> PreviewRecord | None:
        namespace = self._namespace(create=False)
        if namespace is None:
            return None
        try:
            body = self.api.call("GET", f"/storage/kv/namespaces/{namespace}/values/"
                                        f"{path_segment(f'pr-{number}')}", raw=True)
        except ApiFailure as error:
            if error.status == 404:
                return None
            raise PreviewStoreError(f"cannot read the record of pr-{number}: {error.message}") from None
        return _parse(body, f"pr-{number}")

    def put(self, record: PreviewRecord) -> PreviewRecord:
        record = replace(record, updated=utc_now())
        namespace = self._namespace(create=True)
        self._call("PUT", f"/storage/kv/namespaces/{namespace}/bulk",
                   [{"key": record.environment, "value": record.to_json()}])
        return record

    def delete(self, number: int) -> None:
        namespace = self._namespace(create=False)
        if namespace is not None:
            self._call("POST", f"/storage/kv/namespaces/{namespace}/bulk/delete", [f"pr-{number}"])

    def list(self) -> list[PreviewRecord]:
        """Every recorded preview, by number."""
        namespace = self._namespace(create=False)
        if namespace is None:
            return []
        names: list[str] = []
        cursor = None
        while True:
            page = self._call("GET", f"/storage/kv/namespaces/{namespace}/keys", None,
                              query={"prefix": "pr-", "limit": 1000, "cursor": cursor}, whole=True)
            names += [str(item["name"]) for item in page.get("result") or []]
            cursor = (page.get("result_info") or {}).get("cursor")
            if not cursor:
                break
        found = [self.get(int(name[3:])) for name in names if name[3:].isdigit()]
        return sorted((r for r in found if r is not None), key=lambda r: r.number)

    def _namespace(self, *, create: bool) -> str | None:
        try:
            return self.kv.namespace(create=create)
        except ApiFailure as error:
            raise PreviewStoreError(f"cannot reach the record of previews: {error.message}",
                                    hint=error.hint) from None

    def _call(self, method: str, path: str, body: Any, **options: Any) -> Any:
        try:
            return self.api.call(method, path, json_body=body, **options)
        except ApiFailure as error:
            raise PreviewStoreError(f"cannot write the record of previews: {error.message}",
                                    hint=error.hint) from None


def _parse(body: bytes, key: str) -> PreviewRecord:
    try:
        return PreviewRecord.from_dict(json.loads(body))
    except (ValueError, TypeError, KeyError) as error:
        raise PreviewStoreError(f"the record of {key} is unreadable: {error}",
                                hint="delete it in the dome-previews KV namespace") from None
