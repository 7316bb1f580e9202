"""Does the record tell the truth? What a worker's history says serves, checked against what the
emulator serves, and a health endpoint for the emulator's workers that can be held open (so that
a signal can land during verification).

Used by ``benchmarks/truth_harness.py`` (faults and signals, every phase of a deploy) and by the
tests that run its fast subset.
"""

from __future__ import annotations

import json
import os
import signal as _signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dome_tasks.lifecycle.ledger import FULL_TRAFFIC_KINDS, LedgerRecord
from dome_tasks.lifecycle.reconcile import unsettled

__all__ = ["PHASES", "Harness", "HealthServer", "Verdict", "judge", "recorded_live"]


def recorded_live(records: Iterable[LedgerRecord], service: str, environment: str) -> str | None:
    """The version the history says serves *service* in *environment*: the newest traffic record
    that names what serves (a failure, or an interruption that changed nothing, names nothing).
    ``"unknown"`` while the newest such record is an unsettled unknown outcome."""
    settled = {r.extra.get("settles") for r in records if r.extra.get("settles")}
    for record in reversed([r for r in records
                            if r.service == service and r.environment == environment]):
        if record.kind not in FULL_TRAFFIC_KINDS:
            continue
        if unsettled(record):
            if record.id in settled:
                continue
            return "unknown"
        if record.outcome != "failure" and record.version_id:
            return record.version_id
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether the record held; ``why`` says what differed."""

    held: bool
    why: str = ""


def judge(records: Sequence[LedgerRecord], service: str, environment: str, live: str | None,
          *, uploads: int | None = None, most_uploads: int = 1) -> Verdict:
    """The record holds when it names exactly the version *live* (what the emulator serves) and
    a deploy uploaded at most *most_uploads* versions (*uploads*: how many it did)."""
    said = recorded_live(records, service, environment)
    if said != live:
        return Verdict(False, f"the record says {said or 'nothing'} serves; {live or 'nothing'} does")
    if uploads is not None and uploads > most_uploads:
        return Verdict(False, f"{uploads} versions uploaded by one deploy")
    return Verdict(True)


class HealthServer:
    """Answers ``GET`` for ``<worker>.<subdomain>.workers.dev`` with 200 when the emulator serves
    the worker (404 otherwise); with ``hold`` set, each request first waits that long (a slow
    health check: the window for a signal). ``seen`` is set by the first request."""

    def __init__(self, emulator: Any, *, hold: float = 0.0) -> None:
        self.emulator = emulator
        self.hold = hold
        self.seen = threading.Event()
        self._release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[HealthServer]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.seen.set()
                if server.hold:
                    server._release.wait(server.hold)
                state = server.emulator.state
                worker = self.headers.get("Host", "").split(":")[0].removesuffix(
                    f".{state.subdomain}.workers.dev")
                with state.lock:
                    status = 200 if worker in state.workers and state.traffic(worker) else 404
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._release.set()
            self._server.shutdown()
            self._server.server_close()


# --- one run under a fault or a signal, judged ---------------------------------------------------

#: What each phase of a deploy waits on, for a signal to land in it.
PHASES = ("build", "upload", "activation", "verification")


@dataclass
class Harness:
    """Runs the real ``invoke deploy-env SERVICE ENV`` in *workspace* against *emulator* (with
    *health* answering verification), under a fault or a signal, then judges the record with
    the real ``invoke history`` (which settles unknown outcomes) and ``invoke status``.

    For the ``build`` phase, the workspace's build must touch ``$DOME_TRUTH_HOLD`` and sleep."""

    emulator: Any
    workspace: Path
    invoke: Path
    env: dict[str, str]
    health: HealthServer
    service: str = "silo"
    environment: str = "staging"
    worker: str = "silo-staging"
    timeout: float = 300.0

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.invoke), *args], cwd=self.workspace,
                              env={**self.env, **(env or {})}, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=self.timeout, check=False)

    def deploy_args(self, *, build: bool = False) -> tuple[str, ...]:
        return ("deploy-env", self.service, self.environment, "--no-migrate", "--force",
                *(() if build else ("--no-build",)))

    def uploads(self) -> int:
        """Versions uploaded so far (answered uploads: a new worker's PUT, a version's POST)."""
        where = f"/workers/scripts/{self.worker}"
        return len([r for r in self.emulator.requests
                    if r.status == 200 and ((r.method == "PUT" and r.path.endswith(where))
                                            or (r.method == "POST"
                                                and r.path.endswith(where + "/versions")))])

    def live(self) -> str | None:
        state = self.emulator.state
        with state.lock:
            if self.worker not in state.workers or not state.traffic(self.worker):
                return None
            return state.worker(self.worker).current_version().id

    def judge(self, uploads_before: int, *, check_status: bool = True) -> Verdict:
        """Read the history (and, with *check_status*, the status) as a user would."""
        shown = self.run("history", self.service, self.environment, "--json")
        if shown.returncode != 0:
            return Verdict(False, f"history failed: {shown.stderr.strip()[-300:]}")
        records = [LedgerRecord.from_dict(r) for r in json.loads(shown.stdout)["records"]]
        live = self.live()
        verdict = judge(records, self.service, self.environment, live,
                        uploads=self.uploads() - uploads_before)
        if not verdict.held or not check_status:
            return verdict
        shown = self.run("status", self.service, self.environment, "--json")
        if shown.returncode != 0:
            return Verdict(False, f"status failed: {shown.stderr.strip()[-300:]}")
        versions = json.loads(shown.stdout).get("versions") or []
        top = max(versions, key=lambda v: v["percentage"])["version_id"] if versions else None
        if top != live:
            return Verdict(False, f"status says {top} serves; {live} does")
        return verdict

    def _settle_requests(self, since: int, seconds: float = 60.0) -> None:
        """Wait until no request held by a delay is pending (a landing activation included);
        *since*: how many requests the emulator had logged before the run."""
        deadline = time.monotonic() + seconds
        held = [f for f in self.emulator.faults if f.delay and f.hits]
        while time.monotonic() < deadline:
            logged = [r for r in self.emulator.requests[since:] if r.fault]
            if all(len([r for r in logged if f.matches(r.method, r.path)]) >= f.hits
                   for f in held):
                return
            time.sleep(0.1)

    def fault(self, method: str, path: str, *, command_timeout: float | None = None,
              check_status: bool = True, **fault: Any) -> tuple[int, Verdict]:
        """One deploy under ``emulator.faults.add(path=path, method=method, **fault)`` (each
        wrangler run limited to *command_timeout* seconds when given): its exit code and
        whether the record held afterwards."""
        before, since = self.uploads(), len(self.emulator.requests)
        self.emulator.faults.add(path=path, method=method, **fault)
        env = {} if command_timeout is None else {
            "INVOKE_DOME_COMMAND_TIMEOUT": f"{command_timeout:g}"}
        try:
            done = self.run(*self.deploy_args(), env=env)
        finally:
            self._settle_requests(since)
            self.emulator.faults.clear()
        return done.returncode, self.judge(before, check_status=check_status)

    def signal(self, phase: str, signum: int, *, lands: bool = True,
               check_status: bool = True) -> tuple[int, Verdict]:
        """One deploy with *signum* sent once it is in *phase* (see :data:`PHASES`); at
        ``activation`` the held request lands after the signal when *lands*."""
        before, since = self.uploads(), len(self.emulator.requests)
        hold = self.workspace / ".dome-truth-hold"
        hold.unlink(missing_ok=True)
        faults = self.emulator.faults
        ready: Any
        if phase == "build":
            ready = hold.exists
        elif phase == "upload":
            held = faults.add(path=f"/workers/scripts/{self.worker}/versions$", method="POST",
                              delay=20)
            ready = lambda: held.hits > 0  # noqa: E731
        elif phase == "activation":
            held = faults.add(path=f"/workers/scripts/{self.worker}/deployments$", method="POST",
                              delay=3, lands=lands)
            ready = lambda: held.hits > 0  # noqa: E731
        else:
            self.health.hold, self.health.seen = 20.0, threading.Event()
            ready = self.health.seen.is_set
        run = subprocess.Popen([str(self.invoke), *self.deploy_args(build=phase == "build")],
                               cwd=self.workspace, env={**self.env, "DOME_TRUTH_HOLD": str(hold)},
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + self.timeout
            while not ready() and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            if run.poll() is None:
                if signum == _signal.SIGINT:
                    os.killpg(run.pid, signum)  # what a terminal's Ctrl-C does
                else:
                    os.kill(run.pid, signum)  # what `kill` or a CI runner does
            run.communicate(timeout=self.timeout)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
            self._settle_requests(since)
            faults.clear()
            self.health.hold = 0.0
        return run.returncode, self.judge(before, check_status=check_status)
