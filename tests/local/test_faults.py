"""Faults under real wrangler dev: broken workers, unhealthy workers, busy ports, stale pid
files, Ctrl-C during a stack bring-up. Each leaves nothing running."""

from __future__ import annotations

import _thread
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from local_helpers import make_env, write_sample_configs, write_worker

from dome_tasks.local import (
    PortInUse,
    StartupFailed,
    format_status,
    procs,
    start,
    start_wave,
    status,
    stop,
)

pytestmark = pytest.mark.integration

HEALTHY = 'export default { fetch() { return Response.json({ ok: true }); } };\n'


def wrangler_processes_for(config) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and str(config) in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


def assert_nothing_left(env, service):
    assert not env.record_path(service.name).exists()
    assert wrangler_processes_for(service.config) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("export default { fetch() { return new Response('x') \n", "Unexpected end of file"),
        ('throw new Error("boom at startup");\n' + HEALTHY, "boom at startup"),
    ],
    ids=["syntax-error", "throws-at-startup"],
)
def test_broken_worker_fails_with_log_tail(wrangler, tmp_path, source, expected):
    env = make_env(tmp_path / "state", "28820-28829")
    broken = write_worker(tmp_path / "src", "broken", source)
    with pytest.raises(StartupFailed) as failure:
        start(env, broken)
    assert "wrangler dev exited" in str(failure.value)
    assert expected in failure.value.log_tail
    assert "\x1b[" not in failure.value.log_tail  # no colour codes
    assert_nothing_left(env, broken)


def test_never_healthy_worker_times_out_and_is_stopped(wrangler, tmp_path):
    env = make_env(tmp_path / "state", "28830-28839", health_timeout=12)
    sick = write_worker(tmp_path / "src", "sick", 'export default { fetch() { return new Response("no", { status: 503 }); } };\n')
    with pytest.raises(StartupFailed, match=r"did not answer 200 within 12s") as failure:
        start(env, sick)
    assert "Ready on http://127.0.0.1:2883" in failure.value.log_tail
    assert_nothing_left(env, sick)


def test_single_port_in_use_names_the_port(wrangler, tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        env = make_env(tmp_path / "state", str(port))
        worker = write_worker(tmp_path / "src", "w", HEALTHY)
        with pytest.raises(PortInUse, match=rf"port {port} on 127.0.0.1 is already in use by another process") as failure:
            start(env, worker)
        assert failure.value.port == port
        if sys.platform.startswith("linux"):  # the owner is named where the system tells (macOS: root only)
            assert f"(pid {os.getpid()} (python" in str(failure.value)
        assert_nothing_left(env, worker)


def test_stale_pid_files_are_detected_and_cleaned(tmp_path):
    env = make_env(tmp_path / "state", "28840-28849")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = psutil.Process().create_time()
    records = {
        # the process died (or the machine rebooted)
        "gone": {"pid": dead.pid, "created": 1.0},
        # the pid now belongs to another program (this pytest): never to be signalled
        "reused": {"pid": os.getpid(), "created": me},
        # same pid, but it started at another time
        "restarted": {"pid": os.getpid(), "created": me + 1},
    }
    for name, fields in records.items():
        write_record(env, name, fields)
    (env.state_dir / "registry").mkdir()
    (env.state_dir / "registry" / "gone-local").write_text("{}")

    assert [(s.service, s.state) for s in status(env)] == [("gone", "stale"), ("restarted", "stale"), ("reused", "stale")]
    assert list((env.state_dir / "run").glob("*.json")) == []
    assert not (env.state_dir / "registry" / "gone-local").exists()
    assert stop(env) == []  # and we are still alive


def write_record(env, name, fields):
    path = env.record_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "service": name, "worker": f"{name}-local", "port": 28840, "inspector_port": 9229,
        "url": "http://127.0.0.1:28840", "health_path": "/health", "config": "x.toml",
        "log": "x.log", "started_at": time.time(), **fields,
    }))  # fmt: skip


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="records with start ticks were only written on Linux")
def test_a_record_from_before_psutil_still_names_its_process(wrangler, tmp_path):
    """dome-tasks used to record Linux start ticks; a stack started then is still found."""
    env = make_env(tmp_path / "state", "28870-28879")
    worker = write_worker(tmp_path / "src", "w", HEALTHY)
    record = start(env, worker)
    ticks = int(Path(f"/proc/{record.pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    legacy = json.loads(env.record_path("w").read_text())
    del legacy["created"], legacy["ready_at"]
    env.record_path("w").write_text(json.dumps({**legacy, "start_ticks": ticks}))
    assert [(s.service, s.state, s.pid) for s in status(env)] == [("w", "running", record.pid)]
    assert stop(env) == ["w"]
    assert_nothing_left(env, worker)


def test_a_killed_wrangler_s_children_are_orphaned_in_status_and_stopped_by_stop(
        wrangler, tmp_path):
    env = make_env(tmp_path / "state", "28860-28869")
    worker = write_worker(tmp_path / "src", "w", HEALTHY)
    record = start(env, worker)
    assert json.loads(env.record_path("w").read_text())["pgid"] == record.pid
    orphans = sorted(p.pid for p in procs.group_members(record.pid) if p.pid != record.pid)
    assert orphans  # wrangler's inner node, esbuild, workerd
    os.kill(record.pid, signal.SIGKILL)  # only the outer node: the rest keeps the port
    os.waitpid(record.pid, 0)
    (seen,) = status(env)  # what still serves is shown, with its pids, and left alone
    assert (seen.service, seen.state, seen.healthy, seen.pids) == ("w", "orphaned", True, tuple(orphans))
    assert "orphaned" in format_status([seen]) and ",".join(map(str, orphans)) in format_status([seen])
    assert sorted(p.pid for p in procs.group_members(record.pid)) == orphans
    assert stop(env) == ["w"]
    assert procs.group_members(record.pid) == []
    assert_nothing_left(env, worker)


@pytest.mark.parametrize("jobs", [2, 1], ids=["side-by-side", "one-at-a-time"])
def test_ctrl_c_during_a_wave_stops_its_started_services(wrangler, tmp_path, jobs):
    env = make_env(tmp_path / "state", "28850-28859", health_timeout=60)
    silo = write_sample_configs(tmp_path / "rendered")[0]
    slow = write_worker(tmp_path / "src", "slow", 'export default { fetch() { return new Response("", { status: 500 }); } };\n')

    def press_ctrl_c_once_slow_is_starting():
        deadline = time.monotonic() + 60
        while not env.record_path("slow").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c_once_slow_is_starting, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):  # not StackFailed: interrupted, not timed out
        start_wave(env, [silo, slow], jobs=jobs)
    assert_nothing_left(env, silo)
    assert_nothing_left(env, slow)
