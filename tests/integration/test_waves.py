"""Parallel waves and the no-op skip, as a user runs them: `invoke deploy-env all staging` in a
generated workspace, the real wrangler against the API emulator.

Concurrency is proven without timing: the services of a wave build through a barrier that only
opens when all of them are building at once (one after another, the first would wait alone and
fail).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.workspace import ACCOUNT, generate_workspace
from tests.helpers import ROOT, VENV_BIN, run_env

pytestmark = pytest.mark.integration

#: argv[1]: the meeting folder, argv[2]: me, argv[3:]: who must be building too; exit 3 alone.
BARRIER = """
import pathlib, sys, time
folder, me, others = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
folder.mkdir(exist_ok=True)
(folder / me).touch()
end = time.monotonic() + 120
while not all((folder / other).exists() for other in others):
    if time.monotonic() > end:
        print(f"{me}: nobody else came", file=sys.stderr)
        sys.exit(3)
    time.sleep(0.05)
print(f"{me}: built beside {', '.join(others) or 'nobody'}")
"""
#: Waits for argv[2] to start building, then fails.
FAIL_AFTER = """
import pathlib, sys, time
folder = pathlib.Path(sys.argv[1])
end = time.monotonic() + 120
while not (folder / sys.argv[2]).exists() and time.monotonic() < end:
    time.sleep(0.05)
print("s01: the build is broken", file=sys.stderr)
sys.exit(3)
"""
WRAPPER = """#!/bin/sh
echo "$*" >> {log}
exec {real} "$@"
"""


@pytest.fixture
def emulator():
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


def workspace(tmp_path: Path, **kwargs) -> Path:
    """A generated workspace with a tasks module and a wrangler that logs each start."""
    generate_workspace(tmp_path, **kwargs)
    (tmp_path / "tasks.py").write_text(
        "from dome_tasks.collection import namespace\n\nns = namespace(manifest='dome.yaml')\n"
    )
    wrangler = tmp_path / "node_modules" / ".bin" / "wrangler"
    wrangler.parent.mkdir(parents=True)
    wrangler.write_text(WRAPPER.format(log=tmp_path / "starts.log",
                                       real=ROOT / "node_modules" / ".bin" / "wrangler"))
    wrangler.chmod(0o755)
    return tmp_path


def starts(root: Path) -> int:
    log = root / "starts.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def invoke(root: Path, emulator: Emulator, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=root, env=run_env(**emulator.env()),
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600, check=False,
    )


def uploads(emulator: Emulator) -> list[str]:
    """The worker of each upload, in the order the emulator received them."""
    found = []
    for request in emulator.requests:
        parts = request.path.split("/")
        if "scripts" in parts and (
            (request.method == "PUT" and len(parts) == 6) or
            (request.method == "POST" and parts[-1] == "versions")
        ):
            found.append(parts[parts.index("scripts") + 1])
    return found


def blocks(stdout: str) -> dict[str, list[str]]:
    """Each service's block of output: the lines under its ``── sNN: … ──`` header."""
    found: dict[str, list[str]] = {}
    current = None
    for line in stdout.splitlines():
        head = re.match(r"── (s\d\d)(: [a-z ]+)? ──$", line)
        if head:
            current = head.group(1)
            found[current] = []
        elif re.match(r"(wave \d+/\d+|deploy to )", line):
            current = None
        elif current:
            found[current].append(line)
    return found


def test_a_waves_services_deploy_side_by_side_each_ones_output_in_one_block(tmp_path, emulator):
    meet = tmp_path / "meet"
    wave1 = ["s01", "s02", "s03"]
    builds = {name: [sys.executable, "-c", BARRIER, str(meet), name, *(n for n in wave1 if n != name)]
              for name in wave1}
    root = workspace(tmp_path / "ws", services=5, waves=2, builds=builds)

    result = invoke(root, emulator, "deploy-env", "all", "staging", "--jobs", "3", "--no-verify")

    assert result.returncode == 0, result.stdout + result.stderr
    order = uploads(emulator)
    assert sorted(order) == [f"s0{i}-staging" for i in range(1, 6)]
    assert set(order[:3]) == {f"{name}-staging" for name in wave1}  # wave 2 after all of wave 1
    out = result.stdout
    assert "wave 1/2: s01, s02, s03 (up to 3 at once)" in out and "wave 2/2: s04, s05" in out
    found = blocks(out)
    assert sorted(found) == ["s01", "s02", "s03", "s04", "s05"]
    for name, lines in found.items():
        text = "\n".join(lines)
        assert f"deploy {name}-staging (staging)" in text  # its own steps …
        own = [line for line in lines if line.startswith(("→ ", "Uploaded ", "Current Version"))]
        assert len(own) >= 4
        others = [f"{n}-staging" for n in found if n != name]
        assert not [line for line in own if any(o in line for o in others)], f"{name}: {own}"
        assert text.count("Uploaded ") == text.count("Current Version ID") == 1
    for name in wave1:  # … and its build's own output
        assert f"{name}: built beside" in "\n".join(found[name])
    summary = out[out.index("deploy to staging: 5 deployed"):]
    assert all(re.search(rf"s0{i}\s+staging\s+deployed\s+[0-9a-f]{{8}}", summary) for i in range(1, 6))
    assert "[dome] run" not in result.stdout + result.stderr  # the JSON line is gone from text

    records = Ledger(root / ".dome" / "ledger.jsonl").read().records
    assert sorted((r.service, r.outcome) for r in records) == [(f"s0{i}", "success") for i in range(1, 6)]
    assert all(len(r.extra["digest"]) == 64 for r in records)


def test_a_failure_stops_the_later_waves_and_the_rest_of_its_wave_stays_recorded(tmp_path, emulator):
    meet = tmp_path / "meet"
    touch = [sys.executable, "-c", ("import pathlib,sys; pathlib.Path(sys.argv[1]).mkdir(); "
                                     "(pathlib.Path(sys.argv[1]) / 's02').touch()"), str(meet)]
    builds = {"s01": [sys.executable, "-c", FAIL_AFTER, str(meet), "s02"], "s02": touch}
    root = workspace(tmp_path / "ws", services=3, waves=2, builds=builds)

    result = invoke(root, emulator, "deploy-env", "all", "staging", "-j", "2", "--no-verify")

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "build s01 failed" in result.stderr
    assert uploads(emulator) == ["s02-staging"]  # s03 (wave 2) never started
    summary = result.stdout[result.stdout.index("deploy to staging:"):]
    assert re.search(r"s01\s+staging\s+failed", summary)
    assert re.search(r"s02\s+staging\s+deployed", summary)
    assert re.search(r"s03\s+staging\s+not run", summary)
    records = Ledger(root / ".dome" / "ledger.jsonl").read().records
    assert sorted((r.service, r.outcome) for r in records) == [("s01", "failure"), ("s02", "success")]


def test_an_unchanged_still_live_service_is_skipped_without_starting_wrangler(tmp_path, emulator):
    root = workspace(tmp_path / "ws", services=2, waves=1)
    first = invoke(root, emulator, "deploy-env", "all", "staging", "--no-verify")
    assert first.returncode == 0, first.stdout + first.stderr
    assert starts(root) == 2
    s01_first = emulator.state.worker("s01-staging").current_version().id

    again = invoke(root, emulator, "deploy-env", "all", "staging", "--no-verify", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert starts(root) == 2 and len(uploads(emulator)) == 2  # no wrangler, no upload
    assert "skip s01-staging: unchanged since its deploy of" in again.stderr
    summary = json.loads(again.stdout)  # --json: stdout is the summary alone
    assert summary["ok"] is True and summary["counts"] == {"skipped": 2}
    assert [(s["service"], s["result"], s["version"]) for s in summary["services"]] == [
        ("s01", "skipped", s01_first),
        ("s02", "skipped", emulator.state.worker("s02-staging").current_version().id),
    ]

    source = root / "services" / "s02" / "src" / "index.js"
    source.write_text(source.read_text().replace('"s02"', '"s02, changed"'))
    changed = invoke(root, emulator, "deploy-env", "all", "staging", "--no-verify")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert uploads(emulator)[2:] == ["s02-staging"]

    forced = invoke(root, emulator, "deploy-env", "all", "staging", "--no-verify", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert sorted(uploads(emulator)[3:]) == ["s01-staging", "s02-staging"]

    # Someone moved s01's traffic back to its first version: it is deployed again.
    with emulator.state.lock:
        emulator.state.worker("s01-staging").deploy([{"version_id": s01_first, "percentage": 100}])
    moved = invoke(root, emulator, "deploy-env", "all", "staging", "--no-verify")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert uploads(emulator)[5:] == ["s01-staging"]
    assert "skip s02-staging" in moved.stdout


SLOW_BUILD = """
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(300)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_a_concurrent_wave_stops_every_running_command(tmp_path, emulator, signum):
    import psutil

    marks = {name: tmp_path / f"{name}.building" for name in ("s01", "s02")}
    builds = {name: [sys.executable, "-c", SLOW_BUILD, str(mark)] for name, mark in marks.items()}
    root = workspace(tmp_path / "ws", services=3, waves=2, builds=builds)
    run = subprocess.Popen(
        [str(VENV_BIN / "invoke"), "deploy-env", "all", "staging", "-j", "2", "--no-verify"],
        cwd=root, env=run_env(**emulator.env()), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not all(m.exists() for m in marks.values()) and time.monotonic() < deadline:
            assert run.poll() is None, run.communicate()
            time.sleep(0.05)
        children = psutil.Process(run.pid).children(recursive=True)
        builders = [p for p in children if "time.sleep(300)" in " ".join(p.cmdline())]
        assert len(builders) == 2  # both builds of the wave run at once
        if signum == signal.SIGINT:
            os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        else:
            os.kill(run.pid, signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 128 + signum, stdout + stderr
    assert not [p for p in builders if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert uploads(emulator) == []
    records = Ledger(root / ".dome" / "ledger.jsonl").read().records
    assert sorted((r.service, r.outcome) for r in records) == [
        ("s01", "interrupted"), ("s02", "interrupted")
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_while_a_wave_verifies_stops_every_lane_and_records_what_serves(
        tmp_path, emulator, signum):
    """Ctrl-C/SIGTERM reaches the main thread only: the lanes verifying in other threads stop
    too (not after their whole deadline) and each is recorded `interrupted`, naming the version
    that serves, unverified (never `success` or `unhealthy`)."""
    from tests.health_server import health_server

    asked: set[str] = set()

    def answer(host: str) -> int:
        asked.add(host.split(".")[0])
        return 503  # never healthy: verification would go on until its deadline

    root = workspace(tmp_path / "ws", services=2, waves=1)
    with health_server(answer) as origin:
        env = run_env(**emulator.env(), INVOKE_DOME_HEALTH_BASE_URL=origin,
                      INVOKE_DOME_WORKERS_SUBDOMAIN=emulator.state.subdomain,
                      INVOKE_DOME_VERIFY_DEADLINE="60")
        run = subprocess.Popen(
            [str(VENV_BIN / "invoke"), "deploy-env", "all", "staging", "-j", "2", "--no-rollback"],
            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while len(asked) < 2 and time.monotonic() < deadline:  # both lanes are verifying
                assert run.poll() is None, run.communicate()
                time.sleep(0.05)
            if signum == signal.SIGINT:
                os.killpg(run.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            else:
                os.kill(run.pid, signal.SIGTERM)
            stdout, stderr = run.communicate(timeout=120)  # without the fix: unhealthy after 60 s
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()

    assert run.returncode == 128 + signum, stdout + stderr
    records = Ledger(root / ".dome" / "ledger.jsonl").read().records
    deploys = sorted((r.service, r.outcome, r.version_id, r.verified) for r in records
                     if r.kind == "deploy")
    live = {s: next(iter(emulator.state.traffic(f"{s}-staging"))) for s in ("s01", "s02")}
    assert deploys == [("s01", "interrupted", live["s01"], None),
                       ("s02", "interrupted", live["s02"], None)], stdout + stderr
