"""Faults as a user of the tasks meets them: `invoke db-migrate-staging` and `invoke deploy-env`
with the real wrangler against the emulator's fault injection."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import Tripwire, guard_env, violations
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"
STAGING_DB = "00000000-0000-4000-8000-0000000000a1"
QUERY = r"/d1/database/[^/]+/query$"


@pytest.fixture
def emulator():
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


@pytest.fixture
def invoke(project: Path, emulator: Emulator):  # type: ignore[no-untyped-def]
    tripwire = Tripwire()

    def run(*args: str) -> subprocess.CompletedProcess:
        env = run_env(**emulator.env(), **guard_env(project / ".netguard", tripwire=tripwire))
        result = subprocess.run(
            [str(VENV_BIN / "invoke"), *args], cwd=project, env=env, capture_output=True,
            text=True, stdin=subprocess.DEVNULL, timeout=300, check=False,
        )
        assert violations(project / ".netguard") == [] and tripwire.hits == []
        return result

    yield run
    tripwire.close()


def ledger(project: Path) -> list[dict]:
    return [json.loads(line) for path in project.rglob("ledger.jsonl")
            for line in path.read_text().splitlines() if line.strip()]


def applied(emulator: Emulator) -> list[str]:
    database = emulator.state.d1[STAGING_DB]
    return [row["name"] for row in database.rows("SELECT name FROM d1_migrations ORDER BY id")]


def test_a_500_after_the_first_migration_is_retried_and_the_task_succeeds(project, emulator, invoke):
    emulator.faults.add(method="POST", path=QUERY, body_matches="0002_events", status=500)

    result = invoke("db-migrate-staging")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "retry 1/" in result.stderr and "Fix the SQL" not in result.stderr
    assert applied(emulator) == ["0001_init.sql", "0002_events.sql"]
    assert [(r["kind"], r["outcome"]) for r in ledger(project)] == [("migrate", "success")]


def test_a_dropped_connection_forever_fails_with_the_transient_remedy(project, emulator, invoke):
    emulator.faults.add(method="POST", path=QUERY, body_matches="0002_events", drop=True,
                        times=None)

    result = invoke("db-migrate-staging")

    assert result.returncode == 1
    assert "network error, retried 2 times; run the migration task again" in result.stderr
    assert "Fix the SQL" not in result.stderr and "Traceback" not in result.stderr
    assert applied(emulator) == ["0001_init.sql"]
    assert [(r["kind"], r["outcome"]) for r in ledger(project)] == [("migrate", "failure")]


def test_a_sql_error_names_the_migration_file(project, emulator, invoke):
    broken = project / "sample/services/silo/migrations/0002_events.sql"
    broken.write_text("create tabel oops (id integer);\n", encoding="utf-8")

    result = invoke("db-migrate-staging")

    assert result.returncode == 1
    assert "Fix the SQL in sample/services/silo/migrations/0002_events.sql" in result.stderr
    assert "retry" not in result.stderr
    assert applied(emulator) == ["0001_init.sql"]


def test_a_failure_after_the_upload_does_not_redeploy(project, emulator, invoke):
    # wrangler 4.164 reads the worker's workers.dev settings right after the upload
    emulator.faults.add(method="GET", path=r"/workers/workers/silo-staging$", status=500,
                        times=None)

    result = invoke("deploy-env", "silo", "staging", "--no-build", "--no-verify")

    uploads = emulator.requests_matching("PUT", r"/workers/scripts/silo-staging$")
    assert result.returncode == 1
    assert len(uploads) == 1  # not three deploys
    assert emulator.state.worker("silo-staging").current_version() is not None
    assert "the new version may be live" in result.stderr
    assert "invoke status" in result.stderr and "Traceback" not in result.stderr
