"""One `deploy-env … local` at a time, and no untracked worker: real `invoke` processes and real
signals on a copy of the sample workspace, with the stand-in wrangler (tests/local/fake_wrangler)
so that a bring-up takes milliseconds, not seconds.

* a second deploy waits for the first (naming it), `--no-wait` refuses naming it;
* the first one killed with SIGKILL mid-way: the second takes over, and every process that
  serves afterwards is recorded (no copy started by the killed run is left unrecorded);
* a worker whose record cannot be written never starts.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from fake_wrangler import SCRIPT, calls, fake_env, fake_service

from dome_tasks.local import LocalError, start, status
from tests.helpers import VENV_BIN, run_env

PORTS = "28940-28949"


@pytest.fixture
def local_workspace(workspace: Path) -> Path:
    """The sample workspace with the stand-in as its wrangler and ports of its own."""
    wrangler = workspace / "node_modules" / ".bin" / "wrangler"
    wrangler.parent.mkdir(parents=True)
    wrangler.write_text(SCRIPT.format(python=sys.executable))
    wrangler.chmod(wrangler.stat().st_mode | stat.S_IXUSR)
    manifest = workspace / "sample" / "dome.yaml"
    manifest.write_text(manifest.read_text().replace('ports: "8787-8799"', f'ports: "{PORTS}"'))
    yield workspace
    invoke(workspace, "stop")
    assert serving(workspace) == []


def invoke(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "invoke"), *args], cwd=workspace, env=run_env(**env),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
                          check=False)


def start_invoke(workspace: Path, name: str, *args: str, **env: str) -> subprocess.Popen:
    out = open(workspace / f"{name}.out", "w")  # noqa: SIM115 - closed by the process's end
    return subprocess.Popen([str(VENV_BIN / "invoke"), *args], cwd=workspace, stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=run_env(**env))


def state(workspace: Path) -> Path:
    return workspace / "sample" / ".dome" / "local"


def serving(workspace: Path) -> list[int]:
    """The stand-in `wrangler dev` processes of this workspace that are running."""
    return sorted(p.pid for p in psutil.process_iter(["cmdline", "status"])
                  if p.info["status"] != psutil.STATUS_ZOMBIE
                  and " dev " in " ".join(p.info["cmdline"] or [])
                  and str(state(workspace)) in " ".join(p.info["cmdline"] or []))


def recorded(workspace: Path) -> list[int]:
    return sorted(json.loads(path.read_text())["pid"]
                  for path in (state(workspace) / "run").glob("*.json"))


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_one_local_deploy_at_a_time_and_a_killed_one_leaves_nothing_untracked(local_workspace):
    # The first run's silo (the first wave) waits for `release` before it serves: from the moment
    # it has started, the first run holds the lock (silo starts under it), silo is recorded (its
    # record is written before wrangler may start) and nothing else is starting, however slowly
    # the runs below come up.
    release = local_workspace / "release-first"
    first = start_invoke(local_workspace, "first", "deploy-env", "all", "local",
                         FAKE_WRANGLER_HOLD=str(release))
    wait_for(lambda: (state(local_workspace) / "fake-started" / "silo-local").exists(),
             "the first deploy to start silo")

    refused = invoke(local_workspace, "deploy-env", "all", "local", "--no-wait")
    assert refused.returncode == 1
    assert f"error: the local environment is locked by pid {first.pid} (`" in refused.stderr
    assert "invoke deploy-env all local`) since " in refused.stderr
    assert "Traceback" not in refused.stderr

    second = start_invoke(local_workspace, "second", "deploy-env", "all", "local")
    waiting = f"lock the local environment: waiting for pid {first.pid} (`"
    wait_for(lambda: waiting in (local_workspace / "second.out").read_text(), "the second to wait")
    assert serving(local_workspace) == recorded(local_workspace)  # the first's, each recorded

    first.send_signal(signal.SIGKILL)  # the launcher dies; what it started keeps running
    first.wait()
    release.touch()  # and goes on to serve, until the second replaces it
    assert second.wait(timeout=60) == 0, (local_workspace / "second.out").read_text()
    said = (local_workspace / "second.out").read_text()
    assert f"taking over from pid {first.pid}" in said and "which is no longer running" in said

    # every process that serves is recorded, and status and stop see each of them
    assert len(serving(local_workspace)) == 3
    assert serving(local_workspace) == recorded(local_workspace)
    served = [c for c in calls_in(local_workspace) if c["argv"] == ["serving"]]
    assert served and all(c["recorded"] for c in served)  # recorded before it could serve
    shown = invoke(local_workspace, "status", "local")
    assert [line.split()[1] for line in shown.stdout.splitlines()[1:]] == ["running"] * 3
    stopped = invoke(local_workspace, "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped: ")
    assert serving(local_workspace) == []


def calls_in(workspace: Path) -> list[dict]:
    path = state(workspace) / "fake-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_worker_whose_record_cannot_be_written_never_starts(tmp_path):
    env = fake_env(tmp_path, "28950-28959")
    service = fake_service(tmp_path, "silo")
    env.state_dir.mkdir(parents=True)
    (env.state_dir / "run").write_text("not a folder")  # the pid records cannot be written
    with pytest.raises(LocalError, match="cannot record the process of silo"):
        start(env, service)
    time.sleep(0.3)  # a wrangler started anyway would have announced itself by now
    assert [c for c in calls(env) if c["argv"][0] == "dev"] == []
    assert [p for p in psutil.process_iter(["cmdline"])
            if str(service.config) in " ".join(p.info["cmdline"] or [])] == []
    assert status(env, ["silo"])[0].state == "stopped"
