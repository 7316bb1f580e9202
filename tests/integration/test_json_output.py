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


def test_a_dry_run_never_claims_a_health_result_it_cannot_know(workspace, emulator):
    """constellation has no health check (health_path: null): its dry run and plan say so, in
    text and in --json, instead of 'success/unhealthy'."""
    manifest = workspace / "sample" / "dome.yaml"
    manifest.write_text(manifest.read_text().replace(
        "    path: services/constellation\n",
        "    path: services/constellation\n    health_path: null\n"))
    for argv in (["deploy-env", "all", "staging", "--dry-run"], ["plan", "all", "staging"]):
        text = invoke(workspace, emulator, *argv)
        machine = invoke(workspace, emulator, *argv, "--json")
        assert text.returncode == machine.returncode == 0, text.stderr + machine.stderr
        found = json.loads(machine.stdout)
        records = {s["service"]: s["display"] for s in found["steps"] if s["event"] == "record"
                   and s["description"].startswith("record deploy")}
        assert records["constellation"] == (
            "ledger: deploy, no health check (health_path: null, version_id=<new-version>)")
        assert records["silo"].startswith("ledger: deploy, success or unhealthy as the health "
                                          "check finds")
        lines = text.stdout.splitlines()
        shown = lines[lines.index("→ record deploy of constellation-staging") + 1]
        assert shown == "  " + records["constellation"]
        assert "→ verify constellation-staging" not in lines


#: Every task that takes --json, with a bad word or value its own code refuses: one document
#: with "ok": false on stdout, the message on stderr, exit 2.
REFUSED = [
    (["deploy-env", "sillo", "staging"], "deploy", "unknown service 'sillo'; did you mean 'silo'?"),
    (["deploy-env", "silo", "stagin"], "deploy", "unknown environment 'stagin'; did you mean"),
    (["deploy", "sillo"], "deploy", "unknown service 'sillo'"),
    (["plan", "silo", "stagin"], "plan", "unknown environment 'stagin'"),
    (["status", "sillo", "staging"], "status", "unknown service 'sillo'"),
    (["verify", "silo", "stagin"], "verify", "unknown environment 'stagin'"),
    (["diff", "sillo", "staging"], "diff", "unknown service 'sillo'"),
    (["provision", "stagin"], "provision", "unknown environment 'stagin'"),
    (["history", "sillo"], "history", "unknown service 'sillo'; did you mean 'silo'?"),
    (["history", "silo", "stagin"], "history", "unknown environment 'stagin'"),
    (["history", "--limit", "abc"], "history", "--limit 'abc' is not a whole number"),
    (["metrics", "--env", "stagin"], "metrics", "unknown environment 'stagin'"),
    (["metrics", "--since", "xyz"], "metrics", "--since 'xyz' is neither a date/time nor an age"),
    (["secrets-check", "stagin"], "secrets-check", "unknown environment 'stagin'"),
    (["secrets-sync", "staging", "sillo", "--from-env"], "secrets-sync", "unknown service 'sillo'"),
    (["preview-up", "abc"], "preview", "'abc' is not a pull request number"),
    (["changed", "--since", "no-such-ref"], "changed", "is not inside a git repository"),
]

#: Every task that takes --json, with a flag it does not have: invoke cannot parse the command
#: line, so no task runs and stdout stays empty (docs/json.md); the message names the flag.
MISTYPED = [
    ["deploy-env", "silo", "staging"], ["deploy", "silo"], ["db-migrate-dev"],
    ["db-migrate-staging"], ["db-migrate-prod"], ["plan", "all", "staging"], ["status", "local"],
    ["history"], ["metrics"], ["verify", "silo", "staging"], ["diff", "silo", "staging"],
    ["import"], ["provision", "staging"], ["changed"], ["secrets-check", "staging"],
    ["secrets-sync", "staging"], ["preview-up", "7"], ["previews"],
]


@pytest.mark.parametrize(("argv", "kind", "message"), REFUSED,
                         ids=[" ".join(argv) for argv, _, _ in REFUSED])
def test_bad_input_with_json_is_one_error_document_and_one_message(project, emulator, argv,
                                                                    kind, message):
    result = invoke(project, emulator, *argv, "--json")
    assert result.returncode == 2, result.stdout + result.stderr
    found = document(result, kind)
    assert found["ok"] is False and message in found["error"], found
    assert f"error: {found['error']}" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("argv", MISTYPED, ids=" ".join)
def test_a_mistyped_flag_with_json_leaves_stdout_empty(workspace, emulator, argv):
    result = invoke(workspace, emulator, *argv, "--json", "--dry-rn")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(f"'{argv[0]}' has no flag '--dry-rn'"), result.stderr
    assert "Traceback" not in result.stderr
