"""Rehearse the deploy workflows: their own steps, job by job, against the Cloudflare emulator.

Two repositories: this one (its deploy.yml, in a git copy of the sample workspace) and a fresh
folder shaped like an adopter's monorepo, with dome-deploy.yml copied in and the caller from
docs/ci.md, whose `pip install -r requirements-deploy.txt` installs the wheel built from this
checkout. See tests/ci/workflow_runner.py for how steps run.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from adopter import WHEELHOUSE, Dist, Venv, write_monorepo
from ci_helpers import GIT_ENV, ROOT, commit, git, run_env, write_event
from fake_github import FakeGitHub
from workflow_runner import WorkflowRun

from dome_tasks.ci.preview_comment import MARKER
from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.manifest.loader import load
from dome_tasks.testing.emulator import Emulator, RequestRecord
from dome_tasks.testing.emulator.netguard import guard_env, violations

WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
REUSABLE = ROOT / ".github" / "workflows" / "dome-deploy.yml"
CALLER_MARK = "<!-- adopter-caller: tests/ci read the next block -->"
WORKERS = ["silo-dev", "constellation-dev", "dome-api-dev"]

pytestmark = pytest.mark.integration


def adopter_caller() -> str:
    """The caller workflow docs/ci.md tells adopters to add (the YAML block after the mark)."""
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    block = re.search(re.escape(CALLER_MARK) + r"\s*```yaml\n(.*?)```", text, re.DOTALL)
    assert block, "docs/ci.md lost the adopter's caller block"
    return block.group(1)


class HealthServer:
    """Stands in for the deployed workers (the emulator runs none): 200 on GET, Host recorded.

    The deploy's health checks reach it through INVOKE_DOME_HEALTH_BASE_URL, which keeps the real
    host in the Host header (like ``curl --resolve``)."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        hosts = self.hosts

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hosts.append(f"{self.headers.get('Host')}{self.path}")
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HealthServer:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stage:
    """The emulator, the health stand-in and the network guard one rehearsal runs against."""

    def __init__(self, emulator: Emulator, health: HealthServer, guard_dir: Path) -> None:
        self.emulator, self.health, self.guard_dir = emulator, health, guard_dir
        self.guard = guard_env(guard_dir)
        self.runs = 0

    def run(self, repo: Path, caller: Path, event: str, payload: dict, *, install: bool = False,
            venv: Venv | None = None, wheels: str = "", env: dict[str, str] | None = None,
            secrets: dict[str, str] | None = None) -> WorkflowRun:
        """One run of *caller* for *event*; with *venv*, its Python is the runner's; *env* and
        *secrets* add to the runner's variables and the repository's secrets."""
        self.runs += 1
        work = repo.parent / "runner" / f"{self.runs}-{event}"
        work.mkdir(parents=True)
        base = venv.env(PIP_FIND_LINKS=wheels) if venv is not None else run_env()
        base.update(
            GITHUB_ACTIONS="true",
            GITHUB_EVENT_NAME=event,
            GITHUB_EVENT_PATH=str(write_event(work / "event.json", payload)),
            GITHUB_SERVER_URL="https://github.com",
            CLOUDFLARE_API_BASE_URL=self.emulator.url,  # added: the emulator, the network guard
            npm_registry=self.emulator.env()["npm_registry"],
            INVOKE_DOME_HEALTH_BASE_URL=self.health.url,
            **self.guard,
        )
        base.update(GIT_ENV, **(env or {}))
        given = {"CLOUDFLARE_API_TOKEN": self.emulator.token,
                 "CLOUDFLARE_ACCOUNT_ID": self.emulator.account_id, **(secrets or {})}
        flow = WorkflowRun(repo, caller, base, given, install=install, work=work)
        flow.run()
        return flow


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[Stage]:
    if not WRANGLER.exists():
        pytest.fail("the pinned wrangler is not installed: run `npm ci`")
    guard_dir = tmp_path / "netguard"
    with Emulator() as emulator, HealthServer() as health:
        yield Stage(emulator, health, guard_dir)
    assert violations(guard_dir) == [], "wrangler tried to reach a host other than loopback"


def with_origin(repo: Path, tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "--quiet", "origin", "main")
    return origin


def first_writes(records: list[RequestRecord], names: list[str]) -> list[str]:
    """Workers in the order the emulator first saw a write to their script."""
    seen: list[str] = []
    for record in records:
        match = re.search(r"/workers/scripts/([^/]+)", record.path)
        if match and record.method != "GET" and match.group(1) in names and match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def push(before: str) -> dict:
    return {"ref": "refs/heads/main", "before": before, "repository": {"default_branch": "main"}}


def invoked(flow: WorkflowRun) -> list[str]:
    """The tasks each job ran, in order."""
    return [c.split("invoke ", 1)[1].split(" ")[0]
            for job in flow.jobs.values() for c in job.commands if "invoke " in c]


# --- this repository's deploy.yml ------------------------------------------------------------


@pytest.fixture
def this_repo(repo: Path, tmp_path: Path) -> Path:
    (repo / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for name in ("deploy.yml", "dome-deploy.yml", "preview.yml", "dome-preview.yml"):
        shutil.copy2(ROOT / ".github" / "workflows" / name, workflows / name)
    commit(repo, "workflows")
    with_origin(repo, tmp_path)
    return repo


def test_the_deploy_workflow_deploys_the_changed_services_in_order(this_repo: Path, stage: Stage) -> None:
    repo, emulator = this_repo, stage.emulator
    caller = repo / ".github" / "workflows" / "deploy.yml"
    # 1. The first push to main: no earlier deploy recorded, so every service, in order.
    first = stage.run(repo, caller, "push", push("0" * 40))
    assert first.jobs["deploy"].result == "success", first.jobs["deploy"].log
    assert json.loads(first.jobs["plan"].steps["plan"]["waves"]) == [["silo"], ["constellation"], ["dome-api"]]
    assert first_writes(emulator.requests, WORKERS) == WORKERS
    for name in WORKERS:
        assert len(emulator.state.worker(name).versions) == 1
    tag = git(repo, "ls-remote", "origin", "refs/tags/dome-deployed/development")
    assert tag.split()[0] == git(repo, "rev-parse", "HEAD")
    database = load(repo / "sample/dome.yaml").resolve("silo", "development").d1_databases[0]
    applied = emulator.state.d1[database.database_id].rows("SELECT name FROM d1_migrations")
    assert [row[0] if isinstance(row, (list, tuple)) else row["name"] for row in applied] == [
        "0001_init.sql", "0002_events.sql",
    ]

    # 2. A push that changes silo's entry module: silo, then the two services bound to it.
    before = git(repo, "rev-parse", "HEAD")
    with (repo / "sample/services/silo/src/index.js").open("a") as main:
        main.write("\n// silo v2\n")
    commit(repo, "silo v2")
    (repo / "sample/services/constellation/src/util.js").write_text("export const x = 1;\n")
    commit(repo, "constellation helper")
    start = len(emulator.requests)
    second = stage.run(repo, caller, "push", push(before))
    assert json.loads(second.jobs["plan"].outputs["services"]) == ["silo", "constellation", "dome-api"]
    assert first_writes(emulator.requests[start:], WORKERS) == WORKERS

    # 3. A push that touches only constellation's helper: constellation alone.
    before = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/constellation/src/util.js").write_text("export const x = 2;\n")
    commit(repo, "constellation helper v2")
    third = stage.run(repo, caller, "push", push(before))
    assert json.loads(third.jobs["plan"].outputs["services"]) == ["constellation"]
    versions = {name: len(emulator.state.worker(name).versions) for name in WORKERS}
    assert versions == {"silo-dev": 2, "constellation-dev": 3, "dome-api-dev": 2}
    assert invoked(third) == ["ci-plan", "ci-deploy", "ci-mark-deployed"]

    # 4. A push that changes nothing deployable: the plan says so and nothing else runs.
    before = git(repo, "rev-parse", "HEAD")
    (repo / "NOTES.md").write_text("notes\n")
    commit(repo, "notes")
    fourth = stage.run(repo, caller, "push", push(before))
    assert fourth.jobs["plan"].outputs["deploy"] == "false"
    assert {name: job.result for name, job in fourth.jobs.items()} == {
        "plan": "success", "deploy": "skipped", "record": "skipped",
    }
    assert fourth.deployments == []


def test_a_release_rehearses_staging_then_production_without_overlap(this_repo: Path, stage: Stage) -> None:
    repo, emulator = this_repo, stage.emulator
    caller = repo / ".github" / "workflows" / "deploy.yml"
    for action, prerelease, expected in [
        ("created", True, "staging"),     # a pre-release: staging
        ("published", True, None),        # the same pre-release's `published`: skipped
        ("created", False, None),         # a full release's `created`: skipped
        ("published", False, "production"),  # confirmed by the caller's confirm-protected
    ]:
        flow = stage.run(repo, caller, "release", {
            "action": action, "release": {"tag_name": "v1.0.0", "prerelease": prerelease},
        })
        assert (flow.jobs["plan"].outputs["deploy"] == "true") == (expected is not None)
        if expected:
            assert flow.jobs["deploy"].result == "success", flow.jobs["deploy"].log
            assert [d.environment for d in flow.deployments] == [expected]
    for name in ("silo", "constellation", "dome-api"):
        assert len(emulator.state.worker(f"{name}-staging").versions) == 1
        assert len(emulator.state.worker(name).versions) == 1


def test_without_confirm_protected_production_is_refused(this_repo: Path, stage: Stage) -> None:
    repo = this_repo
    caller = repo / ".github" / "workflows" / "deploy.yml"
    text = caller.read_text(encoding="utf-8")
    caller.write_text(text.replace("      confirm-protected: true", "      confirm-protected: false"))
    flow = stage.run(repo, caller, "release", {
        "action": "published", "release": {"tag_name": "v1.0.0", "prerelease": False},
    })
    assert flow.jobs["deploy"].result == "failure"
    assert "production is protected" in flow.jobs["deploy"].log
    assert flow.jobs["record"].result == "skipped"
    assert flow.jobs["deploy"].artifact == []  # nothing rendered, nothing recorded
    assert "silo" not in stage.emulator.state.workers


# --- this repository's preview.yml -----------------------------------------------------------

PREVIEW_SECRET = "pR3view-rehearsal-S3CRET-91c"
SERVICES = ("silo", "constellation", "dome-api")
GITHUB_REPO = "acme/stack"


def pull_request(action: str, number: int = 7, *, fork: bool = False) -> dict:
    head = "someone/stack" if fork else GITHUB_REPO
    return {"action": action, "number": number,
            "pull_request": {"number": number, "head": {"repo": {"full_name": head}}}}


def test_a_pull_request_gets_a_preview_and_its_urls_in_a_comment_and_closing_takes_it_down(
        this_repo: Path, stage: Stage) -> None:
    repo, state = this_repo, stage.emulator.state
    caller = repo / ".github" / "workflows" / "preview.yml"
    with FakeGitHub(token="ghs_rehearsal_token") as github:
        github.add(GITHUB_REPO, 7, "Please review")
        env = {"GITHUB_REPOSITORY": GITHUB_REPO, "GITHUB_API_URL": github.url}
        secrets = {"PREVIEW_SECRETS": f"# declared secrets\nSILO_API_KEY={PREVIEW_SECRET}\n"}

        def run(event: str, payload: dict) -> WorkflowRun:
            return stage.run(repo, caller, event, payload, env=env, secrets=secrets)

        # 1. Opened: the whole stack as <service>-pr-7, then one comment listing the URLs.
        opened = run("pull_request", pull_request("opened"))
        up, comment = opened.jobs["up"], opened.jobs["comment"]
        assert (up.result, comment.result) == ("success", "success"), up.log + comment.log
        assert (opened.jobs["down"].result, opened.jobs["prune"].result) == ("skipped", "skipped")
        assert all(state.worker(f"{s}-pr-7").versions for s in SERVICES)
        assert state.worker("silo-pr-7").secrets == {"SILO_API_KEY": PREVIEW_SECRET}
        (deployment,) = opened.deployments
        assert deployment.environment == "preview" and "dome-api-pr-7" in deployment.url
        comments = github.comments[(GITHUB_REPO, 7)]
        assert [c["body"].startswith(MARKER) for c in comments] == [False, True]
        for service in SERVICES:
            assert f"| {service} | <https://{service}-pr-7.emulator.workers.dev> | ✅ deployed, healthy |" \
                in comments[1]["body"]
        assert git(repo, "rev-parse", "HEAD") in comments[1]["body"]
        assert [(w.method, w.path) for w in github.writes()] == [
            ("POST", f"/repos/{GITHUB_REPO}/issues/7/comments")]
        assert "### Preview `pr-7` (from staging): up" in up.summary

        # 2. Closed: preview-down deletes what the preview made; the other jobs stay idle.
        closed = run("pull_request", pull_request("closed"))
        assert {name: job.result for name, job in closed.jobs.items()} == {
            "up": "skipped", "comment": "skipped", "down": "success", "prune": "skipped"}, \
            closed.jobs["down"].log
        assert not [name for name in state.workers if name.endswith("-pr-7")]
        assert all(d.name != "silo-db-pr-7" for d in state.d1.values())

        # 3. A fork's pull request runs nothing; the schedule prunes (nothing is left to prune).
        fork = run("pull_request", pull_request("opened", 8, fork=True))
        assert {job.result for job in fork.jobs.values()} == {"skipped"}
        pruned = run("schedule", {"schedule": "17 4 * * *"})
        assert pruned.jobs["prune"].result == "success", pruned.jobs["prune"].log
        assert "0 preview(s) taken down" in pruned.jobs["prune"].log
    logs = "".join(job.log + job.summary for flow in (opened, closed, pruned)
                   for job in flow.jobs.values())
    assert PREVIEW_SECRET not in logs and "ghs_rehearsal_token" not in logs


# --- an adopter's monorepo -------------------------------------------------------------------


@pytest.fixture
def adopter(tmp_path: Path) -> Path:
    repo = write_monorepo(tmp_path / "monorepo")
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy2(REUSABLE, workflows / "dome-deploy.yml")  # "copy dome-deploy.yml"
    (workflows / "deploy.yml").write_text(adopter_caller(), encoding="utf-8")
    git(repo, "init", "--quiet", "-b", "main")
    commit(repo, "initial")
    with_origin(repo, tmp_path)
    return repo


def test_an_adopters_copied_workflow_installs_deploys_reports_and_records(
    adopter: Path, stage: Stage, dist: Dist, tmp_path: Path
) -> None:
    repo, emulator = adopter, stage.emulator
    caller = repo / ".github" / "workflows" / "deploy.yml"
    runner = Venv(tmp_path / "runner-python", with_pip=True)  # setup-python: no dome-tasks yet
    wheels = f"{WHEELHOUSE} {dist.wheel.parent}"
    sha = git(repo, "rev-parse", "HEAD")

    flow = stage.run(repo, caller, "push", push("0" * 40), install=True, venv=runner, wheels=wheels)
    plan, deploy, record = flow.jobs["plan"], flow.jobs["deploy"], flow.jobs["record"]
    assert (plan.result, deploy.result, record.result) == ("success",) * 3, deploy.log
    assert "pip install --disable-pip-version-check -r \"$REQUIREMENTS_FILE\"" in plan.commands[0]
    assert (runner.bin / "just").exists()  # dome-tasks brought just
    # every service, in dependency order, each version tagged with the commit
    assert first_writes(emulator.requests, WORKERS) == WORKERS
    for name in WORKERS:
        (version,) = emulator.state.worker(name).versions
        assert version.tag == sha[:12] and version.message == f"{sha} initial"
    # the run page: one row per service, with its live version and health
    rows = [line for line in deploy.summary.splitlines() if line.startswith("| ") and "-dev |" in line]
    assert len(rows) == 3 and all("✅ healthy" in row for row in rows), deploy.summary
    for name in WORKERS:
        live = emulator.state.worker(name).versions[-1].id
        assert any(f"| {name} | `{live}` |" in row for row in rows), deploy.summary
    # one GitHub deployment of development, with the URL of the last service in deploy order
    (deployment,) = flow.deployments
    assert (deployment.environment, deployment.state) == ("development", "success")
    assert "dome-api-dev" in deployment.url
    # the artifact: the rendered configs and the records
    names = {p.name for p in deploy.artifact}
    assert names == {"development", "ledger.jsonl"}
    artifact_dir = deploy.artifact[0].parent
    assert (artifact_dir / "development" / "silo" / "wrangler.toml").is_file()
    records = Ledger(artifact_dir / "ledger.jsonl").read().records
    assert {r.service for r in records if r.kind == "deploy" and r.ok} == {"silo", "constellation", "dome-api"}
    # the tag records the deployed commit
    assert git(repo, "ls-remote", "origin", "refs/tags/dome-deployed/development").split()[0] == sha
    assert "ghs_rehearsal_token" not in "".join(job.log for job in flow.jobs.values())

    # A push that breaks constellation: its build fails, dome-api (bound to it) is not deployed,
    # the job and the GitHub deployment fail, the records still upload, the tag stays.
    (repo / "services/constellation/src/index.js").write_text("export default {\n")
    commit(repo, "broken constellation")
    broken = stage.run(repo, caller, "push", push(sha), install=True, venv=runner, wheels=wheels)
    assert json.loads(broken.jobs["plan"].outputs["services"]) == ["constellation", "dome-api"]
    assert broken.jobs["deploy"].result == "failure"
    assert [d.state for d in broken.deployments] == ["failure"]
    summary = broken.jobs["deploy"].summary
    assert "### Deploy to development: 2 of 2 failed" in summary
    assert "| constellation | constellation-dev | — | — | ❌ deploy failed:" in summary
    assert "| dome-api | dome-api-dev | — | — | ❌ not deployed |" in summary
    assert {p.name for p in broken.jobs["deploy"].artifact} >= {"ledger.jsonl"}
    assert broken.jobs["record"].result == "skipped"
    assert git(repo, "ls-remote", "origin", "refs/tags/dome-deployed/development").split()[0] == sha
    assert len(emulator.state.worker("constellation-dev").versions) == 1
