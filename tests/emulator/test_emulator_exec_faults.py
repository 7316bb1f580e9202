"""What dome's wrangler executor does when the real wrangler meets a fault: D1 migrations that
fail transiently or on SQL, calls failing after the upload, an API that never answers, and API
errors that echo secrets. Real wrangler, real processes; the emulator is the only fake."""

from __future__ import annotations

import io
import os
from pathlib import Path

import psutil
import pytest
from emulator_helpers import WRANGLER

from dome_tasks.events import MASK, Redactor
from dome_tasks.plan.steps import Command, Step
from dome_tasks.runner import Runner
from dome_tasks.testing.emulator import Emulator
from dome_tasks.wrangler.exec import CommandTimedOut, WranglerExec, WranglerFailed
from dome_tasks.wrangler.retry import RetryPolicy

pytestmark = pytest.mark.integration

DB_ID = "00000000-0000-4000-8000-000000000001"
D1 = f"""
[[d1_databases]]
binding = "DB"
database_name = "silo-db"
database_id = "{DB_ID}"
migrations_dir = "migrations"
"""
QUERY = r"/d1/database/[^/]+/query$"
MIGRATIONS = {
    "0001_init.sql": "create table items(id integer primary key, name text);\n",
    "0002_more.sql": "insert into items(name) values ('b');\n",
}


class Harness:
    """A WranglerExec + Runner pointed at the emulator, capturing what dome prints."""

    def __init__(self, emulator: Emulator, project: Path, state: Path, guard: dict[str, str],
                 **options) -> None:  # type: ignore[no-untyped-def]
        self.emulator, self.project, self.state = emulator, project, state
        self.out, self.err, self.sleeps = io.StringIO(), io.StringIO(), []
        base = {**os.environ, **emulator.env(), **guard, "XDG_CONFIG_HOME": str(state / "xdg")}
        options.setdefault("redactor", Redactor())
        self.exec = WranglerExec(state / "wrangler", base_env=base, out=self.out, err=self.err,
                                 sleep=self.sleeps.append,
                                 retry_policy=RetryPolicy(max_retries=2), **options)
        self.runner = Runner(None, out=io.StringIO(), command_runner=self.exec)  # type: ignore[arg-type]

    def run(self, *args: str, stdin: str | None = None, event: str = "deploy"):  # type: ignore[no-untyped-def]
        argv = (str(WRANGLER), *args, "--config", str(self.project / "wrangler.toml"))
        command = Command(argv, cwd=self.project, stdin=stdin, retry_safe=True, wrangler=True)
        return self.runner.run_step(Step(event, f"{event} silo", command, "silo", "staging"))

    def migrate(self):  # type: ignore[no-untyped-def]
        return self.run("d1", "migrations", "apply", "silo-db", "--remote", event="migrate")

    def applied(self) -> list[str]:
        db = self.emulator.state.d1[DB_ID]
        return [row["name"] for row in db.rows("SELECT name FROM d1_migrations ORDER BY id")]

    def leftovers(self) -> list[Path]:
        return sorted((self.state / "wrangler").rglob("wrangler-output-*.ndjson"))


@pytest.fixture
def harness(make_wrangler, emulator, tmp_path, network_guard):  # type: ignore[no-untyped-def]
    def make(migrations: dict[str, str] = MIGRATIONS, **options) -> Harness:  # type: ignore[no-untyped-def]
        project = make_wrangler(D1).project
        folder = project / "migrations"
        folder.mkdir(exist_ok=True)
        for name, sql in migrations.items():
            (folder / name).write_text(sql, encoding="utf-8")
        return Harness(emulator, project, tmp_path / "dome-state", network_guard, **options)

    return make


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"body_matches": "0002_more", "status": 500}, id="500-on-0002"),
        pytest.param({"body_matches": "0002_more", "status": 429}, id="429-on-0002"),
        pytest.param({"body_matches": "0002_more", "drop": True}, id="dropped-on-0002"),
        pytest.param({"body_matches": "0001_init", "cut_after": 5}, id="answer-cut-after-0001-ran"),
    ],
)
def test_transient_migration_failures_are_retried_and_resume(harness, emulator, fault) -> None:
    h = harness()
    emulator.faults.add(method="POST", path=QUERY, **fault)

    h.migrate()

    assert h.applied() == ["0001_init.sql", "0002_more.sql"]
    assert h.emulator.state.d1[DB_ID].rows("SELECT name FROM items") == [{"name": "b"}]
    assert "retry 1/2" in h.err.getvalue() and len(h.sleeps) == 1
    assert "Fix the SQL" not in h.err.getvalue()
    assert h.leftovers() == []


def test_a_persistent_5xx_during_migrations_gets_the_transient_remedy(harness, emulator) -> None:
    h = harness()
    emulator.faults.add(method="POST", path=QUERY, body_matches="0002_more", status=500, times=None)

    with pytest.raises(WranglerFailed) as caught:
        h.migrate()

    err = h.err.getvalue()
    assert caught.value.diagnosis.case.key == "api-error"
    assert "Cloudflare API error, retried 2 times; run the migration task again" in err
    assert "retried 2 times" in str(caught.value)  # the hint the task prints last
    assert "Fix the SQL" not in err
    assert h.applied() == ["0001_init.sql"]  # what ran before the failure stays applied
    tries = [r for r in emulator.requests_matching("POST", QUERY) if b"0002_more" in r.body]
    assert [r.status for r in tries] == [500, 500, 500]  # the first try and 2 retries


def test_a_sql_error_is_not_retried_and_names_the_file(harness, emulator) -> None:
    h = harness({**MIGRATIONS, "0002_more.sql": "insert into nowhere values (1);\n"})

    with pytest.raises(WranglerFailed) as caught:
        h.migrate()

    err = h.err.getvalue()
    assert caught.value.diagnosis.case.key == "sql"
    assert f"Fix the SQL in {h.project / 'migrations' / '0002_more.sql'}" in err
    assert "retry" not in err and h.sleeps == []
    assert h.applied() == ["0001_init.sql"]


@pytest.mark.parametrize(
    "fault",
    [
        # wrangler 4.164 reads the worker's workers.dev settings after the upload
        pytest.param({"method": "GET", "path": r"/workers/workers/silo$"}, id="worker-settings"),
        pytest.param({"method": "POST", "path": r"/workers/scripts/silo/subdomain$"},
                     id="script-subdomain"),
    ],
)
def test_a_failure_after_the_upload_is_not_repeated_as_a_whole_deploy(harness, emulator, fault) -> None:
    h = harness()
    emulator.faults.add(status=500, times=None, **fault)

    with pytest.raises(WranglerFailed) as caught:
        h.run("deploy")

    uploads = emulator.requests_matching("PUT", r"/workers/scripts/silo$")
    assert len(uploads) == 1  # one upload: dome did not re-run the deploy
    assert caught.value.after_upload
    assert caught.value.diagnosis.case.key == "after-upload"
    assert "invoke status" in h.err.getvalue()
    assert "not retrying (the upload went through" in h.err.getvalue()
    assert emulator.state.worker("silo").current_version() is not None  # it is live


def test_an_api_call_that_never_answers_hits_the_deadline(harness, emulator) -> None:
    h = harness(command_timeout=4.0)
    emulator.faults.add(method="GET", path=r"/workers/services/silo$", delay=400)

    with pytest.raises(CommandTimedOut) as caught:
        h.run("deploy")

    error = caught.value
    assert error.exit_code == 124
    assert "did not finish within 4 s" in error.message
    assert "the Cloudflare API did not answer within 4 s" in str(error)
    assert "dome.command_timeout" in str(error)
    assert len(emulator.requests_matching("GET", r"/workers/services/silo$")) <= 1  # not retried
    assert emulator.requests_matching("PUT", r"/workers/scripts/silo$") == []
    assert h.leftovers() == []
    running = []
    for process in psutil.process_iter(["cwd", "cmdline"]):
        if process.info["cwd"] == str(h.project) and process.status() != psutil.STATUS_ZOMBIE:
            running.append(process.info["cmdline"])
    assert running == []


def test_an_api_error_echoing_the_secret_and_token_is_masked(harness, emulator) -> None:
    secret = "SUPERSECRET123"
    redactor = Redactor()
    redactor.add(secret)  # as secret_put does; the token is learned from wrangler's environment
    h = harness(redactor=redactor)
    h.run("deploy")
    emulator.faults.add(
        method="PUT", path=r"/secrets$", status=400, code=10021, times=None,
        message=f"invalid secret text '{secret}' for token {emulator.token}",
    )

    with pytest.raises(WranglerFailed) as caught:
        h.run("secret", "put", "SILO_API_KEY", stdin=secret, event="secret")

    printed = h.err.getvalue() + h.out.getvalue()
    assert f"invalid secret text '{MASK}' for token {MASK}" in printed
    assert secret not in printed and emulator.token not in printed
    for text in (str(caught.value), caught.value.stderr):
        assert secret not in text and emulator.token not in text
