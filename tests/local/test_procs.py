"""Processes and ports through psutil, on real processes (no wrangler needed).

dome_tasks.local runs on Linux and macOS. It does not branch on the platform: psutil does.
What differs between the two is covered here: macOS refuses to show other users' command
lines (AccessDenied), a reaped or unreaped zombie, children re-parented when their parent
dies, listeners on the wildcard address; and a run of the whole lifecycle proves that no
dome_tasks code reads /proc or runs ps, ss, lsof or fuser.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from dome_tasks.local import procs

REPO = Path(__file__).resolve().parents[2]

#: A leader in its own session with a child in its group and a grandchild that left it.
TREE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    runaway = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    print(child.pid, runaway.pid, flush=True)
    time.sleep(60)
    """
)

STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"


def spawn(code: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True
    )


def test_identity_is_pid_and_creation_time():
    process = spawn("import time; time.sleep(60)")
    try:
        created = procs.created_at(process.pid)
        while not procs.command_line(process.pid):  # empty between fork and exec
            time.sleep(0.01)
        assert created == pytest.approx(psutil.Process(process.pid).create_time())
        assert procs.is_running(process.pid, created)
        assert procs.is_running(process.pid, created, marker=sys.executable.rsplit("/", 1)[-1])
        assert not procs.is_running(process.pid, created, marker="wrangler")  # another program
        assert not procs.is_running(process.pid, created + 5)  # the pid, but another process
    finally:
        process.kill()
        process.wait()
    assert procs.created_at(process.pid) is None
    assert not procs.is_running(process.pid, created)


def test_an_unreaped_zombie_is_not_running():
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    created = procs.created_at(process.pid)
    assert created is not None
    process.stdin.close()  # it exits; nobody reaps it yet
    while psutil.Process(process.pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.01)
    assert procs.created_at(process.pid) is None
    assert not procs.is_running(process.pid, created)
    assert procs.group_members(os.getpgid(0)) and process.pid not in {
        p.pid for p in procs.group_members(os.getpgid(0))
    }
    process.wait()


def test_an_unreadable_command_line_does_not_make_a_process_stale(monkeypatch):
    """macOS answers AccessDenied for processes it will not show; identity still holds."""
    process = spawn("import time; time.sleep(60)")
    try:
        created = procs.created_at(process.pid)

        def denied(self):
            raise psutil.AccessDenied(self.pid)

        monkeypatch.setattr(psutil.Process, "cmdline", denied)
        assert procs.command_line(process.pid) is None
        assert procs.is_running(process.pid, created, marker="wrangler")
        monkeypatch.setattr(psutil.Process, "status", denied)
        assert procs.created_at(process.pid) == created  # denied status: still there
    finally:
        process.kill()
        process.wait()


def test_stop_group_stops_the_tree_including_a_child_that_left_the_group():
    leader = spawn(TREE)
    child, runaway = (int(pid) for pid in leader.stdout.readline().split())
    members = {p.pid for p in procs.group_members(leader.pid)}
    assert {leader.pid, child} <= members and runaway not in members
    assert {leader.pid, child, runaway} <= {p.pid for p in procs.tree(leader.pid)}

    assert procs.stop_group(leader.pid, timeout=5) is True
    leader.wait()
    assert procs.group_members(leader.pid) == []
    assert procs.created_at(child) is None and procs.created_at(runaway) is None


def test_stop_group_escalates_to_sigkill():
    stubborn = spawn(STUBBORN)
    assert stubborn.stdout.readline() == "ready\n"
    assert procs.stop_group(stubborn.pid, timeout=0.5) is False  # SIGTERM was not enough
    assert procs.created_at(stubborn.pid) is None
    stubborn.wait()


def test_orphans_of_a_dead_leader_are_still_its_group():
    leader = spawn(TREE)
    child, runaway = (int(pid) for pid in leader.stdout.readline().split())
    try:
        leader.kill()
        leader.wait()
        assert procs.created_at(leader.pid) is None
        assert [p.pid for p in procs.group_members(leader.pid)] == [child]
        procs.stop_group(leader.pid, timeout=5)
        assert procs.group_members(leader.pid) == []
    finally:
        psutil.Process(runaway).kill()


def test_ports():
    host = "127.0.0.1"
    port = procs.free_port(host)
    assert procs.port_is_free(host, port)
    with socket.socket() as listener:
        listener.bind((host, port))
        listener.listen()
        assert not procs.port_is_free(host, port)
    with socket.socket() as wildcard:  # macOS would let a SO_REUSEADDR bind through
        wildcard.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        wildcard.bind(("0.0.0.0", 0))
        wildcard.listen()
        assert not procs.port_is_free(host, wildcard.getsockname()[1])


#: Runs start, status, stop, a stale record and a port check with an audit hook that records
#: every /proc access and every ps/ss/lsof/fuser started, with the module that asked for it.
AUDITED = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, {tests!r})
    seen = []
    PLUMBING = {{"pathlib", "io", "os", "posixpath", "genericpath", "codecs", "subprocess", "shutil"}}
    TOOLS = {{"ps", "ss", "lsof", "fuser", "pgrep", "pkill", "netstat"}}
    def caller():
        frame = sys._getframe(2)
        while frame is not None and frame.f_globals.get("__name__") in PLUMBING:
            frame = frame.f_back
        return frame.f_globals.get("__name__", "?") if frame is not None else "?"
    def hook(event, args):
        if event in ("open", "os.listdir", "os.scandir") and args and str(args[0]).startswith("/proc"):
            seen.append(("read /proc", caller()))
        elif event == "subprocess.Popen" and os.path.basename(str(args[0])) in TOOLS:
            seen.append(("ran " + os.path.basename(str(args[0])), caller()))
    sys.addaudithook(hook)
    from pathlib import Path
    from fake_wrangler import fake_env, fake_service
    from dome_tasks.local import start, status, stop, procs
    root = Path({root!r})
    env = fake_env(root, "29140-29149")
    record = start(env, fake_service(root, "w"))
    assert [s.state for s in status(env)] == ["running"]
    stale = dict(json.loads(env.record_path("w").read_text()), service="old", pid=1, created=1.0)
    env.record_path("old").write_text(json.dumps(stale))
    assert sorted((s.service, s.state) for s in status(env)) == [("old", "stale"), ("w", "running")]
    assert procs.port_is_free("127.0.0.1", record.port) is False
    assert stop(env) == ["w"]
    print(json.dumps(seen))
    """
)


def test_no_dome_tasks_code_reads_proc_or_runs_process_tools(tmp_path):
    script = AUDITED.format(tests=str(Path(__file__).parent), root=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    ours = [(what, who) for what, who in seen if who.startswith("dome_tasks")]
    assert ours == []
    if os.path.isdir("/proc"):  # Linux: psutil reads /proc, and the hook saw it do so
        assert any(who.startswith("psutil") for _, who in seen)


def test_no_dome_tasks_source_mentions_proc():
    hits = [
        str(path.relative_to(REPO))
        for path in (REPO / "dome_tasks").rglob("*.py")
        if any(quote + "/proc" in path.read_text() for quote in "\"'")
    ]
    assert hits == []
