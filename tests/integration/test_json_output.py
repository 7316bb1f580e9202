"""Machine output as a script reads it: `--json` is exactly one versioned JSON document on
stdout (human text on stderr), and `--log-format json` makes every stderr line one JSON event.
The real invoke, just and wrangler, against the API emulator."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from dome_tasks.testing.emulator import Emulator
from tests.adopt.adopt_helpers import copy_fixture
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account


@pytest.fixture(scope="module")
def emulator():
    with Emulator(account_id=ACCOUNT) as emu:
        yield emu


def invoke(cwd: Path, emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=cwd, env=run_env(**emulator.env()),
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False,
    )


def document(result: subprocess.CompletedProcess[str], kind: str) -> dict:
    """stdout holds exactly one JSON document of *kind* (json.loads refuses anything else)."""
    found = json.loads(result.stdout)
    assert (found["schema_version"], found["kind"]) == (1, kind), found
    return found


@pytest.mark.parametrize(("argv", "kind", "code"), [
    (["deploy-env", "all", "staging", "--dry-run", "--json"], "deploy", 0),
    (["deploy-env", "silo", "staging", "--rehearse", "--json"], "deploy", 0),
    (["deploy-env", "all", "local", "--dry-run", "--json"], "deploy", 0),
    (["plan", "all", "staging", "--json"], "plan", 0),
    (["history", "--json"], "history", 0),
    (["status", "local", "--json"], "status", 0),
    (["diff", "silo", "staging", "--json"], "diff", 1),  # not deployed yet: everything changes
    (["provision", "staging", "--dry-run", "--json"], "provision", None),
    (["verify", "silo", "staging", "--json"], "verify", 1),  # nothing serves it: no health URL
    (["deploy-env", "silo", "nowhere", "--json"], "deploy", 2),  # bad input: still a document
], ids=lambda value: " ".join(value) if isinstance(value, list) else str(value))
def test_json_is_one_document_on_stdout(workspace, emulator, argv, kind, code):
    (workspace / "node_modules").symlink_to(Path(__file__).resolve().parents[2] / "node_modules")
    result = invoke(workspace, emulator, *argv)
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    found = document(result, kind)
    assert "Traceback" not in result.stderr
    if "--dry-run" in argv and kind == "deploy":
        assert found["dry_run"] is True and found["steps"], "a dry run lists its steps"
        assert any(s["event"] in ("deploy", "start") for s in found["steps"])
    if "--rehearse" in argv:
        assert found["ok"] and found["counts"] == {"deployed": 1}
        assert [w["name"] for w in found["rehearsal"]["workers"]] == ["silo-staging"]
        assert "rehearsal: Cloudflare would now hold:" in result.stderr
    if code and kind != "diff":
        assert found["ok"] is False and found["error"] in result.stderr


def test_import_json_is_one_document(tmp_path, emulator):
    project = copy_fixture("monorepo", tmp_path / "repo")
    result = invoke(project, emulator, "import", "--dry-run", "--json")
    found = document(result, "import")
    assert found["dry_run"] is True and found["services"] and found["guesses"]
    assert "GUESS " in result.stderr  # the human report, apart from the document
    assert found["manifest"].startswith(("#", "version")) and not (project / "dome.yaml").exists()


def test_plan_shows_exactly_what_the_dry_run_shows(workspace, emulator):
    plan = invoke(workspace, emulator, "plan", "all", "staging")
    dry = invoke(workspace, emulator, "deploy-env", "all", "staging", "--dry-run")
    assert plan.returncode == dry.returncode == 0, plan.stderr + dry.stderr
    assert plan.stdout == dry.stdout
    assert "apply D1 migrations of silo-db-staging" in plan.stdout and "→ verify" in plan.stdout
    plan_json = document(invoke(workspace, emulator, "plan", "all", "staging", "--json"), "plan")
    dry_json = document(invoke(workspace, emulator, "deploy-env", "all", "staging", "--dry-run",
                               "--json"), "deploy")
    assert plan_json["steps"] == dry_json["steps"]
    assert plan_json["waves"] == [["silo"], ["constellation"], ["dome-api"]]


def test_log_format_json_makes_every_stderr_line_an_event(workspace, emulator):
    (workspace / "node_modules").symlink_to(Path(__file__).resolve().parents[2] / "node_modules")
    result = invoke(workspace, emulator, "deploy-env", "silo", "staging", "--no-verify",
                    "--log-format", "json", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # each line parses
    said = [e["line"] for e in events if e["event"] == "output"]
    assert any(line.startswith("node --check") for line in said), "just's echoed recipe line"
    assert any("Uploaded silo-staging" in line for line in said), "wrangler's own output"
    assert {"build", "deploy", "run"} <= {e["event"] for e in events}
    assert document(result, "deploy")["ok"] is True


def test_status_of_a_worker_never_deployed_says_so(workspace, emulator):
    """A worker the account does not have is "not deployed": no wrangler error, exit 0."""
    (workspace / "node_modules").symlink_to(Path(__file__).resolve().parents[2] / "node_modules")
    machine = invoke(workspace, emulator, "status", "constellation", "staging", "--json")
    assert machine.returncode == 0, machine.stdout + machine.stderr
    found = document(machine, "status")
    assert (found["worker"], found["deployed"], found["versions"]) == (
        "constellation-staging", False, [])
    human = invoke(workspace, emulator, "status", "constellation", "staging")
    assert human.returncode == 0, human.stdout + human.stderr
    assert "constellation-staging (staging): not deployed" in human.stdout
    assert "ERROR" not in human.stderr and "does not exist" not in human.stderr
