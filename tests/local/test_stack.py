"""The three sample services under real wrangler dev / workerd, brought up once per module.

Tests run in file order and share the stack: the last one stops it.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

import psutil
import pytest
from local_helpers import http, make_env, write_sample_configs

from dome_tasks.local import deploy, format_status, migrate_all, procs, start_stack, status, stop

pytestmark = pytest.mark.integration

PORTS = "28787-28799"
BUSY_PORT = 28787  # held by the fixture: the range must skip it


@pytest.fixture(scope="module")
def stack(wrangler, tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    env = make_env(root / "state", PORTS)
    services = write_sample_configs(root / "rendered")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", BUSY_PORT))
    blocker.listen()
    began = time.monotonic()
    try:
        records = start_stack(env, [[service] for service in services])  # silo <- constellation <- dome-api
        bring_up = time.monotonic() - began
        yield env, services, {r.service: r for r in records}, bring_up
    finally:
        stop(env)
        blocker.close()


def test_stack_is_up_in_order_on_free_ports(stack):
    env, services, records, bring_up = stack
    print(f"bring-up of {len(services)} services: {bring_up:.1f}s")
    assert list(records) == ["silo", "constellation", "dome-api"]
    ports = [r.port for r in records.values()]
    assert BUSY_PORT not in ports and len(set(ports)) == 3
    assert all(28788 <= p <= 28799 for p in ports)
    table = status(env)
    assert [(s.service, s.state, s.healthy) for s in table] == [
        ("constellation", "running", True),
        ("dome-api", "running", True),
        ("silo", "running", True),
    ]
    assert "silo" in format_status(table)


def test_migrations_applied_once(stack):
    env, services, _, _ = stack
    # start_stack applied 0001 and 0002 already; a second run applies none and says so.
    again = migrate_all(env, services)
    assert [(m.database, m.applied) for m in again] == [("silo-db", ())]
    assert again[0].describe() == "silo: silo-db: no migrations to apply"


def test_request_travels_the_bindings_through_d1_kv_r2(stack):
    _, _, records, _ = stack
    api, silo = records["dome-api"].url, records["silo"].url
    key, value = f"note-{uuid.uuid4().hex[:8]}", "hello from the test"

    code, put = http("POST", f"{api}/notes", {"key": key, "value": value})
    assert code == 200, put
    assert put["via"] == ["dome-api", "constellation", "silo"]
    assert put["d1"] == {"table": "items", "key": key, "written": True}
    assert put["r2"]["key"] == f"items/{key}" and put["r2"]["size"] == len(value)
    assert put["kv"] == {"key": f"note:{key}", "written": True}

    code, got = http("GET", f"{api}/notes/{key}")
    assert code == 200, got
    assert got["via"] == ["dome-api", "constellation", "silo"]
    assert got["d1"]["value"] == value  # read back from silo's D1 row
    assert got["r2"] == {"key": f"items/{key}", "value": value}  # and its R2 object
    assert got["kv"]["value"] == value  # and dome-api's own KV

    # The data really lives in silo: asked directly, it says the same.
    code, direct = http("GET", f"{silo}/items/{key}")
    assert (code, direct["d1"]["value"], direct["via"]) == (200, value, ["silo"])


def test_a_queue_message_crosses_from_silo_to_constellation(stack):
    """silo's EVENTS.send() reaches constellation's queue() in another wrangler dev process
    (wrangler >= 4.107.1), which records it back in silo's D1 as consumed."""
    _, _, records, _ = stack
    silo, constellation = records["silo"].url, records["constellation"].url
    key = f"queued-{uuid.uuid4().hex[:8]}"
    code, put = http("POST", f"{silo}/items", {"key": key, "value": "on the queue"})
    assert (code, put["queue"]) == (200, {"sent": "item.put"}), put
    deadline, seen = time.monotonic() + 30, []
    while time.monotonic() < deadline:
        code, listed = http("GET", f"{constellation}/queue")
        seen = [e for e in listed.get("events", []) if e.get("key") == key]
        if seen:
            break
        time.sleep(0.3)
    assert seen == [{"kind": "item.put", "key": key, "consumed_by": "constellation"}], listed
    assert listed["consumed"] >= 1


def test_redeploy_restarts_one_copy_and_keeps_data(stack):
    env, services, records, _ = stack
    api = next(s for s in services if s.name == "dome-api")
    old = records["dome-api"]
    key = f"keep-{uuid.uuid4().hex[:8]}"
    assert http("POST", f"{old.url}/notes", {"key": key, "value": "durable"})[0] == 200

    began = time.monotonic()
    migrations, new = deploy(env, api)
    print(f"redeploy of dome-api: {time.monotonic() - began:.1f}s")
    records["dome-api"] = new
    assert migrations == []  # dome-api has no D1
    assert new.pid != old.pid and new.port == old.port
    assert procs.group_members(old.pid) == []
    copies = [p for p in psutil.process_iter(["cmdline", "status"])
              if str(api.config) in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]
    assert {os.getpgid(p.pid) for p in copies} == {new.pid}

    code, got = http("GET", f"{new.url}/notes/{key}")
    assert code == 200, got
    assert (got["d1"]["value"], got["r2"]["value"], got["kv"]["value"]) == ("durable",) * 3


def test_redeploy_of_a_dependency_keeps_the_chain(stack):
    env, services, records, _ = stack
    silo = next(s for s in services if s.name == "silo")
    migrations, new = deploy(env, silo)
    # nothing changed since start_stack applied them: wrangler is not even asked
    assert [(m.database, m.applied, m.skipped) for m in migrations] == [("silo-db", (), True)]
    assert procs.group_members(records["silo"].pid) == []
    records["silo"] = new
    key = f"after-{uuid.uuid4().hex[:8]}"
    code, put = http("POST", f"{records['dome-api'].url}/notes", {"key": key, "value": "v2"})
    assert code == 200, put
    assert put["via"] == ["dome-api", "constellation", "silo"]


def test_stop_leaves_no_process(stack):
    env, _, records, _ = stack
    tracked = {}
    for record in records.values():
        for proc in procs.tree(record.pid):
            tracked[proc.pid] = proc
    assert len(tracked) >= 3 * 4  # wrangler's node x2, esbuild and workerd per service
    assert any("workerd" in " ".join(p.cmdline()) for p in tracked.values())

    assert sorted(stop(env)) == ["constellation", "dome-api", "silo"]

    for proc in tracked.values():
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc
    for record in records.values():
        assert procs.group_members(record.pid) == []
    assert list((env.state_dir / "run").glob("*.json")) == []
    assert [s.state for s in status(env, ["silo", "dome-api"])] == ["stopped", "stopped"]
    assert stop(env) == []  # stopping again is a no-op
