"""The emulator's newer fault kinds over plain HTTP: request-body matching, skip, answers cut
short, slow answers whose client hangs up, and delays released when the emulator stops."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest
from test_emulator_unit import call

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.faults import FaultSet


@pytest.fixture
def emu():
    with Emulator() as emulator:
        yield emulator


def query_path(emu: Emulator) -> str:
    return f"/accounts/{emu.account_id}/d1/database/db-1/query"


def test_body_matching_and_skip_pick_the_request():
    faults = FaultSet()
    rule = faults.add(method="POST", path=r"/query$", body_matches="0002_", skip=1, status=500)
    assert faults.take("POST", "/a/query", b'{"sql": "insert 0001_init"}') is None
    assert faults.take("POST", "/a/query", b'{"sql": "insert 0002_more"}') is None  # skipped
    assert faults.take("POST", "/a/query", b'{"sql": "insert 0002_more"}') is rule
    assert (rule.seen, rule.hits) == (2, 1)


def test_a_d1_failure_after_the_first_migration(emu):
    emu.faults.add(method="POST", path=r"/query$", body_matches="second", status=500)
    assert call(emu, "POST", query_path(emu), {"sql": "create table t(x); -- first"})[0] == 200
    status, _, raw = call(emu, "POST", query_path(emu), {"sql": "insert into t values (1); -- second"})
    assert status == 500 and json.loads(raw)["errors"][0]["code"] == 10013
    assert emu.state.d1["db-1"].rows("select * from t") == []


def test_an_answer_cut_mid_body_after_the_change_was_made(emu):
    emu.faults.add(method="POST", path=r"/query$", cut_after=7)
    connection = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    body = json.dumps({"sql": "create table t(x); insert into t values (1)"})
    connection.request("POST", "/client/v4" + query_path(emu), body=body,
                       headers={"Authorization": f"Bearer {emu.token}",
                                "Content-Type": "application/json"})
    answer = connection.getresponse()
    assert answer.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        answer.read()
    assert len(cut.value.partial) == 7
    assert emu.state.d1["db-1"].rows("select x from t") == [{"x": 1}]  # the change was made


def test_a_client_that_hangs_up_during_a_delay_changes_nothing(emu):
    rule = emu.faults.add(method="POST", path=r"/query$", delay=30)
    body = json.dumps({"sql": "create table t(x)"}).encode()
    raw = socket.create_connection(("127.0.0.1", emu.port))
    raw.sendall(
        f"POST /client/v4{query_path(emu)} HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {emu.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    deadline = time.monotonic() + 10
    while rule.hits == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    raw.close()  # the client gives up (Ctrl-C) while the API is slow
    emu.faults.release()  # end the delay now instead of in 30 s
    deadline = time.monotonic() + 10
    while not emu.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(r.status, r.fault) for r in emu.requests] == [(0, True)]
    assert "db-1" not in emu.state.d1 or emu.state.d1["db-1"].tables() == []


def test_stopping_the_emulator_releases_a_long_delay():
    emulator = Emulator().start()
    emulator.faults.add(path=r"^/user$", delay=400)
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(call(emulator, "GET", "/user")[0])
        except OSError as error:
            outcome.append(error)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not next(iter(emulator.faults)).hits and time.monotonic() < deadline:
        time.sleep(0.02)
    emulator.stop()
    thread.join(timeout=20)
    assert not thread.is_alive() and outcome  # answered (or refused), not held for 400 s
