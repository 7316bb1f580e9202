"""Deploy/migration locks with REAL contending processes: waiting, refusing, kill -9 takeover."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.lifecycle.lock import (
    Holder,
    LockBusy,
    LockError,
    Locks,
    deploy_scope,
    migration_scope,
)
from tests.helpers import ROOT

# A process that takes a lock, logs "<name> start", waits for a line on stdin (when told to
# hold), logs "<name> end" and releases it. Messages of the lock go to stderr.
CONTENDER = """
import sys
from pathlib import Path
from dome_tasks.lifecycle.lock import Locks, LockBusy
directory, scope, name, mode, log = sys.argv[1:6]
locks = Locks(Path(directory), wait=mode != "no-wait", poll=0.02)
try:
    with locks.hold(scope):
        with open(log, "a") as out:
            out.write(f"{name} start\\n")
        print("acquired", flush=True)
        if mode == "hold":
            sys.stdin.readline()
        with open(log, "a") as out:
            out.write(f"{name} end\\n")
except LockBusy as error:
    print(f"refused: {error}", file=sys.stderr, flush=True)
    sys.exit(3)
"""


class Contender:
    """One real Python process contending for a lock."""

    def __init__(self, tmp: Path, scope: str, name: str, mode: str) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(tmp / "locks"), scope, name, mode,
             str(tmp / "order.log")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.stderr_lines: list[str] = []
        self._stderr_ready = threading.Condition()
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            with self._stderr_ready:
                self.stderr_lines.append(line.rstrip("\n"))
                self._stderr_ready.notify_all()
        with self._stderr_ready:
            self._stderr_ready.notify_all()

    def wait_for_stderr(self, text: str, timeout: float = 30) -> str:
        """The first stderr line containing ``text`` (fails if the process ends without it)."""
        with self._stderr_ready:
            ok = self._stderr_ready.wait_for(
                lambda: any(text in line for line in self.stderr_lines) or self.proc.poll() is not None,
                timeout=timeout,
            )
            found = [line for line in self.stderr_lines if text in line]
        assert ok and found, f"{self.name} never printed {text!r}; stderr: {self.stderr_lines}"
        return found[0]

    def wait_acquired(self) -> None:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "acquired", f"{self.name}: {line!r} {self.stderr_lines}"

    def release(self) -> int:
        self.proc.stdin.write("\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.proc.wait(timeout=30)

    def finish(self) -> int:
        code = self.proc.wait(timeout=30)
        return code


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator:
    started: list[Contender] = []

    def make(name: str, mode: str = "hold", scope: str = deploy_scope("staging", "silo")) -> Contender:
        contender = Contender(tmp_path, scope, name, mode)
        started.append(contender)
        return contender

    yield make
    for contender in started:
        if contender.proc.poll() is None:
            contender.proc.kill()
            contender.proc.wait()


def order(tmp_path: Path) -> list[str]:
    return (tmp_path / "order.log").read_text().splitlines()


def test_the_second_process_waits_naming_the_holder_then_runs_after_it(spawn, tmp_path) -> None:
    first = spawn("A")
    first.wait_acquired()
    second = spawn("B", mode="run")
    message = second.wait_for_stderr("waiting for")
    assert message.startswith(f"lock staging/silo: waiting for pid {first.proc.pid} (`python")
    assert "-c" in message and "since 20" in message and message.endswith("to finish")
    assert order(tmp_path) == ["A start"]  # B is blocked while A holds the lock
    assert first.release() == 0
    second.wait_acquired()
    assert second.finish() == 0
    assert order(tmp_path) == ["A start", "A end", "B start", "B end"]
    assert sum("waiting for" in line for line in second.stderr_lines) == 1  # said once


def test_no_wait_refuses_at_once_naming_the_holder(spawn, tmp_path) -> None:
    first = spawn("A")
    first.wait_acquired()
    second = spawn("B", mode="no-wait")
    assert second.finish() == 3
    refusal = second.wait_for_stderr("refused")
    assert f"staging/silo is locked by pid {first.proc.pid} (`python" in refusal
    assert order(tmp_path) == ["A start"]
    assert first.release() == 0


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(spawn, tmp_path) -> None:
    first = spawn("A")
    first.wait_acquired()
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(timeout=30)
    info = tmp_path / "locks" / "staging--silo.json"
    assert json.loads(info.read_text())["pid"] == first.proc.pid  # the dead holder's info stays
    second = spawn("B", mode="no-wait")  # the kernel released the flock: no waiting needed
    assert second.finish() == 0
    note = second.wait_for_stderr("taking over")
    assert f"taking over from pid {first.proc.pid}" in note and "no longer running" in note
    assert order(tmp_path) == ["A start", "B start", "B end"]
    assert not info.exists()  # B cleaned up its own info on release


def test_different_scopes_do_not_block_each_other(spawn, tmp_path) -> None:
    silo = spawn("A")
    silo.wait_acquired()
    other = spawn("B", mode="no-wait", scope=deploy_scope("staging", "constellation"))
    migrations = spawn("C", mode="no-wait", scope=migration_scope("staging"))
    assert other.finish() == 0 and migrations.finish() == 0
    assert silo.release() == 0


def test_in_process_holding_is_reentrant_and_cleans_up(tmp_path: Path) -> None:
    locks = Locks(tmp_path / "locks", wait=False)
    scope = deploy_scope("production", "silo")
    with locks.hold(scope) as me:
        assert me.pid == os.getpid()
        assert locks.holder(scope) == me
        with locks.hold(scope):  # e.g. the automatic rollback inside a deploy
            pass
        assert locks.holder(scope) == me  # still held after the inner block
        other = Locks(tmp_path / "locks", wait=False)  # another open file description
        with pytest.raises(LockBusy, match=f"production/silo is locked by pid {os.getpid()}"), \
                other.hold(scope):
            pass
    assert locks.holder(scope) is None
    assert (tmp_path / "locks" / "production--silo.lock").exists()  # never deleted
    with Locks(tmp_path / "locks", wait=False).hold(scope):
        pass


def test_a_stale_info_file_of_a_live_unrelated_process_is_taken_over(tmp_path: Path, capsys) -> None:
    directory = tmp_path / "locks"
    directory.mkdir()
    stale = Holder(pid=1, command="invoke deploy-env silo staging", since="2026-01-01T00:00:00.000Z",
                   host="ci-runner-7")
    (directory / "staging--silo.json").write_text(json.dumps(stale.__dict__))
    with Locks(directory, wait=False).hold(deploy_scope("staging", "silo")):
        pass
    err = capsys.readouterr().err
    assert "taking over from pid 1 on ci-runner-7 (`invoke deploy-env silo staging`)" in err


def test_waiting_gives_up_after_the_timeout(spawn, tmp_path) -> None:
    first = spawn("A")
    first.wait_acquired()
    clock = iter(float(n) for n in range(100))
    locks = Locks(tmp_path / "locks", timeout=3, sleep=lambda s: None, clock=lambda: next(clock))
    with pytest.raises(LockBusy) as caught, locks.hold(deploy_scope("staging", "silo")):
        pass
    assert f"still locked by pid {first.proc.pid}" in str(caught.value)
    assert f"kill {first.proc.pid}" in str(caught.value)
    assert first.release() == 0


def test_holder_alive_tells_a_reused_pid_apart() -> None:
    me = Holder.me("x")
    assert me.alive()
    assert not Holder(me.pid, "x", me.since, me.host, started=(me.started or 0) - 1000).alive()
    assert not Holder(2**22 + 12345, "x", me.since, me.host).alive()


def test_an_unwritable_lock_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LockError, match="cannot open the lock of staging/silo") as caught, \
            Locks(blocker / "locks").hold(deploy_scope("staging", "silo")):
        pass
    assert "hint: check that .dome/ can be written" in str(caught.value)
