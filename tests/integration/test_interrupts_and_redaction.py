"""Signals and secrets, as a user meets them: a real ``invoke`` run, the real wrangler, the emulator.

* Ctrl-C (SIGINT to the terminal's process group) or SIGTERM mid-upload: the run exits 130/143,
  wrangler's whole process group is gone, nothing temporary is left, no further service
  starts, and the ledger says ``interrupted`` (never success).
* API errors that echo the token or a secret are masked in text and JSON logs; a one-letter
  token does not mangle output or break the ledger.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from dome_tasks.events import MASK
from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import Tripwire, guard_env, violations
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account
UPLOAD = r"/workers/scripts/silo-staging$"


def env_for(project: Path, emulator: Emulator, tripwire: Tripwire) -> dict[str, str]:
    return run_env(**emulator.env(), **guard_env(project / ".netguard", tripwire=tripwire))


def invoke(project: Path, env: dict[str, str], *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=project, env=env, capture_output=True, text=True,
        input=stdin if stdin is not None else "", timeout=300, check=False,
    )
    assert violations(project / ".netguard") == [], "wrangler tried to reach the network"
    return result


def ledger(project: Path) -> list[dict]:
    lines = []
    for path in project.rglob("ledger.jsonl"):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_mid_upload_stops_everything_and_is_recorded(project, tripwire, signum) -> None:
    with Emulator(account_id=ACCOUNT) as emulator:
        slow = emulator.faults.add(method="PUT", path=UPLOAD, delay=120)
        run = subprocess.Popen(
            [str(VENV_BIN / "invoke"), "deploy-env", "all", "staging", "--no-build", "--no-verify"],
            cwd=project, env=env_for(project, emulator, tripwire), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,  # like a shell job: Ctrl-C goes to this process group
        )
        try:
            deadline = time.monotonic() + 180
            while slow.hits == 0 and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.hits == 1, "the upload never reached the emulator"
            children = psutil.Process(run.pid).children(recursive=True)
            assert any("wrangler" in " ".join(p.cmdline()) for p in children if alive(p))
            if signum == signal.SIGINT:
                os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            else:
                os.kill(run.pid, signal.SIGTERM)  # what `kill` or a CI runner does
            stdout, stderr = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        emulator.faults.release()  # end the slow upload now: its client is gone
        deadline = time.monotonic() + 30
        while not emulator.requests_matching("PUT", UPLOAD) and time.monotonic() < deadline:
            time.sleep(0.05)
        requests = [r.line for r in emulator.requests]
        uploads = [r.status for r in emulator.requests_matching("PUT", UPLOAD)]
        workers = dict(emulator.state.workers)

    assert run.returncode == 128 + signum, stdout + stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr
    assert [p.pid for p in children if alive(p)] == []  # no wrangler left running
    assert list(project.rglob("wrangler-output-*.ndjson")) == []
    assert not any("constellation" in line or "dome-api" in line for line in requests)
    assert uploads == [0]  # the abandoned upload changed nothing
    assert "silo-staging" not in workers or not workers["silo-staging"].versions
    assert "success" not in stderr.split("interrupted by")[0].split("deploy silo")[-1]
    records = ledger(project)
    migrated = [r for r in records if r["kind"] == "migrate"]  # applied before any new code
    assert migrated and all(r["outcome"] == "success" for r in migrated)
    assert records[: len(migrated)] == migrated
    records = records[len(migrated):]
    assert [(r["kind"], r["service"], r["outcome"]) for r in records] == [
        ("deploy", "silo", "interrupted")
    ]
    assert "version_id" not in records[0]


def test_ctrl_c_while_wrangler_waits_at_its_gate_sends_nothing_and_is_recorded(
        project, tripwire) -> None:
    """The deploy step adopted the wrangler started early, which waits at its gate (what serves
    is still being read) when Ctrl-C comes: it leaves having sent nothing; exit 130 at once
    (the slow read changes nothing: it is not waited for)."""
    with Emulator(account_id=ACCOUNT) as emulator:
        slow = emulator.faults.add(method="GET", delay=30,  # dome's API timeout ends it at 10 s
                                   path=r"/workers/scripts/silo-staging/deployments$")
        run = subprocess.Popen(
            [str(VENV_BIN / "invoke"), "deploy-env", "silo", "staging", "--no-build",
             "--no-verify", "--no-migrate", "--force"],
            cwd=project, env=env_for(project, emulator, tripwire), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            assert run.stdout is not None
            for line in run.stdout:  # the deploy step runs: it adopted wrangler
                if "wrangler deploy" in line:
                    break
            deadline = time.monotonic() + 60
            while slow.hits == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.hits == 1  # what serves is being read: the gate stays shut
            time.sleep(2.5)  # wrangler bundled meanwhile and waits at its gate
            os.killpg(run.pid, signal.SIGINT)
            interrupted = time.monotonic()
            stdout, stderr = run.communicate(timeout=120)
            took = time.monotonic() - interrupted
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        emulator.faults.release()
        sent = [r.line for r in emulator.requests if "/workers/services/" in r.path
                or (r.method != "GET" and "/workers/scripts/" in r.path)]

    assert run.returncode == 130, stdout + stderr
    assert "interrupted by SIGINT" in stderr
    assert took < 3.0  # not held up by the slow read (it ends only at dome's API timeout)
    assert sent == []  # not one of wrangler's calls reached the API
    records = [r for r in ledger(project) if r["kind"] == "deploy"]
    assert [(r["service"], r["outcome"]) for r in records] == [("silo", "interrupted")]
    assert "version_id" not in records[0]


def test_a_signal_after_the_new_version_went_live_records_that_version(project, tripwire) -> None:
    """wrangler is stopped on a call it makes only once the new version serves: the record
    says interrupted, and names the version the API serves (read back after the signal)."""
    with Emulator(account_id=ACCOUNT) as emulator:
        # wrangler 4.164 reads the worker's workers.dev settings only once the upload serves
        slow = emulator.faults.add(method="GET", path=r"/workers/workers/silo-staging$", delay=120)
        run = subprocess.Popen(
            [str(VENV_BIN / "invoke"), "deploy-env", "silo", "staging", "--no-build", "--no-verify"],
            cwd=project, env=env_for(project, emulator, tripwire), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 180
            while slow.hits == 0 and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.hits == 1, "wrangler never got past the upload"
            os.killpg(run.pid, signal.SIGINT)
            stdout, stderr = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        emulator.faults.release()
        live = emulator.state.worker("silo-staging").current_version().id

    assert run.returncode == 130, stdout + stderr
    assert f"{live} went live before the interrupt" in stdout + stderr
    assert re.search(rf"silo\s+staging\s+interrupted\s+{live[:8]}", stdout), stdout  # summary
    deploys = [r for r in ledger(project) if r["kind"] == "deploy"]
    assert [(r["service"], r["outcome"], r.get("version_id")) for r in deploys] == [
        ("silo", "interrupted", live)]


def test_a_one_letter_token_leaves_output_intact_and_the_record_written(project, tripwire) -> None:
    with Emulator(account_id=ACCOUNT, token="t") as emulator:
        result = invoke(project, env_for(project, emulator, tripwire),
                        "deploy-env", "silo", "staging", "--no-build", "--no-verify")
        live = emulator.state.worker("silo-staging").current_version().id

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Uploaded silo-staging" in result.stdout and f"Current Version ID: {live}" in result.stdout
    assert MASK not in result.stdout + result.stderr
    assert "[dome] deploy silo@staging success" in result.stderr
    migrated, record = ledger(project)  # deploy-env applies silo's D1 migrations first
    assert (migrated["kind"], migrated["outcome"]) == ("migrate", "success")
    assert (record["kind"], record["environment"], record["outcome"]) == ("deploy", "staging", "success")
    assert record["version_id"] == live


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_api_error_echoing_the_secret_and_token_is_masked(project, tripwire, log_format) -> None:
    secret = "SUPERSECRET123"
    user_config = project / ".user-config"  # where wrangler keeps its logs for this "user"
    with Emulator(account_id=ACCOUNT) as emulator:
        env = env_for(project, emulator, tripwire)
        env["XDG_CONFIG_HOME"] = str(user_config)
        assert invoke(project, env, "deploy-env", "silo", "staging", "--no-build",
                      "--no-verify").returncode == 0
        emulator.faults.add(
            method="PUT", path=r"/secrets$", status=400, code=10021, times=None,
            message=f"invalid secret text '{secret}' for token {emulator.token}",
        )
        result = invoke(project, env, "secret-put", "SILO_API_KEY", "silo", "staging",
                        "--log-format", log_format, stdin=secret + "\n")
        token = emulator.token

    printed = result.stdout + result.stderr
    assert result.returncode == 1, printed
    assert f"invalid secret text '{MASK}' for token {MASK}" in printed
    assert secret not in printed and token not in printed
    assert "Traceback" not in printed
    # wrangler wrote no log file: none in the user's folder, none left in the project
    assert "Logs were written" not in printed
    logs = [*user_config.rglob("*.log"), *(project / ".dome").rglob("*.log"),
            *(project / ".dome").rglob("*.ndjson")]
    assert [p for p in logs if secret in p.read_text(errors="replace")
            or token in p.read_text(errors="replace")] == []
    assert not list(user_config.rglob("logs/*.log"))
    if log_format == "json":
        events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
        (failed,) = [e for e in events if e["event"] == "secret"]
        assert failed["outcome"] == "failure" and failed["service"] == "silo"
        # the run's end, then the error that ends the task: every line one JSON event
        assert [e["event"] for e in events][-2:] == ["run", "error"]
        assert all(line.startswith("{") for line in result.stderr.splitlines() if line)
