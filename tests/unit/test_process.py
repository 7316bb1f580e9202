"""dome_tasks.process with real child processes: groups, deadlines, signals, streaming, redaction."""

from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

import psutil
import pytest

from dome_tasks.errors import CommandFailed, Interrupted
from dome_tasks.process import SignalInterrupt, run, signals_as_interrupts

PY = sys.executable

# A launcher like wrangler's: spawns a child that does the work, and exits 0 whatever happens to
# that child. Each writes its pid to the pid file; "ready" is printed once both are running.
LAUNCHER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    pids = sys.argv[1]
    trap = sys.argv[2] if len(sys.argv) > 2 else ""
    if trap == "ignore":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child_code = (
        "import os, signal, sys, time\\n"
        "if sys.argv[2] == 'ignore':\\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
        "if sys.argv[2] == 'escape':\\n"
        "    os.setsid()\\n"
        "open(sys.argv[1], 'a').write(f'{os.getpid()}\\\\n')\\n"
        "time.sleep(300)\\n"
    )
    child = subprocess.Popen([sys.executable, "-c", child_code, pids, trap])
    with open(pids, "a") as f:
        f.write(f"{os.getpid()}\\n")
    while len(open(pids).read().split()) < 2:
        time.sleep(0.02)
    print("ready", flush=True)
    try:
        child.wait()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
    """
)


class Trigger(io.StringIO):
    """An output stream that calls ``action`` once it has seen ``word``."""

    def __init__(self, word: str, action) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.word, self.action, self.fired = word, action, False

    def write(self, text: str) -> int:
        written = super().write(text)
        if not self.fired and self.word in self.getvalue():
            self.fired = True
            self.action()
        return written


def pids_in(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def send_later(signum: int) -> callable:  # type: ignore[valid-type]
    return lambda: os.kill(os.getpid(), signum)


def test_output_is_streamed_redacted_and_captured_raw() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = "import sys; print('token=abcdef123456 ok'); print('oops abcdef123456', file=sys.stderr)"
    done = run([PY, "-c", code], stdout=out, stderr=err,
               redact=lambda text: text.replace("abcdef123456", "***"))
    assert done.ok and done.returncode == 0
    assert out.getvalue() == "token=*** ok\n" and err.getvalue() == "oops ***\n"
    assert "abcdef123456" in done.stdout  # the caller parses the raw text; it prints only redacted


def test_stdin_is_fed_and_closed_and_the_exit_code_kept() -> None:
    code = "import sys; data = sys.stdin.read(); print(data.upper()); sys.exit(3)"
    done = run([PY, "-c", code], stdin="secret value")
    assert done.returncode == 3 and not done.ok
    assert done.stdout.strip() == "SECRET VALUE"


def test_a_missing_program_is_a_clear_error() -> None:
    with pytest.raises(CommandFailed) as caught:
        run(["/nonexistent/wrangler", "deploy"])
    assert caught.value.returncode == 127
    assert "cannot run `/nonexistent/wrangler deploy`" in str(caught.value)


def test_the_deadline_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    done = run([PY, "-c", LAUNCHER, str(pidfile)], timeout=1.0, grace=1.0)
    assert done.timed_out and not done.ok
    assert len(pids_in(pidfile)) == 2
    assert not any(alive(pid) for pid in pids_in(pidfile))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_group_and_wins_over_exit_code_zero(tmp_path: Path, signum: int) -> None:
    pidfile = tmp_path / "pids"
    out = Trigger("ready", send_later(signum))
    with pytest.raises(Interrupted) as caught:
        run([PY, "-c", LAUNCHER, str(pidfile)], stdout=out, grace=2.0)
    assert out.fired
    assert caught.value.signum == signum and caught.value.exit_code == 128 + signum
    assert "interrupted by " + signal.Signals(signum).name in str(caught.value)
    assert len(pids_in(pidfile)) == 2
    assert not any(alive(pid) for pid in pids_in(pidfile))
    # the previous handlers are back: SIGINT raises KeyboardInterrupt again
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_children_that_ignore_signals_are_killed_after_the_grace_period(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    out = Trigger("ready", send_later(signal.SIGINT))
    with pytest.raises(Interrupted):
        run([PY, "-c", LAUNCHER, str(pidfile), "ignore"], stdout=out, grace=0.5)
    assert len(pids_in(pidfile)) == 2
    assert not any(alive(pid) for pid in pids_in(pidfile))


def test_a_descendant_that_left_the_group_is_stopped_too(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    out = Trigger("ready", send_later(signal.SIGINT))
    with pytest.raises(Interrupted):
        run([PY, "-c", LAUNCHER, str(pidfile), "escape"], stdout=out, grace=1.0)
    pids = pids_in(pidfile)
    assert len(pids) == 2
    assert not any(alive(pid) for pid in pids)


def test_leftovers_of_a_normal_exit_are_stopped(tmp_path: Path) -> None:
    """The leader exits at once; the child it spawned (same group) must not keep running."""
    pidfile = tmp_path / "pids"
    code = textwrap.dedent(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
        open({str(pidfile)!r}, "w").write(str(child.pid))
        time.sleep(0.3)
        """
    )
    done = run([PY, "-c", code], grace=1.0)
    assert done.ok
    assert not alive(pids_in(pidfile)[0])


def test_sigterm_outside_a_command_raises_a_keyboard_interrupt_with_the_signal() -> None:
    event = threading.Event()
    with pytest.raises(SignalInterrupt) as caught, signals_as_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
        event.wait(5)  # the handler raises in the main thread before this returns
    assert caught.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (Interrupted(signal.SIGINT, command="wrangler deploy"), 130),
        (Interrupted(signal.SIGTERM), 143),
        (SignalInterrupt(signal.SIGTERM), 143),
        (KeyboardInterrupt(), 130),
    ],
)
def test_the_task_boundary_exits_128_plus_the_signal(raised: BaseException, code: int) -> None:
    from invoke.exceptions import Exit

    from dome_tasks.cli.common import boundary

    @boundary
    def task() -> None:
        raise raised

    with pytest.raises(Exit) as caught:
        task()
    assert caught.value.code == code
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_the_task_boundary_masks_credentials_in_the_last_message(monkeypatch) -> None:
    from invoke.exceptions import Exit

    from dome_tasks.cli.common import boundary
    from dome_tasks.errors import DomeError

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "tok-0123456789")

    @boundary
    def task() -> None:
        raise DomeError("the API said: bad token tok-0123456789")

    with pytest.raises(Exit) as caught:
        task()
    assert caught.value.message == "error: the API said: bad token ***"
