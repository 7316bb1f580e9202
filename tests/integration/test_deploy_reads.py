"""The API reads around a deploy, as the emulator sees them: made side by side (a slow one holds
no other up), what serves read under the lock and before wrangler uploads, and the account's
``dome-state`` database remembered between runs (found again when it is gone)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dome_tasks.lifecycle.account_store import DATABASE_NAME
from dome_tasks.testing.emulator import Emulator
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account
DEPLOY = ("deploy-env", "silo", "staging", "--no-build", "--no-verify", "--force")


@pytest.fixture
def emulator():
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


def invoke(project: Path, emulator: Emulator, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(VENV_BIN / "invoke"), *args], cwd=project,
                            env=run_env(**emulator.env()), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def first(emulator: Emulator, method: str, path: str, body: str = "") -> int:
    """The position of the first request that matches, in arrival order of the answers."""
    for index, request in enumerate(emulator.requests):
        if request.method == method and path in request.path and body.encode() in request.body:
            return index
    raise AssertionError(f"no {method} {path} {body}")


def recorded_live(project: Path, emulator: Emulator) -> str | None:
    shown = invoke(project, emulator, "history", "silo", "staging", "--json")
    deploys = [r for r in json.loads(shown.stdout)["records"] if r["kind"] == "deploy"]
    return deploys[-1]["version_id"]


def test_a_slow_history_read_holds_up_neither_the_lock_nor_the_read_of_what_serves(
        project, emulator) -> None:
    invoke(project, emulator, *DEPLOY)
    emulator.clear_requests()
    emulator.faults.add(method="POST", path=r"/d1/database/[^/]+/query$",
                        body_matches="FROM dome_history", delay=2.0)
    invoke(project, emulator, *DEPLOY)
    history = first(emulator, "POST", "/query", "FROM dome_history")
    locked = first(emulator, "POST", "/query", "INSERT INTO dome_locks")
    live = first(emulator, "GET", "/workers/scripts/silo-staging/deployments")
    upload = first(emulator, "POST", "/workers/scripts/silo-staging/versions")
    assert locked < live < history  # answered while the history read was still held up
    assert live < upload  # what served before: read under the lock, before wrangler uploads
    serving = emulator.state.worker("silo-staging").current_version().id
    assert recorded_live(project, emulator) == serving


def test_a_second_deploy_finds_the_remembered_state_database_and_a_deleted_one_again(
        project, emulator) -> None:
    invoke(project, emulator, *DEPLOY)
    emulator.clear_requests()
    invoke(project, emulator, *DEPLOY)
    assert emulator.requests_matching("GET", r"/d1/database$") == []  # not looked up by name
    assert [r for r in emulator.requests if b"CREATE TABLE" in r.body] == []  # nor its schema

    gone = emulator.state.d1_by_name(DATABASE_NAME)
    with emulator.state.lock:
        del emulator.state.d1[gone.uuid]  # deleted in the dashboard since the last run
    invoke(project, emulator, *DEPLOY)
    again = emulator.state.d1_by_name(DATABASE_NAME)
    assert again.uuid != gone.uuid
    rows = again.rows("SELECT kind, record FROM dome_history")
    serving = emulator.state.worker("silo-staging").current_version().id
    assert [json.loads(r["record"])["version_id"] for r in rows if r["kind"] == "deploy"] == [
        serving]
    assert recorded_live(project, emulator) == serving


def test_an_unchanged_service_skipped_after_wrangler_started_early_sends_nothing_from_it(
        project, emulator) -> None:
    invoke(project, emulator, *DEPLOY)
    emulator.clear_requests()
    again = invoke(project, emulator, *DEPLOY[:-1])  # not forced: silo has not changed
    assert "skip silo-staging: unchanged since its deploy of" in again.stdout + again.stderr
    wrangler = [r.line for r in emulator.requests if "/workers/services/" in r.path
                or (r.method != "GET" and "/workers/scripts/" in r.path)]
    assert wrangler == []  # the deploy started early never passed its gate
    assert {r.method for r in emulator.requests if "/workers/" in r.path} == {"GET"}  # reads
