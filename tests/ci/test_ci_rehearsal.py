"""Rehearse the deploy workflow: its own `run:` commands, job by job, against the emulator.

The steps are read from .github/workflows/deploy.yml and deploy-waves.yml, so the rehearsal
cannot drift from what GitHub runs. Installs (`pip install`, `npm ci`) are already done here;
every `invoke` step runs for real, with the real wrangler deploying to the Cloudflare API
emulator. Expressions (`${{ ... }}`) are filled from a small table; one the table does not
know fails the test, so a workflow change must be rehearsed too.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_helpers import ROOT, commit, git, run_env, write_event

from dome_tasks.emulator import Emulator, RequestRecord
from dome_tasks.emulator.netguard import guard_env, violations
from dome_tasks.manifest import load

WORKFLOWS = ROOT / ".github" / "workflows"
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")

pytestmark = pytest.mark.integration


def workflow(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def fill(value: str, context: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        assert match.group(1) in context, f"the rehearsal does not know ${{{{ {match.group(1)} }}}}"
        return context[match.group(1)]

    return EXPRESSION.sub(one, str(value))


class HealthServer:
    """Stands in for the deployed workers (the emulator runs none): 200 on GET, Host recorded.

    The deploy's health checks reach it through DOME_HEALTH_BASE_URL, which keeps the real
    host in the Host header (like ``curl --resolve``)."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        hosts = self.hosts

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
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

    def __enter__(self) -> HealthServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Rehearsal:
    """Runs a job's `invoke` steps like a GitHub runner: bash, env, GITHUB_* files."""

    def __init__(self, repo: Path, emulator: Emulator, guard: dict[str, str], event: str, payload: dict,
                 health: HealthServer):
        self.repo = repo
        self.work = repo.parent / "runner"
        self.work.mkdir(exist_ok=True)
        self.base = run_env(
            GITHUB_ACTIONS="true",
            GITHUB_EVENT_NAME=event,
            GITHUB_EVENT_PATH=str(write_event(self.work / "event.json", payload)),
            CLOUDFLARE_API_BASE_URL=emulator.url,  # what is added: the emulator, the network guard
            npm_registry=emulator.env()["npm_registry"],
            DOME_HEALTH_BASE_URL=health.url,
            **guard,
        )
        self.secrets = {
            "secrets.CLOUDFLARE_API_TOKEN": emulator.token,
            "secrets.CLOUDFLARE_ACCOUNT_ID": emulator.account_id,
        }
        self.commands: list[str] = []

    def run_job(self, flow: dict[str, Any], name: str, context: dict[str, str]) -> dict[str, str]:
        job = flow["jobs"][name]
        output = self.work / "output"
        output.write_text("", encoding="utf-8")
        for step in job["steps"]:
            run = step.get("run")
            if run is None or not run.startswith("invoke "):
                continue  # checkout, setup-python/node and installs: already done here
            env = dict(self.base, GITHUB_OUTPUT=str(output))
            env.update({k: str(v) for k, v in (flow.get("env") or {}).items()})
            env.update({k: fill(v, {**context, **self.secrets}) for k, v in (step.get("env") or {}).items()})
            self.commands.append(" ".join(f"{k}={env[k]}" for k in sorted(step.get("env") or {})
                                          if not k.startswith("CLOUDFLARE")) + f" {run}")
            result = subprocess.run(
                ["bash", "-c", run], cwd=self.repo, env=env, capture_output=True, text=True,
                timeout=600, check=False,
            )
            assert result.returncode == 0, f"{run}\n{result.stdout}\n{result.stderr}"
        text = output.read_text(encoding="utf-8")
        return dict(line.split("=", 1) for line in text.splitlines())

    def deploy_workflow(self) -> dict[str, str]:
        """plan -> approve -> deploy-waves (wave jobs, one matrix entry per service) -> record."""
        main = workflow("deploy.yml")
        plan = self.run_job(main, "plan", {})
        if plan["deploy"] != "true":
            return plan
        needs = {f"needs.plan.outputs.{key}": value for key, value in plan.items()}
        services = ",".join(json.loads(plan["services"]))
        self.run_job(main, "approve", {
            **needs, "join(fromJSON(needs.plan.outputs.services), ',')": services,
        })
        called = main["jobs"]["deploy"]["with"]
        inputs = {
            "inputs.environment": fill(called["environment"], needs),
            "inputs.waves": fill(called["waves"], needs),
        }
        waves = json.loads(inputs["inputs.waves"])
        assert fill(called["count"], {"fromJSON(needs.plan.outputs.count)": plan["count"]}) == str(len(waves))
        inner = workflow("deploy-waves.yml")
        for number, wave in enumerate(waves, 1):
            for service in wave:  # GitHub runs these in parallel; any order is valid
                self.run_job(inner, f"wave-{number}", {**inputs, "matrix.service": service})
        self.run_job(inner, "record", inputs)
        return plan


@pytest.fixture
def rehearsal_repo(repo: Path, tmp_path: Path) -> Iterator[Path]:
    if not WRANGLER.exists():
        pytest.fail("the pinned wrangler is not installed: run `npm ci`")
    (repo / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "--quiet", "origin", "main")
    yield repo


def first_writes(records: list[RequestRecord], names: list[str]) -> list[str]:
    """Workers in the order the emulator first saw a write to their script."""
    seen: list[str] = []
    for record in records:
        match = re.search(r"/workers/scripts/([^/]+)", record.path)
        if match and record.method != "GET" and match.group(1) in names and match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def test_the_deploy_workflow_deploys_the_changed_services_in_order(
    rehearsal_repo: Path, tmp_path: Path
) -> None:
    repo = rehearsal_repo
    guard_dir = tmp_path / "netguard"
    with Emulator() as emulator, HealthServer() as health:
        guard = guard_env(guard_dir)
        # 1. The first push to main: no earlier deploy recorded, so every service, in waves.
        first = Rehearsal(repo, emulator, guard, "push", {
            "ref": "refs/heads/main", "before": "0" * 40, "repository": {"default_branch": "main"},
        }, health)
        plan = first.deploy_workflow()
        assert json.loads(plan["waves"]) == [["silo"], ["constellation"], ["dome-api"]]
        workers = ["silo-dev", "constellation-dev", "dome-api-dev"]
        assert first_writes(emulator.requests, workers) == workers
        for name in workers:
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
        second = Rehearsal(repo, emulator, guard, "push", {
            "ref": "refs/heads/main", "before": before, "repository": {"default_branch": "main"},
        }, health)
        plan = second.deploy_workflow()
        assert json.loads(plan["waves"]) == [["silo"], ["constellation"], ["dome-api"]]
        assert first_writes(emulator.requests[start:], workers) == workers

        # 3. A push that touches only constellation's helper: constellation alone.
        before = git(repo, "rev-parse", "HEAD")
        (repo / "sample/services/constellation/src/util.js").write_text("export const x = 2;\n")
        commit(repo, "constellation helper v2")
        third = Rehearsal(repo, emulator, guard, "push", {
            "ref": "refs/heads/main", "before": before, "repository": {"default_branch": "main"},
        }, health)
        plan = third.deploy_workflow()
        assert json.loads(plan["waves"]) == [["constellation"]]
        versions = {name: len(emulator.state.worker(name).versions) for name in workers}
        assert versions == {"silo-dev": 2, "constellation-dev": 3, "dome-api-dev": 2}
        assert [c.split(" invoke ")[-1].split(" ")[0] for c in third.commands] == [
            "ci-plan", "ci-deploy", "ci-deploy", "ci-mark-deployed",
        ]

        # 4. A push that changes nothing deployable: the plan says so and nothing runs.
        before = git(repo, "rev-parse", "HEAD")
        (repo / "NOTES.md").write_text("notes\n")
        commit(repo, "notes")
        fourth = Rehearsal(repo, emulator, guard, "push", {
            "ref": "refs/heads/main", "before": before, "repository": {"default_branch": "main"},
        }, health)
        assert fourth.deploy_workflow()["deploy"] == "false"
        assert len(fourth.commands) == 1
    assert violations(guard_dir) == [], "\n".join(violations(guard_dir)) + "wrangler tried to reach a host other than loopback"


def test_a_release_rehearses_staging_then_production_without_overlap(
    rehearsal_repo: Path, tmp_path: Path
) -> None:
    repo = rehearsal_repo
    with Emulator() as emulator, HealthServer() as health:
        guard = guard_env(tmp_path / "netguard")
        for action, prerelease, expected in [
            ("created", True, "staging"),     # a pre-release: staging
            ("published", True, None),        # the same pre-release's `published`: skipped
            ("created", False, None),         # a full release's `created`: skipped
            ("published", False, "production"),
        ]:
            rehearsal = Rehearsal(repo, emulator, guard, "release", {
                "action": action, "release": {"tag_name": "v1.0.0", "prerelease": prerelease},
            }, health)
            plan = rehearsal.deploy_workflow()
            assert plan["environment"] == (expected or plan["environment"])
            assert (plan["deploy"] == "true") == (expected is not None)
        for name in ("silo", "constellation", "dome-api"):
            assert len(emulator.state.worker(f"{name}-staging").versions) == 1
            assert len(emulator.state.worker(name).versions) == 1
    assert violations(tmp_path / "netguard") == [], "wrangler tried to reach a host other than loopback"
