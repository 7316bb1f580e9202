"""The deploy tasks, run as a user runs them, with the real wrangler against the API emulator.

Every wrangler run is under the network guard: a test fails if anything but 127.0.0.1 is
contacted.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dome_tasks.manifest.loader import load
from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import Tripwire, guard_env, violations
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account


@pytest.fixture
def emulator():
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


def invoke(project: Path, emulator: Emulator, tripwire: Tripwire, *args: str) -> subprocess.CompletedProcess:
    """Run an invoke task against the emulator. Health checks are off: the emulator runs no
    workers (verification is tested in test_lifecycle.py against a local health server)."""
    if args[0].startswith("deploy"):
        args = (*args, "--no-verify")
    guard_dir = project / ".netguard"
    env = run_env(**emulator.env(), **guard_env(guard_dir, tripwire=tripwire))
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=project, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=300,
    )
    assert violations(guard_dir) == [], "wrangler tried to reach the network"
    assert tripwire.hits == [], "something went through the proxy tripwire"
    return result


def deploy_requests(emulator: Emulator) -> list[tuple[str, str]]:
    """(method, worker) of each upload: PUT script (new worker) or POST versions (existing)."""
    out = []
    for request in emulator.requests:
        parts = request.path.split("/")
        if request.method == "PUT" and len(parts) == 6 and parts[4] == "scripts":
            out.append(("PUT", parts[5]))
        elif request.method == "POST" and parts[-1] == "versions" and "scripts" in parts:
            out.append(("POST", parts[parts.index("scripts") + 1]))
    return out


def test_deploy_env_uploads_exactly_the_rendered_bindings(project, emulator, tripwire):
    first = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging")
    assert first.returncode == 0, first.stdout + first.stderr
    version = emulator.state.worker("silo-staging").current_version()
    expected = load(project / "sample/dome.yaml").resolve("silo", "staging")
    assert version.vars == dict(expected.vars)
    assert version.binding("DB")["id"] == expected.d1_databases[0].database_id
    assert version.binding("BUCKET")["bucket_name"] == "silo-objects-staging"
    assert version.binding("EVENTS")["queue_name"] == "silo-events-staging"
    assert version.compatibility_date == expected.compatibility_date
    assert sorted(b["name"] for b in version.bindings) == sorted(
        ["DB", "BUCKET", "EVENTS", *dict(expected.vars)]
    )

    second = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--force")
    assert second.returncode == 0, second.stdout + second.stderr
    assert deploy_requests(emulator) == [("PUT", "silo-staging"), ("POST", "silo-staging")]
    assert len(emulator.state.worker("silo-staging").versions) == 2


def test_deploy_all_goes_to_production_in_dependency_order(project, emulator, tripwire):
    result = invoke(project, emulator, tripwire, "deploy", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [worker for _, worker in deploy_requests(emulator)] == ["silo", "constellation", "dome-api"]
    api = emulator.state.worker("dome-api").current_version()
    assert api.binding("SILO")["service"] == "silo"
    assert api.binding("CONSTELLATION")["service"] == "constellation"
    assert emulator.state.worker("constellation").current_version().binding("SILO")["service"] == "silo"


def test_db_migrate_staging_applies_once(project, emulator, tripwire):
    first = invoke(project, emulator, tripwire, "db-migrate-staging")
    assert first.returncode == 0, first.stdout + first.stderr
    database = emulator.state.d1["00000000-0000-4000-8000-0000000000a1"]
    applied = [row["name"] for row in database.rows("SELECT name FROM d1_migrations ORDER BY id")]
    assert applied == ["0001_init.sql", "0002_events.sql"]
    assert "items" in database.tables()

    second = invoke(project, emulator, tripwire, "db-migrate-staging")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No migrations to apply" in second.stdout
    assert len(database.rows("SELECT name FROM d1_migrations")) == 2


def test_a_deploy_applies_pending_migrations_and_skips_them_when_none_are(project, emulator, tripwire):
    """Before a deploy the migrations table is read from the API: nothing pending, no wrangler."""
    def applied() -> list[str]:
        database = emulator.state.d1["00000000-0000-4000-8000-0000000000a1"]
        return [row["name"] for row in database.rows("SELECT name FROM d1_migrations ORDER BY id")]

    first = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "apply D1 migrations of silo-db-staging" in first.stdout
    assert applied() == ["0001_init.sql", "0002_events.sql"]

    again = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "skip migrations of silo-db-staging (silo): none pending, 2 applied" in again.stdout
    assert "apply D1 migrations" not in again.stdout

    new = project / "sample/services/silo/migrations/0003_tags.sql"
    new.write_text("CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT);\n", encoding="utf-8")
    third = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build")
    assert third.returncode == 0, third.stdout + third.stderr
    assert "apply D1 migrations of silo-db-staging" in third.stdout
    assert applied() == ["0001_init.sql", "0002_events.sql", "0003_tags.sql"]

    forced = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build",
                    "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    # --force redeploys the unchanged code; the migrations table still says nothing is pending
    assert "skip migrations of silo-db-staging (silo): none pending, 3 applied" in forced.stdout
    assert deploy_requests(emulator)[-1] == ("POST", "silo-staging")


UPLOAD = r"/accounts/[^/]+/workers/scripts/silo-staging$"


def test_a_429_on_the_upload_is_retried_once_by_wrangler_alone(project, emulator, tripwire):
    """wrangler 4.164 waits out a 429's Retry-After itself: dome starts no second deploy (the
    oldest wrangler does not; tests/emulator/test_emulator_faults.py covers dome's retry)."""
    emulator.faults.add(method="PUT", path=UPLOAD, status=429, retry_after=1, times=1)
    result = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "retry 1/" not in result.stderr
    assert "Retry-After" in result.stdout + result.stderr  # wrangler's own line
    assert deploy_requests(emulator) == [("PUT", "silo-staging"), ("PUT", "silo-staging")]
    assert [r.status for r in emulator.requests_matching("PUT", UPLOAD)] == [429, 200]


def test_a_401_fails_at_once_with_the_authentication_remedy(project, emulator, tripwire):
    emulator.faults.add(path=r"/workers/services/silo-staging$", status=401, times=None)
    result = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build")
    assert result.returncode != 0
    assert "wrangler login" in result.stderr
    assert "CLOUDFLARE_API_TOKEN" in result.stderr
    assert "retry" not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(emulator.requests_matching("GET", r"/workers/services/silo-staging$")) == 1


def test_a_500_forever_fails_after_bounded_retries(project, emulator, tripwire):
    emulator.faults.add(path=r"/workers/services/silo-staging$", status=500, times=None)
    result = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--no-build")
    assert result.returncode != 0
    assert "giving up after 3 attempts" in result.stderr
    assert "deploy silo-staging (staging) failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(emulator.requests_matching("GET", r"/workers/services/silo-staging$")) == 3
    assert deploy_requests(emulator) == []


def test_rehearsal_needs_no_emulator_of_its_own_and_reports_the_state(project, tripwire):
    guard_dir = project / ".netguard"
    env = run_env(**guard_env(guard_dir, tripwire=tripwire))
    for key in ("CLOUDFLARE_API_BASE_URL", "CLOUDFLARE_API_TOKEN"):
        env.pop(key, None)
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), "deploy-env", "all", "staging", "--rehearse"], cwd=project,
        env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert violations(guard_dir) == []
    report = result.stdout[result.stdout.index("Cloudflare would now hold"):]
    assert "worker silo-staging" in report
    assert "CONSTELLATION  service       constellation-staging" in report


def test_plan_json_lists_the_waves(project):
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), "plan", "all", "staging", "--json"], cwd=project, env=run_env(),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["waves"] == [["silo"], ["constellation"], ["dome-api"]]
    assert [s["event"] for s in plan["steps"] if s["service"] == "silo"] == [
        "render", "migrate", "record", "build", "render", "deploy", "verify", "record"]


def test_the_url_shown_and_recorded_is_where_the_worker_serves(project, emulator, tripwire):
    """silo-staging on a route only (workers.dev off) with a queue producer: wrangler's free
    text ("Producer for …", "… (zone name: …)") is never taken for its URL."""
    from dome_tasks.ci.report import primary_url, service_reports
    from dome_tasks.lifecycle.ledger import Ledger

    emulator.state.triggers.add_zone("example.com")
    manifest = project / "sample/dome.yaml"
    manifest.write_text(manifest.read_text().replace(
        "        queues:\n          producers:\n            EVENTS: { queue: silo-events-staging }\n",
        "        queues:\n          producers:\n            EVENTS: { queue: silo-events-staging }\n"
        "        workers_dev: false\n"
        "        routes: [{ pattern: \"silo-staging.example.com/*\", zone_name: example.com }]\n", 1,
    ))
    result = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--json")
    assert result.returncode == 0, result.stderr
    assert "Producer for silo-events-staging" in result.stderr  # wrangler said it, to stderr
    summary = json.loads(result.stdout)
    assert [s["url"] for s in summary["services"]] == ["silo-staging.example.com/*"]
    records = Ledger(project / "sample/.dome/ledger.jsonl").read().records
    rows = service_reports(["silo"], {"silo": "silo-staging"}, records)
    assert primary_url(rows) == "https://silo-staging.example.com"  # the GitHub deployment's URL


def test_a_workers_dev_worker_shows_its_workers_dev_url(project, emulator, tripwire):
    result = invoke(project, emulator, tripwire, "deploy-env", "silo", "staging", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["services"][0]["url"] == "https://silo-staging.emulator.workers.dev"
    assert summary["services"][0]["urls"] == ["https://silo-staging.emulator.workers.dev"]
