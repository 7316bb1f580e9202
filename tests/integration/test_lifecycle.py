"""The deploy lifecycle end to end: the REAL wrangler 4.86.0 against the Cloudflare API emulator.

A small health server on 127.0.0.1 stands in for the workers' public URLs: for
``Host: <worker>.emulator.workers.dev`` it answers 200, or 500 when the version serving most of
the worker's traffic (read from the emulator's state) has the var ``DOME_TEST_HEALTH=red``.
Every wrangler argv is logged by a shim in ``node_modules/.bin``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Config, Context

from dome_tasks.cli import lifecycle as cli
from dome_tasks.lifecycle.deploy import DeployOptions, deploy
from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.lifecycle.metrics import compute
from dome_tasks.lifecycle.session import LifecycleError
from dome_tasks.lifecycle.traffic import canary, promote, rollback, status
from dome_tasks.plan.rollout import NEW, OLD
from dome_tasks.plan.target import ResolvedRequest, resolve
from dome_tasks.settings import Settings, load_manifest
from dome_tasks.tools import discover_tools
from dome_tasks.wrangler.exec import WranglerFailed
from tests.health_server import health_server
from tests.helpers import ROOT, VENV_BIN
from tests.helpers.lifecycle import deploy_verified, session

pytestmark = pytest.mark.integration

SHIM = """#!/bin/sh
printf '%s\\n' "$*" >> "{log}"
exec "{real}" "$@"
"""
SECRET = "pl4nted-S3CRET-value-7f3a"


@pytest.fixture
def ws(workspace: Path) -> Path:
    """The sample workspace with a logging wrangler shim in front of the pinned wrangler."""
    shim = workspace / "node_modules" / ".bin" / "wrangler"
    shim.parent.mkdir(parents=True)
    shim.write_text(SHIM.format(log=workspace / "wrangler-argv.log", real=ROOT / "node_modules/.bin/wrangler"))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return workspace


@pytest.fixture
def health(cloudflare_emulator) -> Iterator[str]:
    state = cloudflare_emulator.state

    def answer(host: str) -> int:
        worker = host.removesuffix(f".{state.subdomain}.workers.dev")
        try:
            with state.lock:
                version = state.worker(worker).current_version()
        except (KeyError, LookupError):
            return 404
        return 500 if version.vars.get("DOME_TEST_HEALTH") == "red" else 200

    with health_server(answer) as url:
        yield url


@pytest.fixture
def ctx(ws: Path, cloudflare_emulator, health: str, monkeypatch) -> Context:
    for key, value in cloudflare_emulator.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DOME_ACTOR", "integration-test")
    config = Config(overrides={"dome": {
        "manifest": str(ws / "sample" / "dome.yaml"),
        "ledger": str(ws / "ledger.jsonl"),
        "health_base_url": health,
        "verify_deadline": 1.5,
    }})
    return Context(config)


def request(c: Context, services: list[str], environment: str) -> ResolvedRequest:
    manifest = load_manifest(Settings.read(c))
    return resolve(manifest, services, environment, wrangler=discover_tools(manifest.root, dry_run=False).wrangler)


def make_red(ws: Path, service: str = "silo") -> None:
    manifest = ws / "sample" / "dome.yaml"
    text = manifest.read_text()
    anchor = f"      SERVICE_NAME: {service}\n"
    assert anchor in text
    manifest.write_text(text.replace(anchor, anchor + "      DOME_TEST_HEALTH: red\n", 1))


def argv_log(ws: Path) -> list[str]:
    path = ws / "wrangler-argv.log"
    return path.read_text().splitlines() if path.exists() else []


def test_deploy_green_then_red_rolls_back_automatically(ctx, ws, cloudflare_emulator, capsys):
    state = cloudflare_emulator.state
    ledger = Ledger(ws / "ledger.jsonl")

    (green,) = deploy_verified(session(ctx), ["silo"], "production")
    assert green.kind == "deploy" and green.outcome == "success" and green.verified is True
    assert green.actor == "integration-test" and green.worker == "silo"
    assert state.traffic("silo") == {green.version_id: 100}

    cli.verify(ctx, "silo", "production")  # the checks alone, recorded with the live version
    checked = ledger.read().records[-1]
    assert (checked.kind, checked.outcome, checked.version_id) == ("verify", "success", green.version_id)
    capsys.readouterr()

    make_red(ws)
    with pytest.raises(LifecycleError, match="rolled back to"):
        # production is protected: rollback-on-failure is on by default
        deploy_verified(session(ctx), ["silo"], "production")

    records = ledger.read().records
    assert [(r.kind, r.outcome) for r in records] == [
        ("deploy", "success"), ("verify", "success"), ("deploy", "unhealthy"), ("rollback", "success")
    ]
    bad, back = records[2], records[3]
    assert bad.verified is False and bad.version_id != green.version_id
    assert back.automatic and back.from_version == bad.version_id
    assert back.to_version == green.version_id and back.verified is True
    assert state.traffic("silo") == {green.version_id: 100}
    assert any(line.startswith("rollback " + green.version_id) for line in argv_log(ws))
    out = capsys.readouterr().out
    assert "rolling back silo automatically" in out

    silo = compute(records).group("production", "silo")
    assert (silo.changes, silo.failed_changes, silo.recoveries) == (2, 1, 1)

    cli.history(ctx)
    table = capsys.readouterr().out
    assert "rollback (auto)" in table and "unhealthy" in table
    cli.metrics(ctx, json_=True)
    report = json.loads(capsys.readouterr().out)
    row = next(g for g in report["groups"] if g["service"] == "silo")
    assert (row["deployments"], row["changes"], row["failed_changes"]) == (1, 2, 1)
    assert row["change_failure_rate"] == 0.5 and row["mttr_s"] > 0


def test_red_deploy_without_rollback_on_failure_fails_and_says_how(ctx, ws, cloudflare_emulator):
    make_red(ws)
    with pytest.raises(LifecycleError, match="failed verification") as info:
        deploy_verified(session(ctx), ["silo"], "staging")  # not protected
    assert "invoke rollback silo staging" in str(info.value)
    (record,) = Ledger(ws / "ledger.jsonl").read().records
    assert (record.kind, record.outcome) == ("deploy", "unhealthy")


def test_canary_promote_and_abort(ctx, ws, cloudflare_emulator, capsys):
    state = cloudflare_emulator.state
    (base,) = deploy_verified(session(ctx), ["silo"], "staging")
    v1 = base.version_id

    cli.canary(ctx, "silo", "staging", percent=10, message="try v2")
    first = Ledger(ws / "ledger.jsonl").read().records[-1]
    v2 = first.version_id
    assert (first.kind, first.percent, first.from_version) == ("canary", 10, v1)
    assert state.traffic("silo-staging") == {v2: 10, v1: 90}
    cli.status(ctx, "silo", "staging")
    shown = capsys.readouterr().out
    assert f"10%  {v2} [canary]" in shown and f"90%  {v1} [stable]" in shown

    cli.promote(ctx, "silo", "staging")
    assert state.traffic("silo-staging") == {v2: 100}

    cli.canary(ctx, "silo", "staging", percent=10)
    v3 = Ledger(ws / "ledger.jsonl").read().records[-1].version_id
    assert state.traffic("silo-staging") == {v3: 10, v2: 90}
    cli.canary(ctx, "silo", "staging", percent=50)  # a second step: no new upload
    assert state.traffic("silo-staging") == {v3: 50, v2: 50}
    cli.abort(ctx, "silo", "staging")
    assert state.traffic("silo-staging") == {v2: 100}

    kinds = [(r.kind, r.version_id, r.percent) for r in Ledger(ws / "ledger.jsonl").read().records]
    assert kinds == [
        ("deploy", v1, None), ("canary", v2, 10), ("promote", v2, 100),
        ("canary", v3, 10), ("canary", v3, 50), ("abort", v2, None),
    ]
    deploys = [line for line in argv_log(ws) if line.startswith("versions deploy")]
    assert len(deploys) == 5 and all("--yes" in line for line in deploys)
    assert sum(line.startswith("versions upload") for line in argv_log(ws)) == 2
    with pytest.raises(Exception, match="no canary in progress"):
        cli.promote(ctx, "silo", "staging")


def test_secret_put_never_leaks_the_value(ws, cloudflare_emulator, tmp_path):
    tasks = ws / "lifecycle_tasks.py"
    tasks.write_text(
        "from invoke import Collection\nfrom dome_tasks.cli import lifecycle\n"
        "ns = Collection(*lifecycle.TASKS)\n"
        f"ns.configure({{'dome': {{'manifest': {str(ws / 'sample/dome.yaml')!r}, "
        f"'ledger': {str(ws / 'ledger.jsonl')!r}}}}})\n"
    )
    env = {**os.environ, **cloudflare_emulator.env(), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}

    def put(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(VENV_BIN / "invoke"), "-c", "lifecycle_tasks", "secret-put", "SILO_API_KEY", "silo",
             "staging", *extra], cwd=ws, env=env, input=SECRET + "\n", capture_output=True, text=True,
            check=False,
            timeout=120,
        )

    cloudflare_emulator.faults.add(method="PUT", path=r"/secrets$", status=500, times=1)
    failed = put()
    assert failed.returncode == 1, failed.stderr
    assert "Cloudflare API error" in failed.stderr  # the troubleshooting remedy

    done = put("--log-format", "json")
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events] == ["secret", "run"]
    assert events[0]["outcome"] == "success" and events[0]["service"] == "silo"
    assert events[1]["counters"] == {"secret.success": 1}
    assert cloudflare_emulator.state.worker("silo-staging").secrets["SILO_API_KEY"] == SECRET

    everything = [failed.stdout, failed.stderr, done.stdout, done.stderr, "\n".join(argv_log(ws))]
    ledger = ws / "ledger.jsonl"
    everything.append(ledger.read_text() if ledger.exists() else "")
    for path in (ws / "sample" / ".dome").rglob("*"):
        if path.is_file():
            everything.append(path.read_text(errors="replace"))
    for text in everything:
        assert SECRET not in text
    assert "secret put SILO_API_KEY --config" in "\n".join(argv_log(ws))


def _failing(c: Context, capsys, call) -> tuple[WranglerFailed, str]:
    with pytest.raises(WranglerFailed) as info:
        call(session(c))
    return info.value, capsys.readouterr().err


def test_each_troubleshooting_class_prints_its_remedy(ctx, ws, cloudflare_emulator, capsys):
    faults = cloudflare_emulator.faults

    # resource not found: status of a worker that was never deployed (404, code 10007), when
    # the API's own read fails and wrangler's view (with its diagnosis) is what status shows
    faults.add(method="GET", path=r"/deployments$", status=403, code=10000, times=1)
    error, err = _failing(ctx, capsys, lambda s: status(s, request(ctx, ["silo"], "staging").targets[0]))
    assert error.diagnosis.case.key == "resource-not-found" and error.exit_code == 1
    assert "deployment guide 9.1.2" in err and "Verify that the resource exists" in err

    # authentication: the API answers 10000 (to status' own read, then to wrangler)
    faults.add(method="GET", path=r"/deployments$", status=403, code=10000, times=2)
    error, err = _failing(ctx, capsys, lambda s: status(s, request(ctx, ["silo"], "staging").targets[0]))
    assert error.diagnosis.case.key == "authentication"
    assert "Authentication error [code: 10000]" in err and "Run `wrangler login`" in err

    # service binding: the upload is refused because a bound service is missing
    faults.add(method="PUT", path=r"/workers/scripts/constellation-staging$", status=400, code=10143,
               message="Could not resolve service binding 'SILO': worker silo-staging not found",
               times=1)
    error, err = _failing(ctx, capsys,
                          lambda s: deploy_verified(s, ["constellation"], "staging"))
    assert error.diagnosis.case.key == "service-binding" and "9.1.4" in err
    assert "Verify that the service exists and is deployed" in err

    # invalid configuration: the entry point is missing (wrangler fails before any request);
    # removed after the manifest is loaded, since loading it checks that main exists
    def deploy_without_main(s):
        resolved = request(ctx, ["silo"], "staging")
        (ws / "sample/services/silo/src/index.js").unlink()
        options = DeployOptions(build=False, force=True)
        return deploy(s, resolved, options, discover_tools(resolved.root, dry_run=False))

    error, err = _failing(ctx, capsys, deploy_without_main)
    assert error.diagnosis.case.key == "configuration" and "9.1.3" in err
    assert "entry-point" in err  # wrangler's own message stays, the remedy comes under it
    records = Ledger(ws / "ledger.jsonl").read().records
    assert [(r.kind, r.outcome) for r in records] == [("deploy", "failure"), ("deploy", "failure")]


def test_boundary_keeps_wranglers_exit_code(ctx, cloudflare_emulator):
    from invoke.exceptions import Exit

    cloudflare_emulator.faults.add(method="GET", path=r"/deployments$", status=403, code=10000,
                                   times=2)  # status' own read, then wrangler's

    with pytest.raises(Exit) as info:
        cli.status(ctx, "silo", "staging")
    assert info.value.code == 1  # wrangler's exit code, not the generic 2 of DomeError
    assert "error:" in info.value.message and "exited 1" in info.value.message


def test_json_log_events(ctx, ws, capsys):
    deploy_verified(session(ctx, log_format="json"), ["silo"], "staging")
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    by_name = {e["event"]: e for e in events}
    assert by_name["deploy"]["outcome"] == "success" and by_name["deploy"]["duration_ms"] > 0
    assert by_name["deploy"]["service"] == "silo" and by_name["deploy"]["environment"] == "staging"
    assert by_name["verify"]["outcome"] == "success"


def test_dry_runs_show_exactly_the_steps_the_real_runs_execute(ctx, ws, cloudflare_emulator):
    """For each operation: the steps a dry run prints are the steps the real run then executes."""
    target = request(ctx, ["silo"], "staging").targets[0]
    ledger = Ledger(ws / "ledger.jsonl")

    def both(operation) -> tuple[list[str], list[str]]:
        dry, real = session(ctx, dry_run=True), session(ctx)
        operation(dry)
        operation(real)
        assert dry.executed and not ledger.read().problems
        return [s.description for s in dry.executed], [s.description for s in real.executed]

    dry, real = both(lambda s: deploy_verified(s, ["silo"], "staging"))
    assert dry == real == ["render silo-staging -> " + str(target.path), "deploy silo-staging (staging)",
                           "verify silo-staging", "record deploy of silo-staging"]
    v1 = ledger.read().records[-1].version_id

    dry, real = both(lambda s: canary(s, target, 10))
    v2 = ledger.read().records[-1].version_id
    assert dry == [line.replace(v2[:8], NEW).replace(v1[:8], OLD) for line in real]
    assert real[1] == f"canary silo-staging: 10% to {v2[:8]}, 90% to {v1[:8]}"

    dry, real = both(lambda s: promote(s, target))
    assert dry == real == [f"promote silo-staging: 100% to {v2[:8]}", "verify silo-staging",
                           "record promote of silo-staging"]

    dry, real = both(lambda s: rollback(s, target))
    assert dry == real == [f"roll silo-staging back to {v1[:8]}", "verify silo-staging",
                           "record rollback of silo-staging"]
    assert cloudflare_emulator.state.traffic("silo-staging") == {v1: 100}


def test_resources_lists_the_accounts_d1_r2_and_vectorize(ctx, ws, capsys):
    cli.resources(ctx, "stg")
    lines = argv_log(ws)
    assert [line.split(" --")[0] for line in lines] == ["d1 list", "r2 bucket list", "vectorize list"]
    assert "list d1 resources (staging)" in capsys.readouterr().out
