"""The record tells the truth (issue 11): what the ledger says equals what Cloudflare serves, on
every machine, under faults and concurrency. The REAL wrangler against the API emulator.

* a failure after the upload is recorded as the version that went live, never re-run;
* (two deploys or migrations at once: tests/integration/test_deploy_locks.py);
* a deploy made on one machine ("CI") shows in the history of another ("a laptop"), also when
  the laptop has only `wrangler login` (an expired login is renewed by wrangler, once);
* a rehearsal never writes the real history;
* a crash inside verification is an unhealthy result: production still rolls back.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Config, Context

from dome_tasks.cloudflare.credentials import login_file
from dome_tasks.lifecycle.history import History
from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.lifecycle.session import LifecycleError
from dome_tasks.manifest.loader import load
from dome_tasks.testing.emulator import Emulator
from dome_tasks.wrangler.exec import WranglerFailed
from tests.health_server import health_server
from tests.helpers import ROOT, VENV_BIN, run_env
from tests.helpers.lifecycle import deploy_verified, session

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


@pytest.fixture
def health(emulator: Emulator) -> Iterator[str]:
    """Answers 200 for ``<worker>.emulator.workers.dev`` when the worker is deployed."""
    state = emulator.state

    def answer(host: str) -> int | None:
        worker = host.removesuffix(f".{state.subdomain}.workers.dev")
        with state.lock:
            if not (worker in state.workers and state.traffic(worker)):
                return 404
            garbage = state.worker(worker).current_version().vars.get("DOME_TEST_HEALTH")
        return None if garbage == "garbage" else 200

    with health_server(answer) as url:
        yield url


@pytest.fixture
def ctx(project: Path, emulator: Emulator, health: str, monkeypatch) -> Context:
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DOME_ACTOR", "integration-test")
    return Context(Config(overrides={"dome": {
        "manifest": str(project / "sample" / "dome.yaml"),
        "health_base_url": health,
        "workers_subdomain": "emulator",
        "verify_deadline": 2,
    }}))


def ledger_of(project: Path) -> Ledger:
    return Ledger(project / "sample" / ".dome" / "ledger.jsonl")


def uploads(emulator: Emulator, worker: str) -> int:
    return len(emulator.requests_matching("POST", f"/scripts/{worker}/versions$")) + len(
        emulator.requests_matching("PUT", f"/scripts/{worker}$"))


# --- reconciliation under faults ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", r"/workers/subdomain$"), ("POST", r"/workers/scripts/silo-staging/subdomain$")],
    ids=["account-subdomain", "script-subdomain"],
)
def test_a_failure_after_the_upload_records_the_live_version_and_is_not_repeated(
        ctx, project, emulator, method, path, capsys) -> None:
    state = emulator.state
    (first,) = deploy_verified(session(ctx), ["silo"], "staging")
    deployments = len(state.worker("silo-staging").deployments)
    uploads_before = uploads(emulator, "silo-staging")
    emulator.faults.add(path=path, method=method, status=500, times=None)

    with pytest.raises(WranglerFailed):  # wrangler's failure still fails the run …
        deploy_verified(session(ctx), ["silo"], "staging")
    record = ledger_of(project).read().records[-1]

    live = state.worker("silo-staging").current_version().id
    assert live != first.version_id  # … but the new version went live despite the failure …
    assert (record.outcome, record.version_id) == ("success", live)  # … and the record says so
    assert "wrangler failed after it went live" in record.extra["warning"]
    assert record.verified is True  # it was verified like any deploy
    assert len(state.worker("silo-staging").deployments) == deployments + 1  # exactly one
    assert uploads(emulator, "silo-staging") == uploads_before + 1  # never re-run as a whole
    assert "warning: silo-staging: wrangler failed after it went live" in capsys.readouterr().out
    assert [r.version_id for r in ledger_of(project).read().records] == [first.version_id, live]


def test_a_failure_before_the_upload_is_a_failure_with_what_still_serves(ctx, project, emulator):
    (first,) = deploy_verified(session(ctx), ["silo"], "staging")
    emulator.faults.add(path=r"/scripts/silo-staging/versions$", method="POST", status=400,
                        code=10021, message="bad upload", times=None)
    with pytest.raises(WranglerFailed):
        deploy_verified(session(ctx), ["silo"], "staging")
    last = ledger_of(project).read().records[-1]
    assert (last.outcome, last.version_id) == ("failure", None)
    assert last.extra["live"] == f"{first.version_id}@100%"
    assert emulator.state.worker("silo-staging").current_version().id == first.version_id


def test_a_crash_inside_verification_still_rolls_production_back(ctx, project, emulator) -> None:
    (green,) = deploy_verified(session(ctx), ["silo"], "production")
    manifest = project / "sample" / "dome.yaml"
    anchor = "      SERVICE_NAME: silo\n"
    # the new version's health endpoint answers with something that is not HTTP: the client
    # raises (http.client.BadStatusLine), which used to escape verification with a traceback
    manifest.write_text(manifest.read_text().replace(
        anchor, anchor + "      DOME_TEST_HEALTH: garbage\n", 1))
    with pytest.raises(LifecycleError, match="rolled back to"):
        deploy_verified(session(ctx), ["silo"], "production")
    deploy, back = ledger_of(project).read().records[-2:]
    assert (deploy.kind, deploy.outcome, deploy.verified) == ("deploy", "unhealthy", False)
    assert "BadStatusLine" in deploy.reason
    assert (back.kind, back.outcome, back.automatic) == ("rollback", "success", True)
    assert back.to_version == back.version_id == green.version_id
    assert emulator.state.worker("silo").current_version().id == green.version_id


# --- the CLI: locks, shared history, rehearsals ------------------------------------------------


def invoke(project: Path, emulator: Emulator | None, *args: str, **env: str
           ) -> subprocess.CompletedProcess:
    base = run_env(**(emulator.env() if emulator else {}), **env)
    return subprocess.run([str(VENV_BIN / "invoke"), *args], cwd=project, env=base, check=False,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def two_machines(tmp_path: Path, workspace: Path) -> tuple[Path, Path]:
    """The workspace as CI's checkout, and a copy of it as a laptop's (each its own .dome/)."""
    ci = workspace
    (ci / "node_modules").symlink_to(ROOT / "node_modules")
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    for name in ("sample", "tasks"):
        subprocess.run(["cp", "-r", str(ci / name), str(laptop / name)], check=True)
    (laptop / "node_modules").symlink_to(ROOT / "node_modules")
    return ci, laptop


def test_a_deploy_made_by_ci_shows_on_a_laptop(tmp_path, workspace, emulator) -> None:
    ci, laptop = two_machines(tmp_path, workspace)

    deployed = invoke(ci, emulator, "deploy-env", "silo", "staging", "--no-build", "--no-verify",
                      DOME_ACTOR="github:ci-bot")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    live = emulator.state.worker("silo-staging").current_version().id

    shown = invoke(laptop, emulator, "history", "silo", "staging", "--json")
    assert shown.returncode == 0, shown.stderr
    migrated, record = json.loads(shown.stdout)["records"]  # deploy-env applied silo's migrations first
    assert (migrated["kind"], migrated["outcome"]) == ("migrate", "success")
    assert (record["kind"], record["actor"], record["version_id"], record["outcome"]) == (
        "deploy", "github:ci-bot", live, "success")
    metrics = invoke(laptop, emulator, "metrics", "--json", "--env", "staging")
    assert metrics.returncode == 0, metrics.stderr
    assert '"deployments": 1' in metrics.stdout
    # the laptop's own ledger now caches CI's record (history works offline next time)
    assert [r.actor for r in ledger_of(laptop).read().records] == ["github:ci-bot"] * 2


def test_a_laptop_with_only_wrangler_login_shares_the_history(tmp_path, workspace, emulator):
    ci, laptop = two_machines(tmp_path, workspace)
    login = {**emulator.login_env(), "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": ""}
    stored = login_file(login)  # `wrangler login` an hour ago: its token has expired since
    stored.parent.mkdir(parents=True)
    stored.write_text('oauth_token = "expired-login-token"\n'
                      'expiration_time = "2020-01-01T00:00:00.000Z"\n'
                      f'refresh_token = "{emulator.refresh_token}"\nscopes = ["account:read"]\n')
    laptop_env = {k: v for k, v in run_env(**login, DOME_ACTOR="laptop").items()
                  if k not in ("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN")}

    def on_laptop(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(VENV_BIN / "invoke"), *args], cwd=laptop, env=laptop_env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=300, check=False)

    deployed = invoke(ci, emulator, "deploy-env", "silo", "staging", "--no-build", "--no-verify",
                      DOME_ACTOR="github:ci-bot")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    shown = on_laptop("history", "silo", "staging", "--json")
    assert shown.returncode == 0, shown.stderr
    assert [(r["kind"], r["actor"]) for r in json.loads(shown.stdout)["records"]] == [
        ("migrate", "github:ci-bot"), ("deploy", "github:ci-bot")]
    assert "machine's only" not in shown.stderr

    redeployed = on_laptop("deploy-env", "silo", "staging", "--no-build", "--no-verify", "--force")
    assert redeployed.returncode == 0, redeployed.stdout + redeployed.stderr
    live = emulator.state.worker("silo-staging").current_version().id
    seen_by_ci = invoke(ci, emulator, "history", "silo", "staging", "--json")
    last = json.loads(seen_by_ci.stdout)["records"][-1]
    assert (last["actor"], last["version_id"], last["outcome"]) == ("laptop", live, "success")
    # renewed once by wrangler itself (the second run found the fresh token it stored)
    assert len(emulator.requests_matching("POST", "/oauth2/token$")) == 1
    assert "expired-login-token" not in stored.read_text()
    assert not (laptop / "sample" / ".dome" / "ledger.jsonl.unsynced").exists()


def test_a_rehearsal_never_writes_the_real_history(project, emulator) -> None:
    rehearsed = invoke(project, emulator, "deploy-env", "silo", "staging", "--rehearse",
                       "--no-build")
    assert rehearsed.returncode == 0, rehearsed.stdout + rehearsed.stderr
    assert "Cloudflare would now hold" in rehearsed.stdout
    assert not (project / "sample" / ".dome" / "ledger.jsonl").exists()
    assert emulator.state.kv == emulator.state.d1 == emulator.state.workers == {}  # the "real" account
    history = History.for_manifest(load(project / "sample" / "dome.yaml"),
                                   project / "sample" / ".dome" / "ledger.jsonl", emulator.env())
    assert history.read().records == ()


def test_a_space_in_the_base_url_is_one_clear_error(project, emulator) -> None:
    result = invoke(project, emulator, "verify", "silo", "staging", "--base-url",
                    "http://127.0.0.1:8788/a b")
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "error: --base-url: 'http://127.0.0.1:8788/a b' contains a space at position 24")
    assert "Traceback" not in result.stderr
    assert emulator.requests == []
