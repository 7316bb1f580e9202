"""Preview environments and secrets as a user types them: real invoke, the pinned wrangler, the
Cloudflare API emulator, and a health stand-in answering for every worker the emulator holds."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.testing.emulator import Emulator
from tests.health_server import health_server
from tests.helpers import ROOT, VENV_BIN, run_env

pytestmark = pytest.mark.integration

SECRET = "pR3view-S3CRET-value-4e1d"
DOME_STORES = {"dome-history", "dome-previews", "dome-state"}  # dome's own records and locks


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def health(emulator: Emulator) -> Iterator[str]:
    """200 for a worker the emulator serves a version of, 404 otherwise."""
    state = emulator.state

    def answer(host: str) -> int:
        worker = host.split(".")[0]
        with state.lock:
            return 200 if worker in state.workers and state.workers[worker].versions else 404

    with health_server(answer) as url:
        yield url


def invoke(ws: Path, emulator: Emulator, health: str, *args: str, **extra: str):
    env = run_env(**emulator.env(), INVOKE_DOME_HEALTH_BASE_URL=health,
                  INVOKE_DOME_VERIFY_DEADLINE="3", **extra)
    env.pop("SILO_API_KEY", None)
    env.update(extra)
    return subprocess.run([str(VENV_BIN / "invoke"), *args], cwd=ws, env=env, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=300)


def snapshot(emulator: Emulator) -> dict[str, object]:
    """What the account holds, dome's own record stores left out."""
    state = emulator.state
    with state.lock:
        return {
            "workers": {n: len(w.versions) for n, w in state.workers.items()},
            "d1": sorted((d.uuid, d.name) for d in state.d1.values()
                         if d.name not in DOME_STORES),
            "kv": sorted((k.id, k.title) for k in state.kv.values() if k.title not in DOME_STORES),
            "r2": sorted(state.buckets), "queues": sorted(q.name for q in state.queues.values()),
            "vectorize": sorted(state.vectorize),
        }


def uploads(emulator: Emulator) -> list[str]:
    found = []
    for request in emulator.requests:
        parts = request.path.split("/")
        if "scripts" in parts and ((request.method == "PUT" and len(parts) == 6) or
                                   (request.method == "POST" and parts[-1] == "versions")):
            found.append(parts[parts.index("scripts") + 1])
    return found


def everything_written(ws: Path, *results: subprocess.CompletedProcess) -> str:
    """Every output, every file under the workspace's .dome (history, logs, rendered configs),
    and the argv of every request the emulator saw."""
    texts = [r.stdout + r.stderr for r in results]
    for path in ws.rglob("*"):
        if path.is_file() and ".dome" in path.parts:
            texts.append(path.read_text(errors="replace"))
    return "\n".join(texts)


def test_a_preview_comes_up_verified_redeploys_only_changes_and_goes_down_leaving_nothing(
        project: Path, emulator: Emulator, health: str) -> None:
    state = emulator.state
    staging_db = state.add_d1("silo-db-staging", "00000000-0000-4000-8000-0000000000a1")
    state.add_bucket("silo-objects-staging")
    state.add_bucket("silo-objects-pr-7")  # same name as the preview's bucket, not created by it
    before = snapshot(emulator)

    up = invoke(project, emulator, health, "preview-up", "7", "--yes", "--json",
                "--secrets-from-env", SILO_API_KEY=SECRET)
    assert up.returncode == 0, up.stdout + up.stderr
    result = json.loads(up.stdout)  # one JSON document on stdout
    assert result["urls"] == {s: f"https://{s}-pr-7.emulator.workers.dev"
                              for s in ("silo", "constellation", "dome-api")}
    assert {s["service"]: (s["result"], s["health"]) for s in result["deploy"]["services"]} == {
        s: ("deployed", "healthy") for s in ("silo", "constellation", "dome-api")}
    api = state.worker("dome-api-pr-7").current_version()
    assert api.binding("SILO")["service"] == "silo-pr-7"
    assert api.binding("CONSTELLATION")["service"] == "constellation-pr-7"
    silo = state.worker("silo-pr-7")
    assert silo.secrets == {"SILO_API_KEY": SECRET}
    database = state.d1_by_name("silo-db-pr-7")
    assert silo.current_version().binding("DB")["id"] == database.uuid != staging_db.uuid
    assert "items" in database.tables()  # migrated
    assert "uses the existing R2 bucket silo-objects-pr-7" in up.stderr

    uploaded = len(uploads(emulator))
    again = invoke(project, emulator, health, "preview-up", "7", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(uploads(emulator)) == uploaded, "nothing changed: nothing is uploaded again"
    assert again.stdout.count("skip ") >= 3
    (project / "sample/services/dome-api/src/index.js").open("a").write("// changed\n")
    changed = invoke(project, emulator, health, "preview-up", "7", "--yes")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert uploads(emulator)[uploaded:] == ["dome-api-pr-7"]  

    listed = invoke(project, emulator, health, "previews", "--json")
    assert [(p["environment"], p["template"]) for p in json.loads(listed.stdout)] == [("pr-7", "staging")]

    down = invoke(project, emulator, health, "preview-down", "7", "--yes")
    assert down.returncode == 0, down.stdout + down.stderr
    assert snapshot(emulator) == before  # staging and the bucket it did not create untouched
    twice = invoke(project, emulator, health, "preview-down", "7", "--yes")
    assert twice.returncode == 0 and "nothing to delete" in twice.stdout
    assert json.loads(invoke(project, emulator, health, "previews", "--json").stdout) == []
    assert SECRET not in everything_written(project, up, again, changed, down)
    assert SECRET not in "\n".join(r.line for r in emulator.requests)


def test_secrets_check_then_sync_then_check_passes_and_the_value_leaks_nowhere(
        project: Path, emulator: Emulator, health: str, tmp_path: Path) -> None:
    check = invoke(project, emulator, health, "secrets-check", "staging", "--json")
    assert check.returncode == 1
    silo = next(s for s in json.loads(check.stdout)["services"] if s["service"] == "silo")
    assert silo["missing"] == ["SILO_API_KEY"] and silo["deployed"] is False

    dotenv = tmp_path / "staging.env"
    dotenv.write_text(f'# staging\nSILO_API_KEY="{SECRET}"\nNOT_DECLARED=x\n')
    sync = invoke(project, emulator, health, "secrets-sync", "staging", "--from-file", str(dotenv))
    assert sync.returncode == 0, sync.stdout + sync.stderr
    assert emulator.state.worker("silo-staging").secrets == {"SILO_API_KEY": SECRET}
    assert "dome-api-staging" not in emulator.state.workers  # declares nothing: untouched

    again = invoke(project, emulator, health, "secrets-check", "staging")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "every declared secret is set" in again.stdout
    assert SECRET not in everything_written(project, check, sync, again)

    # production refuses to deploy over a live worker that lacks a declared secret
    sync = invoke(project, emulator, health, "secrets-sync", "production", "--from-file",
                  str(dotenv), "--yes")
    assert sync.returncode == 0, sync.stdout + sync.stderr
    env = {**os.environ, **emulator.env()}
    subprocess.run([str(ROOT / "node_modules/.bin/wrangler"), "secret", "delete", "SILO_API_KEY",
                    "--name", "silo"], cwd=project, env=env, capture_output=True, check=True,
                   stdin=subprocess.DEVNULL, timeout=120)
    refused = invoke(project, emulator, health, "deploy", "silo", "--yes")
    assert refused.returncode == 1
    assert "silo: SILO_API_KEY" in refused.stderr and "secrets-sync production" in refused.stderr
    assert "Traceback" not in refused.stderr
