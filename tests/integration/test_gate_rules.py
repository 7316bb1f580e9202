"""The rules every gated wrangler attempt obeys (dome_tasks/wrangler/early.py, gate.py, exec.py),
with a stand-in for wrangler: a node script behind the real preload, reaching a local server.

* A run started early whose step never runs is killed at once, even one that ignores SIGINT.
* Its command timeout counts from its adoption (the step's own time), not from its early start.
* A retry waits at the same gate as the first attempt: it never sends what the gate would not.
* A signal while wrangler waits at its gate keeps the gate shut: it leaves having sent nothing.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import time
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dome_tasks.errors import Interrupted
from dome_tasks.lifecycle.lock import LockBusy
from dome_tasks.plan.steps import Command, Step
from dome_tasks.runner import Runner
from dome_tasks.wrangler.early import EarlyRun
from dome_tasks.wrangler.env import hermetic_env
from dome_tasks.wrangler.exec import WranglerExec
from dome_tasks.wrangler.gate import NetGate
from dome_tasks.wrangler.retry import RetryPolicy

pytestmark = pytest.mark.integration

# argv: URL, seconds to wait before calling it, then "hang" (never exit) or "stubborn" (ignore
# SIGINT/SIGTERM); with MARKER set, the first run fails as wrangler does on a dropped connection.
WRANGLER = r"""
const fs = require("node:fs");
const [url, wait, ...how] = process.argv.slice(2);
if (how.includes("stubborn")) for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => {});
const marker = process.env.MARKER;
if (marker && !fs.existsSync(marker)) {
  fs.writeFileSync(marker, "");
  console.error("✘ [ERROR] fetch failed");
  process.exit(1);
}
setTimeout(() => {
  require("node:http").get(url, (answer) => {
    answer.resume();
    answer.on("end", () => { if (!how.includes("hang")) process.exit(0); });
  });
}, Number(wait) * 1000);
setInterval(() => {}, 1000);
"""


class Server:
    """A local server that counts the requests it gets."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():  # type: ignore[no-untyped-def]
    serving = Server()
    yield serving
    serving.close()


def command(tmp_path: Path, server: Server, wait: float, *how: str) -> Command:
    script = tmp_path / "wrangler.js"
    script.write_text(WRANGLER)
    node = shutil.which("node")
    assert node is not None
    return Command((node, str(script), server.url, str(wait), *how), cwd=tmp_path,
                   retry_safe=True, wrangler=True)


def early(tmp_path: Path, server: Server, ready: Future[None], wait: float, *how: str,
          timeout: float = 60) -> EarlyRun:
    env = hermetic_env(os.environ, state_dir=tmp_path / "state", environment="t")
    return EarlyRun(command(tmp_path, server, wait, *how), env, ready, timeout=timeout,
                    redact=lambda text: text, grace=5.0)


def held() -> Future[None]:
    ready: Future[None] = Future()
    ready.set_result(None)
    return ready


def test_a_run_never_adopted_is_killed_at_once_even_when_it_ignores_sigint(
        tmp_path, server) -> None:
    run = early(tmp_path, server, held(), 3.0, "stubborn")
    time.sleep(1.0)  # running: node started and ignores SIGINT and SIGTERM from now on
    began = time.monotonic()
    run.cancel()  # e.g. the service was unchanged: the deploy is skipped
    assert time.monotonic() - began < 1.0  # the skip does not wait out a grace period
    assert run._done.done()  # it is gone
    time.sleep(3.0)
    assert server.hits == []


def test_the_timeout_counts_from_adoption_not_from_the_early_start(tmp_path, server) -> None:
    run = early(tmp_path, server, held(), 2.0, timeout=1.5)
    time.sleep(1.8)  # past its timeout, counted from its start: its step has not run yet
    attempt = run.attempt(io.StringIO(), io.StringIO())
    assert attempt.ok and not attempt.timed_out, attempt.stderr
    assert server.hits == ["/"]


def test_the_timeout_still_stops_a_run_that_hangs_once_adopted(tmp_path, server) -> None:
    run = early(tmp_path, server, held(), 0.0, "hang", timeout=1.5)
    time.sleep(1.0)
    adopted = time.monotonic()
    attempt = run.attempt(io.StringIO(), io.StringIO())
    assert attempt.timed_out
    assert 1.5 <= time.monotonic() - adopted < 8


def test_a_retry_waits_at_the_same_gate_as_the_first_attempt(tmp_path, server) -> None:
    ready: Future[None] = Future()  # the deploy's lock, still being taken
    marker = tmp_path / "failed-once"
    runner = WranglerExec(tmp_path / "state", base_env={**os.environ, "MARKER": str(marker)},
                          out=io.StringIO(), err=io.StringIO(), sleep=lambda _: None,
                          retry_policy=RetryPolicy(max_retries=2), gate=lambda _: NetGate(ready))

    def busy_after_the_first_attempt() -> None:
        while not marker.exists():
            time.sleep(0.05)
        time.sleep(1.0)  # the retry runs meanwhile
        ready.set_exception(LockBusy("staging/silo is locked by someone else"))

    threading.Thread(target=busy_after_the_first_attempt, daemon=True).start()
    step = Step("deploy", "deploy silo", command(tmp_path, server, 0.0), "silo", "staging")
    with pytest.raises(LockBusy):
        Runner(None, out=io.StringIO(), command_runner=runner).run_step(step)  # type: ignore[arg-type]
    assert marker.exists()  # the first attempt failed before reaching the network
    assert server.hits == []  # and its retry was held at the gate, then refused


def test_a_signal_while_wrangler_waits_at_its_gate_keeps_the_gate_shut(tmp_path, server) -> None:
    ready: Future[None] = Future()  # the lock is not held yet
    run = early(tmp_path, server, ready, 0.0, "stubborn")
    threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C at the gate
    threading.Timer(1.5, ready.set_result, (None,)).start()  # then the lock is held
    began = time.monotonic()
    with pytest.raises(Interrupted):
        run.attempt(io.StringIO(), io.StringIO())
    assert time.monotonic() - began < 3.0  # it left at once (it ignores SIGINT)
    time.sleep(1.0)
    assert server.hits == []  # the gate never opened, though the lock came
