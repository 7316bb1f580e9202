"""One deploy of a worker at a time, on every machine (issue 19): real `invoke` processes from
different checkouts, the REAL wrangler, one API emulator as the account.

* two checkouts on two "machines" (each its own machine lock folder) deploy one after the
  other through the account's D1 lock: uploads never interleave, both records are true;
* two checkouts of one machine wait for each other even without the account lock;
* `--no-wait` refuses at once naming the holder (its CI run too), and runs no wrangler;
* an expired lock (its holder killed on another machine) is taken over;
* SIGTERM during a deploy releases the account lock;
* two migration runs apply each migration once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.cloudflare.api import CloudflareApi
from dome_tasks.lifecycle.account_lock import AccountLocks
from dome_tasks.lifecycle.account_store import DATABASE_NAME, AccountStore
from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.lifecycle.lock import Locks, deploy_scope, machine_lock_dir, machine_scope
from dome_tasks.testing.emulator import Emulator
from tests.helpers import ROOT, VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account
DEPLOY = ("deploy-env", "silo", "staging", "--no-build", "--no-verify", "--no-migrate")
CI = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/dome",
      "GITHUB_RUN_ID": "4242"}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


def checkout(tmp_path: Path, name: str) -> Path:
    """A copy of the sample workspace (its own .dome/), as a second clone would be."""
    root = tmp_path / name
    root.mkdir()
    for part in ("sample", "tasks"):
        subprocess.run(["cp", "-r", str(ROOT / part), str(root / part)], check=True)
    subprocess.run(["rm", "-rf", str(root / "sample" / ".dome")], check=True)
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    return root


def machine(tmp_path: Path, name: str) -> dict[str, str]:
    """The environment of another machine: its own lock folder (its own TMPDIR)."""
    folder = tmp_path / f"machine-{name}"
    folder.mkdir()
    return {"TMPDIR": str(folder), "XDG_RUNTIME_DIR": ""}


def start(root: Path, emulator: Emulator, *args: str, name: str, **env: str) -> subprocess.Popen:
    out = open(root / f"{name}.out", "w")  # noqa: SIM115 - closed by the process's end
    return subprocess.Popen(
        [str(VENV_BIN / "invoke"), *args], cwd=root, stdout=out, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=run_env(**emulator.env(), DOME_ACTOR=name, **env))


def output(root: Path, name: str) -> str:
    return (root / f"{name}.out").read_text()


def invoke(root: Path, emulator: Emulator, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "invoke"), *args], cwd=root, check=False, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=300,
                          env=run_env(**emulator.env(), **env))


def wait_for(predicate, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def account_locks(emulator: Emulator) -> AccountLocks:
    return AccountLocks(AccountStore(CloudflareApi.from_environ(emulator.env())))


def lock_rows(emulator: Emulator) -> list[dict]:
    return emulator.state.d1_by_name(DATABASE_NAME).rows("SELECT scope, holder FROM dome_locks")


def upload_marks(emulator: Emulator) -> list[str]:
    """Each wrangler deploy of silo-staging as its first and last call: start … end."""
    return [("start" if r.method == "GET" else "end") for r in emulator.requests
            if (r.method == "GET" and r.path.endswith("/workers/services/silo-staging"))
            or (r.method == "POST" and r.path.endswith("/scripts/silo-staging/subdomain"))]


def worker_writes(emulator) -> list:
    """Calls that change a worker (reads, such as the declared-secrets check, may come first)."""
    return [r for r in emulator.requests_matching(path="/workers/") if r.method != "GET"]


def test_two_checkouts_on_two_machines_deploy_one_after_the_other(tmp_path, emulator,
                                                                   monkeypatch) -> None:
    laptop, ci = checkout(tmp_path, "laptop"), checkout(tmp_path, "ci")
    monkeypatch.setenv("DOME_ACTOR", "github:release-bot")
    with account_locks(emulator).hold("staging/silo-staging"):  # both must queue behind it
        runs = [start(laptop, emulator, *DEPLOY, name="laptop", **machine(tmp_path, "laptop")),
                start(ci, emulator, *DEPLOY, name="ci", **machine(tmp_path, "ci"), **CI)]
        waiting = ("lock staging/silo-staging: waiting for github:release-bot on "
                   f"{socket.gethostname()}")
        for root, name in ((laptop, "laptop"), (ci, "ci")):
            wait_for(lambda r=root, n=name: waiting in output(r, n), f"{name} to wait")
        assert worker_writes(emulator) == []  # nothing deployed meanwhile
    codes = [run.wait(timeout=300) for run in runs]
    assert codes == [0, 0], output(laptop, "laptop") + output(ci, "ci")
    assert upload_marks(emulator) == ["start", "end", "start", "end"]  # never interleaved
    # both records are true: each names the version its deploy made live, in the order served
    deployed = {root.name: Ledger(root / "sample" / ".dome" / "ledger.jsonl").records(
        "silo", "staging")[-1] for root in (laptop, ci)}
    worker = emulator.state.worker("silo-staging")
    served = [d.versions[0]["version_id"] for d in reversed(worker.deployments)]
    assert sorted(r.version_id for r in deployed.values()) == sorted(served)
    first, second = sorted(deployed.values(), key=lambda r: r.time)
    assert [first.version_id, second.version_id] == served
    assert second.version_id == worker.current_version().id
    assert {r.outcome for r in deployed.values()} == {"success"}
    shared = emulator.state.d1_by_name(DATABASE_NAME).rows(
        "SELECT json_extract(record, '$.version_id') AS v FROM dome_history ORDER BY time")
    assert [row["v"] for row in shared] == served  # one history, both machines' deploys
    assert lock_rows(emulator) == []


def test_two_checkouts_of_one_machine_wait_for_each_other_without_the_account(
        tmp_path, emulator) -> None:
    other = checkout(tmp_path, "other")
    scope = machine_scope(deploy_scope("staging", "silo-staging"), account=ACCOUNT,
                          api=emulator.env()["CLOUDFLARE_API_BASE_URL"])
    with Locks(machine_lock_dir()).hold(scope):  # held by "the first checkout"
        result = invoke(other, emulator, *DEPLOY, "--no-wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: staging/silo-staging is locked by pid {os.getpid()} (`" in result.stderr
    assert worker_writes(emulator) == []


def test_no_wait_refuses_naming_the_holder_and_its_ci_run(tmp_path, emulator,
                                                           monkeypatch) -> None:
    laptop = checkout(tmp_path, "laptop")
    for key, value in {**CI, "DOME_ACTOR": "github:ci-bot"}.items():
        monkeypatch.setenv(key, value)
    with account_locks(emulator).hold("staging/silo-staging"):
        result = invoke(laptop, emulator, *DEPLOY, "--no-wait", **machine(tmp_path, "laptop"))
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == [line for line in error if line.startswith(
        f"error: staging/silo-staging is locked by github:ci-bot on {socket.gethostname()} "
        f"(https://github.com/acme/dome/actions/runs/4242, pid {os.getpid()}, `")] != []
    assert "Traceback" not in result.stderr + result.stdout
    assert worker_writes(emulator) == []
    # wrangler, started at once behind its network gate, left without a single call
    assert emulator.requests_matching("GET", r"/workers/services/silo-staging$") == []


def test_an_expired_lock_is_taken_over(tmp_path, emulator) -> None:
    laptop = checkout(tmp_path, "laptop")
    store = AccountStore(CloudflareApi.from_environ(emulator.env()))
    store.ready(create=True)
    holder = {"host": "runner-9", "user": "github:ci-bot", "pid": 77, "command": "invoke deploy"}
    store.query("INSERT INTO dome_locks VALUES ('staging/silo-staging', 'lost', ?1, "
                "(julianday('now') - 2440587.5) * 86400.0 - 900, "
                "(julianday('now') - 2440587.5) * 86400.0 - 780)", (json.dumps(holder),))
    result = invoke(laptop, emulator, *DEPLOY, "--no-wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert ("lock staging/silo-staging: taking over from github:ci-bot on runner-9 (pid 77, "
            "`invoke deploy`) since ") in result.stderr
    assert ", whose lock expired at " in result.stderr
    assert lock_rows(emulator) == []  # and released at the end
    assert emulator.state.worker("silo-staging").current_version()


def test_sigterm_during_a_deploy_releases_the_account_lock(tmp_path, emulator) -> None:
    laptop = checkout(tmp_path, "laptop")
    emulator.faults.add(method="POST", path=r"/scripts/silo-staging/versions$", delay=60)
    run = start(laptop, emulator, *DEPLOY, name="deploy")
    wait_for(lambda: emulator.requests_matching(path="/workers/services/silo-staging"),
             "wrangler to start its deploy")
    assert [row["scope"] for row in lock_rows(emulator)] == ["staging/silo-staging"]
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 143, output(laptop, "deploy")
    assert lock_rows(emulator) == []
    again = invoke(laptop, emulator, "history", "silo", "staging", "--json")
    assert [r["outcome"] for r in json.loads(again.stdout)["records"]] == ["interrupted"]


def test_two_migrations_at_once_apply_each_migration_once(tmp_path, emulator) -> None:
    laptop, ci = checkout(tmp_path, "laptop"), checkout(tmp_path, "ci")
    with account_locks(emulator).hold("staging/migrations"):
        runs = [start(laptop, emulator, "db-migrate-staging", name="m1", **machine(tmp_path, "1")),
                start(ci, emulator, "db-migrate-staging", name="m2", **machine(tmp_path, "2"))]
        for root, name in ((laptop, "m1"), (ci, "m2")):
            wait_for(lambda r=root, n=name: "lock staging/migrations: waiting for" in output(r, n),
                     f"{name} to wait for the migration lock")
    codes = [run.wait(timeout=300) for run in runs]
    assert codes == [0, 0], output(laptop, "m1") + output(ci, "m2")
    database = emulator.state.d1["00000000-0000-4000-8000-0000000000a1"]  # silo-db-staging
    applied = [row["name"] for row in database.rows("SELECT name FROM d1_migrations ORDER BY id")]
    assert applied == ["0001_init.sql", "0002_events.sql"]  # once each, not twice
