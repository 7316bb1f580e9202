"""The emulator over plain HTTP (no wrangler): auth, routing, faults, multipart, D1."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from dome_tasks.testing.emulator import Emulator, serve
from dome_tasks.testing.emulator.d1 import D1Database, D1Error, split_statements
from dome_tasks.testing.emulator.faults import FaultSet
from dome_tasks.testing.emulator.multipart import parse_multipart


def call(
    emu: Emulator,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = "default",
    content_type: str = "application/json",
) -> tuple[int, dict[str, str], bytes]:
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(emu.url + path, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {emu.token if token == 'default' else token}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def multipart(parts: list[tuple[str, str | None, str, bytes]]) -> tuple[bytes, str]:
    boundary = "----dome-boundary"
    out = b""
    for name, filename, ctype, body in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += (
            (
                f"--{boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: {ctype}\r\n\r\n"
            ).encode()
            + body
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def emu():
    with Emulator() as emulator:
        yield emulator


def test_requests_without_or_with_a_wrong_token_are_refused(emu):
    for token in (None, "wrong"):
        status, _, body = call(emu, "GET", "/user/tokens/verify", token=token)
        assert status == 401
        assert json.loads(body) == {
            "success": False,
            "errors": [{"code": 10000, "message": "Authentication error"}],
            "messages": [],
            "result": None,
        }
    assert [str(r) for r in emu.requests] == ["GET /user/tokens/verify -> 401"] * 2
    assert call(emu, "GET", "/user/tokens/verify")[0] == 200


@pytest.mark.unrouted_ok
def test_unknown_routes_and_other_accounts_get_cloudflare_errors(emu):
    status, _, body = call(emu, "GET", "/nope")
    assert (status, json.loads(body)["errors"][0]["code"]) == (404, 7000)
    status, _, body = call(emu, "GET", "/accounts/someone-else/workers/subdomain")
    assert (status, json.loads(body)["errors"][0]["code"]) == (404, 7003)
    status, _, body = call(emu, "GET", f"/accounts/{emu.account_id}/workers/services/ghost")
    assert (status, json.loads(body)["errors"][0]["code"]) == (404, 10090)


def test_upload_keeps_modules_byte_exact_and_metadata(emu):
    module = b"export default {};\r\n// crlf kept\r\n"
    meta = {
        "main_module": "index.js",
        "bindings": [{"name": "A", "type": "plain_text", "text": "1"}],
    }
    body, ctype = multipart(
        [
            ("metadata", None, "application/json", json.dumps(meta).encode()),
            ("index.js", "index.js", "application/javascript+module", module),
        ]
    )
    path = f"/accounts/{emu.account_id}/workers/scripts/w"
    status, _, raw = call(emu, "PUT", path, body, content_type=ctype)
    assert status == 200
    version = emu.state.worker("w").current_version()
    assert json.loads(raw)["result"]["deployment_id"] == version.id
    assert version.modules["index.js"].body == module
    assert version.vars == {"A": "1"}
    assert emu.state.traffic("w") == {version.id: 100}


def test_deployment_percentages_must_add_up(emu):
    body, ctype = multipart(
        [
            ("metadata", None, "application/json", b'{"main_module":"i.js"}'),
            ("i.js", "i.js", "application/javascript+module", b"x"),
        ]
    )
    base = f"/accounts/{emu.account_id}/workers/scripts/w"
    call(emu, "PUT", base, body, content_type=ctype)
    v1 = emu.state.worker("w").current_version().id
    split = {"strategy": "percentage", "versions": [{"version_id": v1, "percentage": 50}]}
    status, _, raw = call(emu, "POST", base + "/deployments", split)
    assert (status, json.loads(raw)["errors"][0]["code"]) == (400, 10153)


def test_parse_multipart_rejects_non_multipart():
    with pytest.raises(ValueError):
        parse_multipart(b"{}", "application/json")


def test_faults_match_method_path_and_count():
    faults = FaultSet()
    once = faults.add(method="PUT", path=r"/scripts/[^/]+$", status=429, retry_after=2)
    forever = faults.add(path="/accounts/*/queues*", glob=True, status=500, times=None)
    assert faults.take("GET", "/accounts/a/workers/scripts/x") is None
    assert faults.take("PUT", "/accounts/a/workers/scripts/x") is once
    assert faults.take("PUT", "/accounts/a/workers/scripts/x") is None
    for _ in range(3):
        assert faults.take("GET", "/accounts/a/queues") is forever
    answer = once.response()
    assert answer.status == 429 and answer.headers["Retry-After"] == "2"
    assert json.loads(answer.body)["errors"][0]["code"] == 971


def test_fault_kinds_over_http(emu):
    emu.faults.add(path="^/user$", status=502)
    emu.faults.add(path="^/user/tokens/verify$", code=10000, status=200)
    emu.faults.add(path="^/accounts$", delay=0.3)
    status, headers, body = call(emu, "GET", "/user")
    assert status == 502 and body.startswith(b"<html>") and headers["Content-Type"] == "text/html"
    status, _, body = call(emu, "GET", "/user/tokens/verify")
    assert status == 200 and json.loads(body)["errors"][0]["code"] == 10000
    start = time.monotonic()
    assert call(emu, "GET", "/accounts")[0] == 200
    assert time.monotonic() - start >= 0.3
    assert [r.fault for r in emu.requests] == [True, True, True]


def test_dropped_connection(emu):
    emu.faults.add(path="^/user$", drop=True)
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
        call(emu, "GET", "/user")
    assert emu.requests[0].status == 0


def test_split_statements_respects_quotes_and_triggers():
    sql = "insert into t values ('a;b'); create trigger x after insert on t begin select 1; end; ;"
    assert split_statements(sql) == [
        "insert into t values ('a;b');",
        "create trigger x after insert on t begin select 1; end;",
    ]


def test_d1_batches_are_atomic():
    db = D1Database(uuid="u", name="n")
    db.query("create table t(x); insert into t values (1)")
    with pytest.raises(D1Error, match="SQLITE_ERROR"):
        db.query("insert into t values (2); insert into nope values (3)")
    assert db.rows("select x from t") == [{"x": 1}]


def test_d1_query_over_http_returns_one_result_per_statement(emu):
    path = f"/accounts/{emu.account_id}/d1/database/db-1/query"
    status, _, raw = call(
        emu, "POST", path, {"sql": "create table t(x); insert into t values (1); select * from t"}
    )
    assert status == 200
    results = json.loads(raw)["result"]
    assert [r["results"] for r in results] == [[], [], [{"x": 1}]]
    status, _, raw = call(emu, "POST", path, {"sql": "select * from missing"})
    assert (status, json.loads(raw)["errors"][0]["code"]) == (400, 7500)


def test_d1_params_bind_and_a_conditional_upsert_is_atomic(emu):
    """What dome's account lock sends: one statement with string params, applied or not."""
    path = f"/accounts/{emu.account_id}/d1/database/db-1"
    call(emu, "POST", path + "/query", {"sql": "create table l(scope text primary key, token text)"})
    upsert = ("insert into l values (?1, ?2) on conflict (scope) do update set token = "
              "excluded.token where l.token = ?3 returning token")

    def take(token: str, stale: str) -> list:
        body = {"sql": upsert, "params": ["s", token, stale]}
        return json.loads(call(emu, "POST", path + "/query", body)[2])["result"][0]["results"]

    assert take("a", "") == [{"token": "a"}]  # free: inserted
    assert take("b", "") == []  # held: nothing changed, nothing returned
    assert take("b", "a") == [{"token": "b"}]  # compare-and-set on the holder's token
    status, _, raw = call(emu, "POST", path + "/raw", {"sql": "select * from l where scope = ?1",
                                                      "params": ["none"]})
    assert status == 200
    assert json.loads(raw)["result"][0]["results"] == {"columns": ["scope", "token"], "rows": []}


def test_databases_created_at_once_under_one_name_make_one_database(emu):
    """As in the real API, a name is taken once: the first machine to use the account lock
    creates dome-state, the others racing it are told it exists (and then find it)."""
    start = threading.Barrier(8)
    answers: list[tuple[int, int | None]] = []

    def create() -> None:
        start.wait()
        status, _, raw = call(emu, "POST", f"/accounts/{emu.account_id}/d1/database",
                              {"name": "dome-state"})
        errors = json.loads(raw).get("errors") or [{}]
        answers.append((status, errors[0].get("code")))

    for _ in range(10):  # a race: a few rounds, each on an account without databases
        emu.state.d1.clear()
        answers.clear()
        threads = [threading.Thread(target=create) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(answers) == [(200, None)] + [(400, 7502)] * 7
        assert [db.name for db in emu.state.d1.values()] == ["dome-state"]


def test_strict_emulator_does_not_invent_databases():
    with Emulator(auto_create=False) as emu:
        status, _, raw = call(
            emu, "POST", f"/accounts/{emu.account_id}/d1/database/x/query", {"sql": "select 1"}
        )
        assert (status, json.loads(raw)["errors"][0]["code"]) == (404, 7404)


def test_env_points_wrangler_at_the_emulator(emu):
    env = emu.env()
    assert env["CLOUDFLARE_API_BASE_URL"] == emu.url == f"http://127.0.0.1:{emu.port}/client/v4"
    assert env["CLOUDFLARE_API_TOKEN"] == emu.token
    assert env["CLOUDFLARE_ACCOUNT_ID"] == emu.account_id
    assert env["WRANGLER_SEND_METRICS"] == "false"
    assert env["npm_registry"].startswith(emu.origin)


def test_state_survives_stop():
    emu = Emulator().start()
    emu.state.add_d1("db", "id-1").query("create table t(x)")
    emu.stop()
    assert emu.state.d1["id-1"].tables() == ["t"]


def test_cloudflare_emulator_fixture_from_the_shipped_plugin(cloudflare_emulator):
    assert cloudflare_emulator.url.startswith("http://127.0.0.1:")
    assert call(cloudflare_emulator, "GET", "/user")[0] == 200


def test_serve_prints_exports_and_stops():
    out = io.StringIO()
    stop = threading.Event()
    thread = threading.Thread(
        target=serve, kwargs={"port": 0, "out": out, "stop": stop, "verbose": False}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while "Ctrl-C" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    thread.join(5)
    text = out.getvalue()
    assert "export CLOUDFLARE_API_BASE_URL=http://127.0.0.1:" in text
    assert "export CLOUDFLARE_API_TOKEN=emulator-token" in text
    assert text.endswith("emulator stopped\n")


def test_python_m_emulator_runs_in_the_foreground():
    proc = subprocess.Popen(
        [sys.executable, "-m", "dome_tasks.testing.emulator", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        first = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert first.startswith("Cloudflare API emulator listening on http://127.0.0.1:")


# --- served workers (no wrangler: config rendering, routing, failures) ----------------------


def _upload(emu: Emulator, name: str, metadata: dict[str, Any]) -> None:
    body, ctype = multipart(
        [
            ("metadata", None, "application/json", json.dumps(metadata).encode()),
            ("index.js", "index.js", "application/javascript+module", b"export default {};"),
        ]
    )
    path = f"/accounts/{emu.account_id}/workers/scripts/{name}"
    assert call(emu, "PUT", path, body, content_type=ctype)[0] == 200


def _get_host(emu: Emulator, host: str, path: str = "/health") -> tuple[int, str]:
    req = urllib.request.Request(emu.origin + path, headers={"Host": host})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_render_config_maps_uploaded_bindings_to_local_simulators():
    from dome_tasks.testing.emulator.serving import render_config
    from dome_tasks.testing.emulator.state import Module, Version

    bindings = [
        {"name": "GREETING", "type": "plain_text", "text": "hi"},
        {"name": "LIMITS", "type": "json", "json": {"max": 5}},
        {"name": "TOKEN", "type": "secret_text", "text": "s3cret"},
        {"name": "DB", "type": "d1", "id": "db-id"},
        {"name": "CACHE", "type": "kv_namespace", "namespace_id": "kv-id"},
        {"name": "BUCKET", "type": "r2_bucket", "bucket_name": "objects"},
        {"name": "EVENTS", "type": "queue", "queue_name": "events"},
        {"name": "SILO", "type": "service", "service": "silo-staging", "environment": "production"},
        {"name": "INDEX", "type": "vectorize", "index_name": "embeddings"},
    ]
    version = Version(
        id="v1",
        number=1,
        created_on="now",
        metadata={
            "main_module": "worker.js",
            "bindings": bindings,
            "compatibility_date": "2025-01-01",
            "compatibility_flags": ["nodejs_compat"],
        },
        modules={
            "worker.js": Module("worker.js", "application/javascript+module", b""),
            "data.bin": Module("data.bin", "application/octet-stream", b"\0"),
        },
    )

    config, notes = render_config(
        "api", version, secrets={"API_KEY": "k"}, d1_names={"db-id": "api-db"}
    )

    assert config["name"] == "api" and config["main"] == "worker.js" and config["no_bundle"]
    assert config["compatibility_date"] == "2025-01-01"
    assert config["compatibility_flags"] == ["nodejs_compat"]
    assert config["vars"] == {
        "GREETING": "hi",
        "LIMITS": {"max": 5},
        "TOKEN": "s3cret",
        "API_KEY": "k",
    }
    assert config["d1_databases"] == [
        {"binding": "DB", "database_id": "db-id", "database_name": "api-db"}
    ]
    assert config["kv_namespaces"] == [{"binding": "CACHE", "id": "kv-id"}]
    assert config["r2_buckets"] == [{"binding": "BUCKET", "bucket_name": "objects"}]
    assert config["queues"] == {"producers": [{"binding": "EVENTS", "queue": "events"}]}
    assert config["services"] == [{"binding": "SILO", "service": "silo-staging"}]
    assert config["find_additional_modules"] is True
    assert config["rules"] == [{"type": "Data", "globs": ["data.bin"]}]
    assert notes == ["binding INDEX (vectorize) is not served locally; omitted"]


def test_workers_dev_hosts_name_a_worker(emu):
    assert emu.workers_dev_host("silo") == "silo.emulator.workers.dev"
    assert emu.worker_name_for_host("silo-staging.emulator.workers.dev") == "silo-staging"
    assert emu.worker_name_for_host("Silo.Emulator.workers.dev:443") == "silo"
    assert emu.worker_name_for_host(f"127.0.0.1:{emu.port}") is None
    assert emu.worker_name_for_host("a.b.emulator.workers.dev") is None
    assert emu.worker_name_for_host("silo.other.workers.dev") is None
    assert "INVOKE_DOME_HEALTH_BASE_URL" not in emu.env()


def test_workers_dev_requests_without_serving_say_how_to_turn_it_on(emu):
    status, text = _get_host(emu, "silo.emulator.workers.dev")
    assert status == 404 and "serve_workers=True" in text
    assert emu.requests == []
    assert [str(r) for r in emu.worker_requests] == ["GET silo.emulator.workers.dev/health -> 404"]
    from dome_tasks.testing.emulator import ServeError

    with pytest.raises(ServeError):
        emu.worker_url("silo")


def test_a_worker_that_cannot_start_answers_502_with_the_reason(tmp_path):
    with Emulator(serve_workers=True, wrangler="/bin/false", serve_dir=tmp_path) as emu:
        env = emu.env()
        assert env["INVOKE_DOME_HEALTH_BASE_URL"] == emu.origin
        assert env["INVOKE_DOME_WORKERS_SUBDOMAIN"] == "emulator"
        assert _get_host(emu, "ghost.emulator.workers.dev")[0] == 404
        with pytest.raises(LookupError):
            emu.worker_url("ghost")

        _upload(emu, "broken", {"main_module": "index.js"})
        emu.state.worker("broken").subdomain_enabled = True
        status, text = _get_host(emu, "broken.emulator.workers.dev")

        assert status == 502
        assert "could not serve broken" in text and "exited with code 1" in text
        _upload(emu, "private", {"main_module": "index.js"})  # workers_dev = false
        status, text = _get_host(emu, "private.emulator.workers.dev")
        assert status == 404 and "workers_dev = false" in text
    assert list((tmp_path / "state" / "run").glob("*.json")) == []


def test_vectorize_indexes_over_http(emu):
    base = f"/accounts/{emu.account_id}/vectorize/v2/indexes"
    status, _, raw = call(
        emu, "POST", base, {"name": "e", "config": {"dimensions": 3, "metric": "cosine"}}
    )
    assert status == 200 and json.loads(raw)["result"]["config"] == {
        "dimensions": 3,
        "metric": "cosine",
    }
    assert (
        call(emu, "POST", base, {"name": "e", "config": {"preset": "@cf/baai/bge-base-en-v1.5"}})[0]
        == 409
    )
    assert (
        call(emu, "POST", base, {"name": "x", "config": {"dimensions": 3, "metric": "l7"}})[0]
        == 400
    )
    listed = json.loads(call(emu, "GET", base)[2])["result"]
    assert [i["name"] for i in listed] == ["e"]
    v1 = f"/accounts/{emu.account_id}/vectorize/indexes"
    assert json.loads(call(emu, "GET", v1 + "/e")[2])["result"]["name"] == "e"
    assert json.loads(call(emu, "GET", base + "/e/info")[2])["result"]["dimensions"] == 3
    assert call(emu, "DELETE", base + "/e")[0] == 200
    assert call(emu, "GET", base + "/e")[0] == 404
