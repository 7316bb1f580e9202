"""Run a GitHub workflow's own steps, job by job, the way a runner would, against the emulator.

The steps come from the YAML (the caller and the reusable workflow it calls: dome-deploy.yml or
dome-preview.yml), so the
rehearsal cannot drift from what GitHub runs. `run:` steps run for real in bash with the step's
`env:` and the GITHUB_* files; `uses:` steps are what the runner image provides (checkout: the
repository is already here; setup-python/node: the runner venv and node; upload-artifact: its
paths are resolved and copied aside, so a missing file fails the rehearsal). Installs from the
npm registry (`npm ci`, `corepack`, `pnpm install`) are replaced by a node_modules link, as the
tests have no network; `pip install` runs for real from the local wheelhouse when the rehearsal
installs (the adopter's flow).

Expressions (`${{ ... }}`) are evaluated from a table of the ones the workflows use; one the
table does not know fails the test, so a workflow change must be rehearsed too.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
NPM_REGISTRY_INSTALLS = ("npm ci", "pnpm install", "corepack enable")


def read_workflow(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:  # YAML 1.1 reads the key `on` as a boolean
        data["on"] = data.pop(True)
    return data


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten(prefix: str, value: Any) -> dict[str, str]:
    """``github.event.pull_request.number``-style names for every leaf of an event payload."""
    if isinstance(value, dict):
        found: dict[str, str] = {}
        for key, inner in value.items():
            found.update(flatten(f"{prefix}.{key}", inner))
        return found
    return {prefix: as_text(value)}


@dataclass
class JobResult:
    name: str
    result: str  # success | failure | skipped
    outputs: dict[str, str] = field(default_factory=dict)
    steps: dict[str, dict[str, str]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    summary: str = ""
    environment: str | None = None
    url: str | None = None
    artifact: list[Path] = field(default_factory=list)
    log: str = ""


@dataclass
class Deployment:
    """What GitHub records for a job with `environment:`: the name, the URL, the job's outcome."""

    environment: str
    url: str
    state: str


class WorkflowRun:
    """One run of *caller* (which `uses:` a reusable workflow) in *repo*."""

    def __init__(self, repo: Path, caller: Path, base_env: dict[str, str], secrets: dict[str, str],
                 *, install: bool, work: Path) -> None:
        self.repo, self.base_env, self.secrets, self.install = repo, base_env, secrets, install
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self.caller = read_workflow(caller)
        (self.job_name, job), = self.caller["jobs"].items()
        self.reusable = read_workflow(repo / job["uses"])
        declared = self.reusable["on"]["workflow_call"]["inputs"]
        given = job.get("with") or {}
        unknown = set(given) - set(declared)
        assert not unknown, f"the caller passes inputs that dome-deploy.yml lacks: {unknown}"
        self.inputs = {name: as_text(given.get(name, spec.get("default", "")))
                       for name, spec in declared.items()}
        self.jobs: dict[str, JobResult] = {}
        self.deployments: list[Deployment] = []
        event_path = base_env.get("GITHUB_EVENT_PATH", "")
        payload = json.loads(Path(event_path).read_text(encoding="utf-8")) if event_path else {}
        self.github = {"github.event_name": base_env.get("GITHUB_EVENT_NAME", ""),
                       "github.repository": base_env.get("GITHUB_REPOSITORY", ""),
                       **flatten("github.event", payload)}

    # --- expressions ------------------------------------------------------------------------

    def context(self, steps: dict[str, dict[str, str]]) -> dict[str, str]:
        ctx = dict(self.github)
        ctx.update({f"inputs.{k}": v for k, v in self.inputs.items()})
        ctx.update({f"secrets.{k}": v for k, v in self.secrets.items()})
        ctx["github.token"] = "ghs_rehearsal_token"
        ctx["github.run_id"], ctx["github.run_attempt"] = "4242", "1"
        for job, result in self.jobs.items():
            ctx[f"needs.{job}.result"] = result.result
            ctx.update({f"needs.{job}.outputs.{k}": v for k, v in result.outputs.items()})
        for step, outputs in steps.items():
            ctx.update({f"steps.{step}.outputs.{k}": v for k, v in outputs.items()})
        plan = self.jobs.get("plan")
        if plan and "services" in plan.outputs:
            ctx["join(fromJSON(needs.plan.outputs.services), ',')"] = ",".join(
                json.loads(plan.outputs["services"]))
        if "confirm-protected" in self.inputs:
            ctx["inputs.confirm-protected && '1' || '0'"] = (
                "1" if self.inputs["confirm-protected"] == "true" else "0")
        return ctx

    def fill(self, value: Any, ctx: dict[str, str]) -> str:
        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr not in ctx and expr.startswith("steps.") and ".outputs." in expr:
                return ""  # an output the step did not write is empty on GitHub too
            assert expr in ctx, f"the rehearsal does not know ${{{{ {expr} }}}}"
            return ctx[expr]

        return EXPRESSION.sub(one, as_text(value))

    def condition(self, text: str | None, ctx: dict[str, str]) -> bool:
        """The `if:` forms the workflows use: `A == 'x'`, `A != 'x'`, `A == B`, `!cancelled()`,
        `&&`. An output a step or job did not write is empty, as on GitHub."""
        if text is None:
            return True
        expr = text.strip()
        if expr.startswith("${{"):
            expr = expr[3:].rstrip("}").strip()
        results = []
        for part in (p.strip() for p in expr.split("&&")):
            if part == "!cancelled()":
                results.append(True)
                continue
            match = re.fullmatch(r"([\w.-]+) (==|!=) (?:'([^']*)'|([\w.-]+))", part)
            assert match, f"the rehearsal does not know the condition {part!r}"
            left = self.value(match.group(1), ctx)
            right = match.group(3) if match.group(4) is None else self.value(match.group(4), ctx)
            results.append((left == right) == (match.group(2) == "=="))
        return all(results)

    @staticmethod
    def value(name: str, ctx: dict[str, str]) -> str:
        written = (name.startswith(("steps.", "github.event."))  # what is absent is null
                   or (name.startswith("needs.") and ".outputs." in name))
        found = ctx.get(name, "" if written else None)
        assert found is not None, f"the rehearsal does not know {name}"
        return found

    # --- jobs --------------------------------------------------------------------------------

    def run(self) -> dict[str, JobResult]:
        """Every job of the reusable workflow in order; `needs` and `if:` decide what runs (a
        status function such as `!cancelled()` lets a job run after a failed or skipped need)."""
        for name, job in self.reusable["jobs"].items():
            ctx = self.context({})
            needs = job.get("needs") or []
            needs = [needs] if isinstance(needs, str) else needs
            status_checked = any(word in str(job.get("if")) for word in ("result", "cancelled()"))
            if any(self.jobs[n].result != "success" for n in needs) and not status_checked:
                self.jobs[name] = JobResult(name, "skipped")
                continue
            if not self.condition(job.get("if"), ctx):
                self.jobs[name] = JobResult(name, "skipped")
                continue
            self.jobs[name] = self.run_job(name, job)
        return self.jobs

    def run_job(self, name: str, job: dict[str, Any]) -> JobResult:
        result = JobResult(name, "success")
        workdir = self.repo / self.fill(
            ((job.get("defaults") or {}).get("run") or {}).get("working-directory", "."), self.context({}))
        summary = self.work / f"{name}-summary.md"
        summary.write_text("", encoding="utf-8")
        for index, step in enumerate(job["steps"]):
            ctx = self.context(result.steps)
            if result.result == "failure" and "cancelled()" not in str(step.get("if", "")):
                continue  # GitHub skips the rest of a failed job, except `!cancelled()` steps
            if not self.condition(step.get("if"), ctx):
                continue
            if "uses" in step:
                if step["uses"].startswith("actions/upload-artifact@"):
                    result.artifact = self.upload(step, ctx, name)
                continue
            run = step["run"].strip()
            if run.startswith(NPM_REGISTRY_INSTALLS):
                assert (workdir / "node_modules").exists(), "the rehearsal links node_modules"
                continue
            if run.startswith("pip install ") and not self.install:
                continue  # this checkout's tools are the test venv's
            output = self.work / f"{name}-{index}-output"
            output.write_text("", encoding="utf-8")
            env = dict(self.base_env, GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
            env.update({k: self.fill(v, ctx) for k, v in (step.get("env") or {}).items()})
            shown = " ".join(f"{k}={env[k]}" for k in sorted(step.get("env") or {})
                             if not k.startswith(("CLOUDFLARE", "GITHUB_TOKEN")))
            result.commands.append(f"{shown} {run}".strip())
            done = subprocess.run(["bash", "-c", run], cwd=workdir, env=env, capture_output=True,
                                  text=True, timeout=600, check=False)
            result.log += f"$ {run}\n{done.stdout}{done.stderr}"
            if "id" in step:
                lines = output.read_text(encoding="utf-8").splitlines()
                result.steps[step["id"]] = dict(line.split("=", 1) for line in lines if "=" in line)
            if done.returncode != 0:
                result.result = "failure"
        ctx = self.context(result.steps)
        result.outputs = {k: self.fill(v, ctx) for k, v in (job.get("outputs") or {}).items()}
        result.summary = summary.read_text(encoding="utf-8")
        if "environment" in job:
            environment = job["environment"]
            result.environment = self.fill(environment["name"], ctx)
            result.url = self.fill(environment.get("url", ""), ctx)
            self.deployments.append(Deployment(result.environment, result.url, result.result))
        return result

    def upload(self, step: dict[str, Any], ctx: dict[str, str], job: str) -> list[Path]:
        """Copy what upload-artifact would upload (absolute paths; a missing one only warns,
        as `if-no-files-found: warn` does)."""
        target = self.work / "artifacts" / self.fill(step["with"]["name"], ctx)
        copied = []
        for line in self.fill(step["with"]["path"], ctx).splitlines():
            if not line.strip():
                continue
            source = Path(line.strip())
            assert source.is_absolute(), f"{job}: artifact path {source} is relative to the runner"
            if not source.exists():
                continue
            dest = target / source.name
            if source.is_dir():
                shutil.copytree(source, dest, dirs_exist_ok=True)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)
            copied.append(dest)
        return copied
