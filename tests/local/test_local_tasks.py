"""The local environment as a user types it: real invoke, real wrangler dev / workerd, on a
copy of the sample workspace (three services in three dependency waves)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psutil
import pytest

from tests.helpers import ROOT, VENV_BIN, run_env

pytestmark = pytest.mark.integration


# Ports of each test's own: the tests of this file run side by side, and some assert URLs.
PORTS = {
    "test_deploy_all_status_redeploy_stop": "28900-28909",
    "test_a_broken_service_stops_the_waves_after_it": "28910-28919",
    "test_the_service_s_dev_vars_reach_wrangler_dev": "28920-28929",
}


@pytest.fixture
def local_workspace(workspace: Path, request: pytest.FixtureRequest) -> Path:
    (workspace / "node_modules").symlink_to(ROOT / "node_modules")
    manifest = workspace / "sample" / "dome.yaml"
    ports = PORTS.get(request.node.name, "28930-28939")
    manifest.write_text(manifest.read_text().replace('ports: "8787-8799"', f'ports: "{ports}"'))
    yield workspace
    invoke(workspace, "stop")
    assert wrangler_processes(workspace) == []


def invoke(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args],
        cwd=workspace,
        env=run_env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=240,
        check=False,
    )


def wrangler_processes(workspace: Path) -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE
        and str(workspace) in " ".join(p.info["cmdline"] or [])
    ]


def rows(table: str) -> list[tuple[str, str, str]]:
    """(service, state, health) of each row of the status table."""
    return [
        tuple(line.split()[i] for i in (0, 1, 3))
        for line in table.splitlines()
        if line.split()[1:2] in (["running"], ["stopped"], ["stale"])
    ]


def test_dry_run_shows_the_waves_and_starts_nothing(local_workspace):
    result = invoke(local_workspace, "deploy-env", "all", "local", "--dry-run", "--jobs", "3")
    assert result.returncode == 0, result.stderr
    assert (
        "→ migrate and start under wrangler dev, wave by wave, up to 3 at a time: "
        "[silo-local] → [constellation-local] → [dome-api-local]\n"
    ) in result.stdout
    assert not (local_workspace / "sample/.dome/local/run").exists()
    assert wrangler_processes(local_workspace) == []


def test_deploy_all_status_redeploy_stop(local_workspace):
    up = invoke(local_workspace, "deploy-env", "all", "local")
    assert up.returncode == 0, up.stdout + up.stderr
    out = up.stdout
    # each service's lines together, wave by wave, on ports in dependency order
    assert (
        out.index("  [wave 1/3] silo: ready at http://127.0.0.1:28900 in ")
        < out.index("  [wave 2/3] constellation: ready at http://127.0.0.1:28901 in ")
        < out.index("  [wave 3/3] dome-api: ready at http://127.0.0.1:28902 in ")
    )
    assert "s\n    silo-db: applied 0001_init.sql, 0002_events.sql\n  [wave 2/3]" in out
    assert rows(out) == [
        ("silo", "running", "ok"),
        ("constellation", "running", "ok"),
        ("dome-api", "running", "ok"),
    ]

    status = invoke(local_workspace, "status", "local")
    assert status.returncode == 0, status.stderr
    assert sorted(rows(status.stdout)) == [
        ("constellation", "running", "ok"),
        ("dome-api", "running", "ok"),
        ("silo", "running", "ok"),
    ]

    again = invoke(local_workspace, "deploy-env", "silo", "local", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "applied" not in again.stderr  # migrations unchanged: not applied again
    document = json.loads(again.stdout)  # one JSON document; the human lines on stderr
    assert (document["schema_version"], document["kind"], document["ok"]) == (1, "deploy", True)
    assert [(s["service"], s["state"], s["healthy"]) for s in document["services"]] == [
        ("silo", "running", True)]
    assert "ready at http://127.0.0.1:28900" in again.stderr
    state = json.loads(invoke(local_workspace, "status", "local", "--json").stdout)
    assert {s["service"]: s["state"] for s in state["services"]} == {
        "silo": "running", "constellation": "running", "dome-api": "running"}

    stopped = invoke(local_workspace, "stop")
    assert (stopped.returncode, stopped.stdout.strip()) == (
        0,
        "stopped: silo, dome-api, constellation",
    )
    assert wrangler_processes(local_workspace) == []
    after = invoke(local_workspace, "status", "local")
    assert sorted(rows(after.stdout)) == [
        ("constellation", "stopped", "-"),
        ("dome-api", "stopped", "-"),
        ("silo", "stopped", "-"),
    ]


def test_a_broken_service_stops_the_waves_after_it(local_workspace):
    source = local_workspace / "sample/services/constellation/src/index.js"
    source.write_text("export default { fetch() { return new Response('x') \n")  # a syntax error
    result = invoke(local_workspace, "deploy-env", "all", "local")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "constellation: wrangler dev exited with code 1" in result.stderr
    assert "Unexpected end of file" in result.stderr  # the log's last lines
    assert "not started (an earlier wave failed): dome-api" in result.stderr
    assert "  [wave 2/3] constellation: FAILED after" in result.stdout
    assert "  [wave 3/3] dome-api: not started (an earlier wave failed)" in result.stdout
    # the wave before stays up, ready for `deploy-env constellation local` once it is fixed
    status = invoke(local_workspace, "status", "local")
    assert sorted(rows(status.stdout)) == [
        ("constellation", "stopped", "-"),
        ("dome-api", "stopped", "-"),
        ("silo", "running", "ok"),
    ]


def test_the_service_s_dev_vars_reach_wrangler_dev(local_workspace):
    """`.dev.vars` beside the service's own config holds its local secrets: wrangler dev reads
    it from the rendered config's folder, where dome links it (no copy of the secret)."""
    import json
    import urllib.request

    dev_vars = local_workspace / "sample" / "services" / "silo" / ".dev.vars"
    dev_vars.write_text("SERVICE_NAME=silo-with-local-secret\n")
    up = invoke(local_workspace, "deploy-env", "silo", "local")
    assert up.returncode == 0, up.stdout + up.stderr
    with urllib.request.urlopen("http://127.0.0.1:28920/health", timeout=30) as answer:
        assert json.load(answer)["service"] == "silo-with-local-secret"
    linked = local_workspace / "sample" / ".dome" / "build" / "local" / "silo" / ".dev.vars"
    assert linked.is_symlink() and linked.resolve() == dev_vars.resolve()
    assert "silo-with-local-secret" not in up.stdout + up.stderr
