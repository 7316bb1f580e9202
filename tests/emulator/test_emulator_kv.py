"""Workers KV in the emulator, checked against the REAL wrangler's `kv` commands: what the shared
history writes through the API, wrangler reads back, and the other way round."""

from __future__ import annotations

import json

from dome_tasks.cloudflare.api import CloudflareApi
from dome_tasks.lifecycle.kv_history import NAMESPACE_TITLE, KvStore, metadata_summary, record_key
from dome_tasks.lifecycle.ledger import LedgerRecord


def record(version: str, time: str = "2026-03-04T10:00:00.000Z") -> LedgerRecord:
    return LedgerRecord(kind="deploy", service="silo", environment="staging", outcome="success",
                  version_id=version, verified=True, time=time, actor="github:alice")


def store_for(emulator) -> KvStore:
    return KvStore(CloudflareApi.from_environ(emulator.env()))


def test_wrangler_lists_and_reads_what_the_history_wrote(make_wrangler, emulator) -> None:
    wrangler = make_wrangler()
    store = store_for(emulator)
    written = record("v1")
    store.put([written])
    namespace = store.namespace(create=False)

    spaces = json.loads(wrangler("kv", "namespace", "list").stdout)
    assert [(s["id"], s["title"]) for s in spaces] == [(namespace, NAMESPACE_TITLE)]

    listed = json.loads(wrangler("kv", "key", "list", "--namespace-id", namespace,
                                 "--prefix", "staging/silo/", "--remote").stdout)
    assert listed == [{"name": record_key(written), "metadata": metadata_summary(written)}]

    value = wrangler("kv", "key", "get", record_key(written), "--namespace-id", namespace,
                     "--remote", "--text").stdout
    assert LedgerRecord.from_dict(json.loads(value)) == written


def test_the_history_reads_what_wrangler_wrote_with_metadata(make_wrangler, emulator) -> None:
    wrangler = make_wrangler()
    store = store_for(emulator)
    namespace = store.namespace(create=True)
    by_hand = record("v-by-hand")
    wrangler("kv", "key", "put", record_key(by_hand), by_hand.to_json(), "--namespace-id",
             namespace, "--metadata", json.dumps(metadata_summary(by_hand)), "--remote")
    stored = emulator.state.kv[namespace].entries[record_key(by_hand)]
    assert stored.metadata == metadata_summary(by_hand)  # multipart `value` + `metadata` fields
    records, problems = store.list("staging/")
    assert records == [by_hand] and problems == []


def test_wrangler_follows_the_cursor_over_many_keys(make_wrangler, emulator, tmp_path) -> None:
    wrangler = make_wrangler()
    namespace = store_for(emulator).namespace(create=True)
    pairs = [{"key": f"k/{n:05d}", "value": str(n), "metadata": {"n": n}} for n in range(1005)]
    (tmp_path / "pairs.json").write_text(json.dumps(pairs))
    wrangler("kv", "bulk", "put", str(tmp_path / "pairs.json"), "--namespace-id", namespace,
             "--remote")
    listed = json.loads(wrangler("kv", "key", "list", "--namespace-id", namespace,
                                 "--remote").stdout)
    assert [item["name"] for item in listed] == [p["key"] for p in pairs]
    assert listed[1004]["metadata"] == {"n": 1004}
    assert len(emulator.requests_matching("GET", "/keys$")) == 2  # two pages, one cursor
    got = wrangler("kv", "key", "get", "k/00042", "--namespace-id", namespace, "--remote",
                   "--text")
    assert got.stdout.strip() == "42"
    wrangler("kv", "key", "delete", "k/00042", "--namespace-id", namespace, "--remote")
    assert "k/00042" not in emulator.state.kv[namespace].entries
