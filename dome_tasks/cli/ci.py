"""CI tasks, also runnable by people: ci-plan, ci-deploy, ci-mark-deployed, changed,
ci-preview-comment.

GitHub Actions calls these (see .github/workflows/deploy.yml and docs/ci.md); the workflow
YAML holds no deploy logic of its own.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks.cli.common import boundary, confirm_protected, is_dry, load_manifest, task
from dome_tasks.errors import UsageError

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.ci.events import Decision
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.wrangler.argv import VersionLabel

MARKER_PREFIX = "dome-deployed/"

EVENT_HELP = "GitHub event name (default: $GITHUB_EVENT_NAME)"
EVENT_PATH_HELP = "the event's JSON payload file (default: $GITHUB_EVENT_PATH)"
ENV_HELP = "deploy to this environment instead of reading the event (aliases allowed)"
ONLY_CHANGED_HELP = "deploy only the services changed since --since (a push does this by default)"
ALL_HELP = "deploy every service, even for a push"
SINCE_HELP = (
    "git ref to diff against (default: the tag dome-deployed/ENV, else the push's 'before' "
    "commit; with neither, every service)"
)
SERVICES_HELP = "comma-separated services to deploy (a CI wave job); skips change detection"


@dataclass(frozen=True)
class Selection:
    """What a CI run deploys: the event's decision, the services and why."""

    decision: Decision
    services: list[str]
    since: str | None
    reasons: dict[str, list[str]]

    def as_dict(self, manifest: Manifest, max_waves: int = 0) -> dict[str, Any]:
        from dome_tasks.ci.events import waves_json

        env = self.decision.environment
        payload: dict[str, Any] = {
            "deploy": bool(env and self.services),
            "event": self.decision.event,
            "action": self.decision.action,
            "reason": self.decision.reason,
            "since": self.since,
            "reasons": self.reasons,
        }
        if env:
            payload.update(waves_json(manifest, self.services, env))
        else:
            payload.update({"environment": "", "services": [], "waves": [], "count": 0})
        if max_waves and payload["count"] > max_waves:
            raise UsageError(
                f"{payload['count']} dependency waves, but the deploy workflow has {max_waves} wave jobs",
                hint=f"add wave-{max_waves + 1} … jobs to your workflow (copy the last one) and "
                "raise --max-waves; the reusable dome-deploy.yml deploys every wave in one job",
            )
        return payload


def decide_event(manifest: Manifest, event: str, event_path: str, env: str) -> Decision:
    """``--env`` wins; otherwise the GitHub event (arguments, then GITHUB_EVENT_*)."""
    from dome_tasks.ci.events import Decision, decide, read_event, remote_environment

    if env:
        name = remote_environment(manifest, env)
        return Decision("explicit", name, f"--env {env} deploys {name}")
    name, payload = read_event(event or None, event_path or None)
    return decide(name, payload, manifest)


def select(
    manifest: Manifest,
    decision: Decision,
    *,
    services: str = "",
    only_changed: bool = False,
    all_: bool = False,
    since: str = "",
) -> Selection:
    """The services a CI run deploys, in deploy order."""
    from dome_tasks.ci.changed import detect_changes

    if not decision.environment:
        return Selection(decision, [], None, {})
    if services:
        names = [s.strip() for s in services.split(",") if s.strip()]
        for name in names:
            manifest.service(name)
        ordered = [s for s in manifest.deploy_order(names) if s in names]
        return Selection(decision, ordered, None, {s: ["named by --services"] for s in ordered})
    present = manifest.services_in(decision.environment)
    everything = list(manifest.deploy_order(present))
    if all_ or not (only_changed or decision.only_changed):
        return Selection(decision, everything, None, {s: ["every service"] for s in everything})
    ref = since or _marker(manifest, decision.environment) or decision.since
    if not ref:
        reason = f"no dome-deployed/{decision.environment} tag and no 'before' commit: every service"
        return Selection(decision, everything, None, {s: [reason] for s in everything})
    changes = detect_changes(manifest, manifest.root, ref)
    reasons = {name: list(why) for name, why in changes.reasons.items()}
    changed = [s for s in changes.services if s in present]
    return Selection(decision, changed, ref, reasons)


def _marker(manifest: Manifest, environment: str) -> str | None:
    """The tag recording the last complete deploy of *environment*, when it exists."""
    import subprocess

    tag = f"refs/tags/{MARKER_PREFIX}{environment}"
    result = subprocess.run(
        ["git", "-C", str(manifest.root), "rev-parse", "--verify", "--quiet", f"{tag}^{{commit}}"],
        capture_output=True, text=True, check=False,
    )
    return tag if result.returncode == 0 else None


def _github_output(values: dict[str, str], path: str) -> None:
    """Append ``name=value`` lines (single-line values) to $GITHUB_OUTPUT."""
    with open(path, "a", encoding="utf-8") as out:
        for name, value in values.items():
            if "\n" in value:
                raise UsageError(f"output {name} has a newline")
            out.write(f"{name}={value}\n")


def _summary(payload: dict[str, Any]) -> str:
    lines = [f"### Deploy plan: {payload['environment'] or 'nothing to deploy'}", "", payload["reason"], ""]
    if payload["since"]:
        lines += [f"Changes since `{payload['since']}`.", ""]
    for number, wave in enumerate(payload["waves"], 1):
        lines.append(f"- wave {number}: " + ", ".join(f"`{s}`" for s in wave))
    if payload["environment"] and not payload["services"]:
        lines.append("No service changed.")
    return "\n".join(lines) + "\n"


@task(
    name="ci-plan",
    auto_shortflags=False,
    help={
        "event": EVENT_HELP, "event_path": EVENT_PATH_HELP, "env": ENV_HELP,
        "only_changed": ONLY_CHANGED_HELP, "all_": ALL_HELP, "since": SINCE_HELP,
        "github_output": "append outputs here (default: $GITHUB_OUTPUT when set)",
        "max_waves": "fail when the plan needs more wave jobs than the workflow has (0: no limit)",
        "services": SERVICES_HELP,
    },
)
@boundary
def ci_plan(c, event="", event_path="", env="", only_changed=False, all_=False, since="",
            github_output="", max_waves=0, services=""):
    """Print which environment and services (in waves) this CI event deploys, as JSON.

    Example: invoke ci-plan --event push --only-changed
    """
    manifest = load_manifest(c)
    decision = decide_event(manifest, event, event_path, env)
    selection = select(manifest, decision, services=services, only_changed=only_changed,
                       all_=all_, since=since)
    payload = selection.as_dict(manifest, int(max_waves))
    print(json.dumps(payload, indent=2))
    output = github_output or os.environ.get("GITHUB_OUTPUT", "")
    if output:
        _github_output(
            {
                "deploy": "true" if payload["deploy"] else "false",
                "environment": payload["environment"],
                "services": json.dumps(payload["services"]),
                "waves": json.dumps(payload["waves"]),
                "count": str(payload["count"]),
            },
            output,
        )
    summary = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(_summary(payload))


@task(
    name="ci-deploy",
    auto_shortflags=False,
    help={
        "event": EVENT_HELP, "event_path": EVENT_PATH_HELP, "env": ENV_HELP,
        "only_changed": ONLY_CHANGED_HELP, "all_": ALL_HELP, "since": SINCE_HELP,
        "services": SERVICES_HELP,
        "print_env": "only print the environment this event deploys to, and exit",
        "no_migrate": "do not apply D1 migrations before deploying",
        "no_build": "skip the build step",
        "no_verify": "skip the health check after each deploy",
        "rehearse": "run it all against a throwaway Cloudflare API emulator",
        "dry_run": "print every step and command without running anything",
        "yes": "confirm protected environments (in a workflow: INVOKE_DOME_YES=1, set by the "
               "reusable workflow's confirm-protected input; never implied by GITHUB_ACTIONS)",
        "no_label": "do not tag the deployed versions with the commit (--tag/--message)",
    },
)
@boundary
def ci_deploy(c, event="", event_path="", env="", only_changed=False, all_=False, since="",
              services="", print_env=False, no_migrate=False, no_build=False, no_verify=False,
              rehearse=False, dry_run=False, yes=False, no_label=False):
    """Deploy what this CI event calls for: its environment, the changed services, in order.

    Each version is tagged with the commit; under GitHub Actions the outcome per service goes
    to $GITHUB_STEP_SUMMARY and the outputs `url`, `configs` and `ledger` to $GITHUB_OUTPUT.

    Example: invoke ci-deploy --env staging --only-changed
    """
    manifest = load_manifest(c)
    decision = decide_event(manifest, event, event_path, env)
    if print_env:
        print(decision.environment or "")
        return
    if not decision.environment:
        print(f"nothing to deploy: {decision.reason}")
        return
    selection = select(
        manifest, decision, services=services, only_changed=only_changed, all_=all_, since=since
    )
    print(decision.reason)
    if not selection.services:
        print(f"no service changed since {selection.since}: nothing to deploy")
        return
    for name in selection.services:
        print(f"  {name}: {'; '.join(selection.reasons.get(name, []))}")
    from dome_tasks.ci.label import commit_label

    dry = is_dry(c, dry_run)
    label = None if no_label else commit_label(manifest.root)
    if dry:
        deploy_selected(c, manifest, selection.services, decision.environment, dry_run=True,
                        yes=yes, migrate=not no_migrate, build=not no_build,
                        verify=not no_verify, rehearse=rehearse, label=label)
        return
    from dome_tasks.ci.github import RunReport
    from dome_tasks.settings import Settings

    ledger = Settings.from_context(c).ledger or manifest.root / ".dome" / "ledger.jsonl"
    with RunReport(manifest, decision.environment, selection.services, label, ledger):
        deploy_selected(c, manifest, selection.services, decision.environment, dry_run=False,
                        yes=yes, migrate=not no_migrate, build=not no_build,
                        verify=not no_verify, rehearse=rehearse, label=label)


def deploy_selected(
    c: Context,
    manifest: Manifest,
    services: list[str],
    environment: str,
    *,
    dry_run: bool,
    yes: bool,
    migrate: bool = True,
    build: bool = True,
    verify: bool = True,
    rehearse: bool = False,
    label: VersionLabel | None = None,
) -> None:
    """Resolve once, confirm once, apply the services' D1 migrations, then deploy and verify them."""
    from dome_tasks.cli.deploy import DeployFlags, deploy_request
    from dome_tasks.plan.target import resolve
    from dome_tasks.settings import Settings
    from dome_tasks.tools import discover_tools, find_wrangler

    settings = Settings.read(c, yes=yes)
    tools = discover_tools(manifest.root, dry_run=True)  # a missing wrangler: after the question
    request = resolve(manifest, services, environment, wrangler=tools.wrangler)
    if not dry_run and not rehearse:
        confirm_protected(request.environment, request.services, settings, yes)
    if not dry_run:
        find_wrangler(manifest.root)  # the clear error, when it is missing
    flags = DeployFlags(dry_run=dry_run, yes=True, build=build, verify=verify, rehearse=rehearse,
                        label=label, migrate=migrate)
    deploy_request(c, settings, request, flags, tools)  # the laptop's path: migrations, then code


@task(
    name="ci-mark-deployed",
    auto_shortflags=False,
    help={
        "env": "the environment just deployed (aliases allowed)",
        "remote": "git remote to push the tag to (default: origin)",
        "no_push": "only move the local tag (the push uses $GITHUB_TOKEN when it is set)",
        "dry_run": "print the git commands without running them",
    },
)
@boundary
def ci_mark_deployed(c, env, remote="origin", no_push=False, dry_run=False):
    """Move the tag dome-deployed/ENV to HEAD: where the next --only-changed deploy diffs from.

    Example: invoke ci-mark-deployed --env staging
    """
    from dome_tasks.ci.events import remote_environment

    manifest = load_manifest(c)
    name = remote_environment(manifest, env)
    tag = f"{MARKER_PREFIX}{name}"
    commands = [["git", "-C", str(manifest.root), "tag", "--force", tag, "HEAD"]]
    if not no_push:
        commands.append(
            ["git", "-C", str(manifest.root), "push", "--force", remote, f"refs/tags/{tag}:refs/tags/{tag}"]
        )
    auth = git_token_env(os.environ)
    for argv in commands:
        line = shlex.join(argv)
        if is_dry(c, dry_run):
            print(f"$ {line}")
        else:
            c.run(line, echo=True, env=auth)


def git_token_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Let git push with ``$GITHUB_TOKEN`` for this one command, through ``GIT_CONFIG_*``
    variables: the checkout keeps no credentials (``persist-credentials: false``) and the
    token is in no argv and no file. Empty without GITHUB_TOKEN (a laptop's own git auth)."""
    token = environ.get("GITHUB_TOKEN", "")
    if not token:
        return {}
    server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode("ascii")
    index = int(environ.get("GIT_CONFIG_COUNT", "0") or 0)
    return {
        "GIT_CONFIG_COUNT": str(index + 1),
        f"GIT_CONFIG_KEY_{index}": f"http.{server}/.extraheader",
        f"GIT_CONFIG_VALUE_{index}": f"AUTHORIZATION: basic {basic}",
    }


@task(
    auto_shortflags=False,
    help={
        "since": "git ref to diff against (default: HEAD~1)",
        "json_": "print JSON: services, a reason per service, changed files",
    },
)
@boundary
def changed(c, since="HEAD~1", json_=False):
    """List the services changed since a git ref (plus those bound to a changed interface).

    Example: invoke changed origin/main
    """
    from dome_tasks.ci.changed import detect_changes
    from dome_tasks.cli.output import json_output

    with json_output(json_, "changed") as document:
        manifest = load_manifest(c)
        changes = detect_changes(manifest, Path(manifest.root), since)
        if document is not None:
            document.send(changes.as_dict())
            return
    if not changes.services:
        print(f"no service changed since {since}")
        return
    for name in changes.services:
        print(f"{name}: {'; '.join(changes.reasons[name])}")


PREVIEW_JSON_VARIABLE = "DOME_PREVIEW_JSON"


@task(
    name="ci-preview-comment",
    help={
        "number": "the pull request's number",
        "from_json": "preview-up's --json document in this file (default: the document itself "
                     f"in ${PREVIEW_JSON_VARIABLE}, as the reusable dome-preview.yml passes it)",
        "repo": "OWNER/NAME (default: $GITHUB_REPOSITORY)",
        "dry_run": "print the request and the comment without sending anything",
    },
)
@boundary
def ci_preview_comment(c, number, from_json="", repo="", dry_run=False):
    """Post or update the pull request's one comment listing its preview's URLs.

    Finds the comment by its hidden marker <!-- dome-preview --> and updates it; creates it
    only when there is none. Uses $GITHUB_TOKEN and $GITHUB_API_URL.

    Example: invoke ci-preview-comment 42 --from-json preview.json
    """
    from dome_tasks.ci.preview_comment import GitHubApi, comment_body, decide_comment
    from dome_tasks.preview.derive import parse_number

    n = parse_number(number)
    preview = _preview_document(from_json, os.environ)
    repo = repo or os.environ.get("GITHUB_REPOSITORY", "")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise UsageError(f"{repo!r} is not a repository" if repo else "no repository given",
                         hint="pass --repo OWNER/NAME (GitHub Actions sets $GITHUB_REPOSITORY)")
    body = comment_body(preview)
    if is_dry(c, dry_run):
        print(f"would post or update the comment on {repo}#{n}:\n{body}", end="")
        return
    api = GitHubApi.from_environ(os.environ)
    action = decide_comment(repo, n, body, api.comments(repo, n))
    if action is None:
        print(f"{repo}#{n}: the preview comment is up to date")
        return
    comment = api.apply(action)
    print(f"{repo}#{n}: {action.verb} the preview comment {comment.get('html_url', '')}".rstrip())


def _preview_document(path: str, environ: Mapping[str, str]) -> dict[str, Any]:
    """preview-up's JSON from *path*, else from the environment; one clear error otherwise."""
    if path:
        where = path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"{path}: cannot read it ({type(error).__name__})",
                             hint="give the file `invoke preview-up N --json` wrote") from None
    else:
        where, text = f"${PREVIEW_JSON_VARIABLE}", environ.get(PREVIEW_JSON_VARIABLE, "")
        if not text.strip():
            raise UsageError("no preview document: pass --from-json FILE or set "
                             f"{PREVIEW_JSON_VARIABLE}",
                             hint="`invoke preview-up N --json > preview.json` writes one")
    try:
        preview = json.loads(text)
    except ValueError as error:
        raise UsageError(f"{where}: not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(preview, dict) or not {"preview", "from", "urls"} <= set(preview):
        raise UsageError(f"{where}: not a preview-up document (no preview, from and urls)",
                         hint="give what `invoke preview-up N --json` printed")
    return preview


TASKS = [ci_plan, ci_deploy, ci_mark_deployed, changed, ci_preview_comment]
