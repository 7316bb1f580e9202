"""The gate on wrangler's network (dome_tasks/wrangler/gate.py, netgate.cjs), with the pinned and
the oldest supported wrangler against the emulator: a deploy started behind a closed gate sends
nothing until dome opens it, then deploys and reports each answer (its activation included); a
gate closed instead (the lock cannot be had) ends wrangler before it sends anything at all."""

from __future__ import annotations

import io
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from dome_tasks import process
from dome_tasks.lifecycle.lock import LockBusy
from dome_tasks.testing.emulator import Emulator
from dome_tasks.wrangler.early import EarlyRun
from dome_tasks.wrangler.env import hermetic_env, run_files
from dome_tasks.wrangler.gate import REFUSED_EXIT, NetGate
from tests.helpers import ROOT, run_env

pytestmark = pytest.mark.integration

WRANGLERS = {
    "pinned": ROOT / "node_modules" / ".bin" / "wrangler",
    "oldest": ROOT / "tests" / "fixtures" / "wrangler-oldest" / "node_modules" / ".bin" / "wrangler",
}


def worker(tmp_path: Path) -> Path:
    (tmp_path / "index.js").write_text("export default { fetch() { return new Response('ok'); } };\n")
    config = tmp_path / "wrangler.toml"
    config.write_text('name = "gated"\nmain = "index.js"\ncompatibility_date = "2025-01-01"\n')
    return config


def deploy(emulator: Emulator, tmp_path: Path, wrangler: Path, gate: NetGate) -> process.Completed:
    env = hermetic_env(run_env(**emulator.env()), state_dir=tmp_path / "state", environment="t")
    return process.run([str(wrangler), "deploy", "--config", str(worker(tmp_path))],
                       cwd=tmp_path, env=gate.environ(env), pass_fds=gate.pass_fds,
                       on_start=gate.started, timeout=120)


@pytest.mark.parametrize("which", list(WRANGLERS))
def test_wrangler_waits_at_the_gate_then_deploys_and_reports_its_activation(
        tmp_path, which) -> None:
    ready: Future[None] = Future()
    answers: list[tuple[str, str, int]] = []
    with Emulator() as emulator:
        def hold_then_open() -> None:
            # wrangler runs (the gate is started) yet the API has seen nothing; then open
            while not gate._threads:  # noqa: SLF001 - started: wrangler's process exists
                threading.Event().wait(0.05)
            threading.Event().wait(1.0)
            seen.append(len(emulator.requests))
            ready.set_result(None)

        seen: list[int] = []
        gate = NetGate(ready, on_answer=lambda *answer: answers.append(answer))
        opener = threading.Thread(target=hold_then_open, daemon=True)
        opener.start()
        try:
            done = deploy(emulator, tmp_path, WRANGLERS[which], gate)
        finally:
            gate.close()
        opener.join(timeout=10)
        assert done.returncode == 0, done.stdout + done.stderr
        assert seen == [0]
        assert emulator.state.worker("gated").traffic()  # deployed
    # a new worker's upload deploys it at once (the activation dome waits for, as the
    # deployment call is for an existing worker)
    heard = [(m, p.split("?")[0].rsplit("/", 1)[-1], s) for m, p, s in answers]
    assert ("PUT", "gated", 200) in heard


@pytest.mark.parametrize("which", list(WRANGLERS))
def test_a_gate_closed_instead_ends_wrangler_before_it_sends_anything(tmp_path, which) -> None:
    refused: Future[None] = Future()
    refused.set_exception(LockBusy("staging/gated is locked by someone else"))
    with Emulator() as emulator:
        gate = NetGate(refused)
        try:
            done = deploy(emulator, tmp_path, WRANGLERS[which], gate)
        finally:
            gate.close()
        assert done.returncode == REFUSED_EXIT, done.stdout + done.stderr
        assert isinstance(gate.refused, LockBusy)
        assert emulator.requests == []  # not one call reached the API
        assert "gated" not in emulator.state.workers


def early(emulator: Emulator, tmp_path: Path, ready: Future[None]) -> EarlyRun:
    """The pinned wrangler's deploy started before its step runs (as Session.start_early)."""
    from dome_tasks.plan.steps import Command

    command = Command((str(WRANGLERS["pinned"]), "deploy", "--config", str(worker(tmp_path))),
                      cwd=tmp_path, wrangler=True)
    env = hermetic_env(run_env(**emulator.env()), state_dir=tmp_path / "state", environment="t")
    return EarlyRun(command, env, ready, timeout=120, redact=lambda text: text, grace=5.0)


def test_a_deploy_started_early_sends_nothing_until_its_step_adopts_it(tmp_path) -> None:
    held: Future[None] = Future()
    held.set_result(None)  # the lock is held at once: only the step is missing
    with Emulator() as emulator:
        run = early(emulator, tmp_path, held)
        threading.Event().wait(3.0)  # long enough to have bundled and reached its gate
        assert emulator.requests == []
        out, err = io.StringIO(), io.StringIO()
        print("  $ wrangler deploy", file=out)  # the step's line comes first
        attempt = run.attempt(out, err)
        assert attempt.ok, attempt.stdout + attempt.stderr
        assert emulator.state.worker("gated").traffic()  # deployed
        assert attempt.output.deploy is not None  # its output file was read
    lines = out.getvalue().splitlines()
    assert lines[0] == "  $ wrangler deploy" and len(lines) > 1  # then what it printed, kept
    assert not [path for path in run_files(run.env) if Path(path).exists()]  # removed


def test_a_deploy_started_early_but_never_adopted_leaves_having_sent_nothing(tmp_path) -> None:
    held: Future[None] = Future()
    held.set_result(None)
    with Emulator() as emulator:
        run = early(emulator, tmp_path, held)
        threading.Event().wait(1.0)
        run.cancel()  # e.g. the service was unchanged, or a check refused the deploy
        assert run._done.done()  # noqa: SLF001 - it stopped
        assert emulator.requests == []  # not one call reached the API
        assert "gated" not in emulator.state.workers
