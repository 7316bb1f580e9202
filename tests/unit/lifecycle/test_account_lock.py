"""The account lock: one row per scope in the account's dome-state D1 (through the emulator,
whose D1 is real sqlite). Exclusive across "machines" (separate lock objects, threads), refusing
or waiting with the holder named, taking over an expired or dead holder, renewed while held,
released at the end; an unreachable D1 never blocks a deploy."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from dome_tasks.cloudflare.api import CloudflareApi
from dome_tasks.lifecycle.account_lock import AccountLocks
from dome_tasks.lifecycle.account_store import DATABASE_NAME, AccountStore
from dome_tasks.lifecycle.lock import LockBusy
from dome_tasks.testing.emulator import Emulator

SCOPE = "staging/silo-staging"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def machine(emulator: Emulator, **options) -> tuple[AccountLocks, io.StringIO]:
    """One machine's view of the account: its own store and lock objects, its own messages."""
    out = io.StringIO()
    store = AccountStore(CloudflareApi.from_environ(emulator.env()))
    return AccountLocks(store, out=out, poll=0.02, poll_max=0.05, **options), out


def lock_rows(emulator: Emulator) -> list[dict]:
    return emulator.state.d1_by_name(DATABASE_NAME).rows("SELECT * FROM dome_locks")


def plant(emulator: Emulator, *, expires_in: float, host: str, pid: int = 4242,
          started: float | None = None) -> None:
    """A lock row written by another run (``expires_in`` seconds from D1's now)."""
    machine(emulator)[0].store.ready(create=True)
    holder = {"host": host, "user": "github:ci-bot", "pid": pid, "command": "invoke deploy",
              "started": started, "ci": "https://github.com/acme/dome/actions/runs/42"}
    emulator.state.d1_by_name(DATABASE_NAME).query(
        "INSERT INTO dome_locks VALUES (?1, 'their-token', ?2, "
        "(julianday('now') - 2440587.5) * 86400.0 - 600, "
        "(julianday('now') - 2440587.5) * 86400.0 + ?3)", [SCOPE, json.dumps(holder), expires_in])


def test_a_second_machine_refuses_naming_the_holder(emulator, monkeypatch) -> None:
    monkeypatch.setenv("DOME_ACTOR", "github:alice")
    for key, value in (("GITHUB_SERVER_URL", "https://github.com"),
                       ("GITHUB_REPOSITORY", "acme/dome"), ("GITHUB_RUN_ID", "77")):
        monkeypatch.setenv(key, value)
    ci, _ = machine(emulator, command="invoke deploy-env silo staging")
    laptop, _ = machine(emulator, wait=False)
    with ci.hold(SCOPE):
        (row,) = lock_rows(emulator)
        assert json.loads(row["holder"])["ci"] == "https://github.com/acme/dome/actions/runs/77"
        with pytest.raises(LockBusy) as refused:
            with laptop.hold(SCOPE):
                pytest.fail("two holders at once")
    assert str(refused.value).startswith(
        f"{SCOPE} is locked by github:alice on {socket.gethostname()} "
        "(https://github.com/acme/dome/actions/runs/77, pid ")
    assert "`invoke deploy-env silo staging`) since 20" in str(refused.value)
    assert lock_rows(emulator) == []  # released at the end


def test_machines_racing_for_one_scope_hold_it_one_at_a_time(emulator) -> None:
    inside, most, errors = [0], [0], []
    guard = threading.Lock()

    def run() -> None:
        locks, _ = machine(emulator)
        try:
            for _ in range(3):
                with locks.hold(SCOPE):
                    with guard:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                    time.sleep(0.01)
                    with guard:
                        inside[0] -= 1
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and most == [1]
    assert lock_rows(emulator) == []


def test_a_waiting_machine_says_whom_it_waits_for_once_then_gets_it(emulator) -> None:
    first, _ = machine(emulator)
    second, said = machine(emulator)
    got = threading.Event()

    def wait_for_it() -> None:
        with second.hold(SCOPE):
            got.set()

    with first.hold(SCOPE):
        thread = threading.Thread(target=wait_for_it)
        thread.start()
        deadline = time.monotonic() + 10
        while "waiting for" not in said.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert not got.is_set()
    thread.join(timeout=10)
    assert got.is_set()
    assert said.getvalue().count(f"lock {SCOPE}: waiting for ") == 1


def test_an_expired_lock_is_taken_over(emulator) -> None:
    plant(emulator, expires_in=-5, host="ci-runner-7")
    locks, said = machine(emulator, wait=False)
    with locks.hold(SCOPE):
        (row,) = lock_rows(emulator)
        assert row["token"] != "their-token"
    assert said.getvalue().startswith(
        f"lock {SCOPE}: taking over from github:ci-bot on ci-runner-7 "
        "(https://github.com/acme/dome/actions/runs/42, pid 4242, `invoke deploy`) since ")
    assert ", whose lock expired at " in said.getvalue()


def test_a_live_lock_of_another_host_is_not_taken_over(emulator) -> None:
    plant(emulator, expires_in=60, host="ci-runner-7")
    locks, _ = machine(emulator, wait=False)
    with pytest.raises(LockBusy, match="locked by github:ci-bot on ci-runner-7"):
        with locks.hold(SCOPE):
            pass
    assert [row["token"] for row in lock_rows(emulator)] == ["their-token"]


def test_a_lock_left_by_a_dead_process_of_this_host_is_taken_over_at_once(emulator) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    plant(emulator, expires_in=60, host=socket.gethostname(), pid=int(gone.stdout))
    locks, said = machine(emulator, wait=False)
    with locks.hold(SCOPE):
        pass
    assert "which is no longer running" in said.getvalue()


def test_a_held_lock_is_renewed(emulator) -> None:
    locks, _ = machine(emulator, ttl=30, renew_every=0.05)
    with locks.hold(SCOPE):
        (before,) = lock_rows(emulator)
        time.sleep(0.3)
        (after,) = lock_rows(emulator)
    assert after["expires"] > before["expires"] and after["since"] == before["since"]


def test_an_unreachable_d1_lets_the_run_go_on_and_says_so(emulator) -> None:
    emulator.faults.add(path="/d1/database", status=503, times=None)
    locks, said = machine(emulator, wait=False)
    with locks.hold(SCOPE):
        pass
    assert "the account lock cannot be reached" in said.getvalue()
    assert "going on under this machine's lock only" in said.getvalue()
