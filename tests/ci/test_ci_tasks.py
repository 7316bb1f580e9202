"""The CI tasks as a workflow step runs them: invoke in a git checkout, GITHUB_* variables."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ci_helpers import commit, git, invoke, run_env, write_event

from dome_tasks.ci.events import waves_json
from dome_tasks.cli.ci import git_token_env
from dome_tasks.manifest.loader import load

SAMPLE_WAVES = [["silo"], ["constellation"], ["dome-api"]]


def github_env(repo: Path, event: str, payload: dict) -> dict[str, str]:
    path = write_event(repo.parent / "event.json", payload)
    output = repo.parent / "github_output"
    output.write_text("", encoding="utf-8")
    return run_env(
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME=event,
        GITHUB_EVENT_PATH=str(path),
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(repo.parent / "summary.md"),
    )


def outputs(repo: Path) -> dict[str, str]:
    text = (repo.parent / "github_output").read_text(encoding="utf-8")
    return dict(line.split("=", 1) for line in text.splitlines())


def push_payload(before: str) -> dict:
    return {"ref": "refs/heads/main", "before": before, "repository": {"default_branch": "main"}}


def test_waves_for_the_sample_follow_the_dependency_order() -> None:
    manifest = load(Path(__file__).resolve().parents[2] / "sample" / "dome.yaml")
    payload = waves_json(manifest, manifest.deploy_order(), "prod")
    assert payload == {
        "environment": "production",
        "services": ["silo", "constellation", "dome-api"],
        "waves": SAMPLE_WAVES,
        "count": 3,
    }
    assert waves_json(manifest, ["dome-api", "silo"], "stg")["waves"] == [["silo"], ["dome-api"]]
    assert waves_json(manifest, [], "dev") == {
        "environment": "development", "services": [], "waves": [], "count": 0,
    }


def test_ci_plan_prints_the_sample_waves_for_a_release(repo: Path) -> None:
    payload = {"action": "published", "release": {"tag_name": "v1", "prerelease": False}}
    result = invoke(repo, "ci-plan", env=github_env(repo, "release", payload))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["environment"] == "production" and plan["deploy"] is True
    assert plan["waves"] == SAMPLE_WAVES
    assert outputs(repo) == {
        "deploy": "true",
        "environment": "production",
        "services": json.dumps(["silo", "constellation", "dome-api"]),
        "waves": json.dumps(SAMPLE_WAVES),
        "count": "3",
    }
    summary = (repo.parent / "summary.md").read_text(encoding="utf-8")
    assert "wave 1: `silo`" in summary and "wave 3: `dome-api`" in summary


def test_ci_plan_for_a_push_plans_only_what_changed(repo: Path) -> None:
    before = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/constellation/src/util.js").write_text("export const x = 1;\n")
    commit(repo, "constellation helper")
    result = invoke(repo, "ci-plan", "--max-waves", "4", env=github_env(repo, "push", push_payload(before)))
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (plan["environment"], plan["waves"], plan["since"]) == ("development", [["constellation"]], before)
    assert outputs(repo)["count"] == "1"


def test_ci_plan_with_nothing_changed_deploys_nothing(repo: Path) -> None:
    before = git(repo, "rev-parse", "HEAD")
    (repo / "README.md").write_text("docs\n")
    commit(repo, "docs")
    result = invoke(repo, "ci-plan", env=github_env(repo, "push", push_payload(before)))
    assert result.returncode == 0, result.stderr
    assert outputs(repo) == {
        "deploy": "false", "environment": "development", "services": "[]", "waves": "[]", "count": "0",
    }


def test_ci_plan_diffs_from_the_last_complete_deploy_tag(repo: Path) -> None:
    (repo / "sample/services/silo/migrations/0003.sql").write_text("SELECT 1;\n")
    commit(repo, "silo migration (its deploy failed: no tag moved)")
    marker = invoke(repo, "ci-mark-deployed", "--env", "dev", "--no-push")
    assert marker.returncode == 0, marker.stderr
    assert git(repo, "rev-parse", "dome-deployed/development") == git(repo, "rev-parse", "HEAD")
    before = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/dome-api/src/x.js").write_text("export {};\n")
    commit(repo, "dome-api")
    # the tag, not the push's `before`, is where the diff starts; here they agree
    plan = json.loads(invoke(repo, "ci-plan", env=github_env(repo, "push", push_payload("b" * 40))).stdout)
    assert plan["since"] == "refs/tags/dome-deployed/development"
    assert plan["services"] == ["dome-api"]
    assert git(repo, "rev-parse", "dome-deployed/development") == before


def test_ci_mark_deployed_pushes_the_tag(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    result = invoke(repo, "ci-mark-deployed", "--env", "production")
    assert result.returncode == 0, result.stderr
    assert git(remote, "rev-parse", "dome-deployed/production") == git(repo, "rev-parse", "HEAD")


def test_ci_plan_skips_the_created_event_of_a_full_release(repo: Path) -> None:
    payload = {"action": "created", "release": {"tag_name": "v1", "prerelease": False}}
    result = invoke(repo, "ci-plan", env=github_env(repo, "release", payload))
    assert result.returncode == 0, result.stderr
    assert outputs(repo)["deploy"] == "false"
    assert "'published' for it at the same moment" in json.loads(result.stdout)["reason"]


def test_ci_plan_refuses_an_unknown_event_without_a_traceback(repo: Path) -> None:
    result = invoke(repo, "ci-plan", env=github_env(repo, "pull_request", {"action": "opened"}))
    assert result.returncode == 1
    assert "error: the GitHub event 'pull_request' does not deploy anything" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert outputs(repo) == {}


def test_ci_plan_fails_when_the_workflow_has_too_few_wave_jobs(repo: Path) -> None:
    result = invoke(repo, "ci-plan", "--env", "staging", "--max-waves", "2")
    assert result.returncode == 2
    assert "3 dependency waves, but the deploy workflow has 2 wave jobs" in result.stderr


def test_ci_deploy_print_env_and_explicit_env(repo: Path) -> None:
    payload = {"action": "created", "release": {"tag_name": "v1-rc1", "prerelease": True}}
    env = github_env(repo, "release", payload)
    assert invoke(repo, "ci-deploy", "--print-env", env=env).stdout.strip() == "staging"
    assert invoke(repo, "ci-deploy", "--print-env", "--env", "prod", env=env).stdout.strip() == "production"
    local = invoke(repo, "ci-deploy", "--env", "local", "--print-env")
    assert local.returncode == 2 and "CI cannot deploy it" in local.stderr


def test_ci_deploy_dry_run_deploys_named_services_in_dependency_order(repo: Path) -> None:
    result = invoke(repo, "ci-deploy", "--env", "stg", "--services", "dome-api,silo", "--dry-run")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("deploy silo-staging") < out.index("deploy dome-api-staging")
    assert "constellation-staging" not in out
    assert "d1 migrations apply silo-db-staging" in out


def test_ci_deploy_with_nothing_changed_says_so(repo: Path) -> None:
    before = git(repo, "rev-parse", "HEAD")
    commit(repo, "empty")
    result = invoke(repo, "ci-deploy", env=github_env(repo, "push", push_payload(before)))
    assert result.returncode == 0, result.stderr
    assert f"no service changed since {before}: nothing to deploy" in result.stdout


def test_ci_deploy_skip_is_not_a_failure(repo: Path) -> None:
    payload = {"action": "published", "release": {"tag_name": "v1-rc1", "prerelease": True}}
    result = invoke(repo, "ci-deploy", env=github_env(repo, "release", payload))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("nothing to deploy: pre-release v1-rc1 published")


def test_ci_deploy_protected_environment_needs_yes_outside_github(repo: Path) -> None:
    result = invoke(repo, "ci-deploy", "--env", "production", "--services", "silo", "--no-build")
    assert result.returncode == 1
    assert "production is protected" in result.stderr and "--yes" in result.stderr


def test_ci_deploy_under_github_actions_still_needs_an_explicit_confirmation(repo: Path) -> None:
    """GITHUB_ACTIONS=true confirms nothing: any workflow on any branch could otherwise deploy
    production with the token. The reusable workflow's confirm-protected sets INVOKE_DOME_YES."""
    payload = {"action": "published", "release": {"tag_name": "v1", "prerelease": False}}
    env = github_env(repo, "release", payload)
    result = invoke(repo, "ci-deploy", "--services", "silo", "--no-build", env=env)
    assert result.returncode == 1
    assert "production is protected" in result.stderr and "INVOKE_DOME_YES=1" in result.stderr
    assert "wrangler" not in result.stdout and not (repo / "sample/.dome/ledger.jsonl").exists()


def test_ci_deploy_tags_each_version_with_the_commit(repo: Path) -> None:
    commit(repo, "Fix the | pipe; and quotes \"here\"")
    sha = git(repo, "rev-parse", "HEAD")
    result = invoke(repo, "ci-deploy", "--env", "stg", "--services", "silo", "--dry-run")
    assert result.returncode == 0, result.stderr
    deploy = next(line for line in result.stdout.splitlines() if " deploy --config " in line)
    assert f"--tag {sha[:12]} --message" in deploy
    assert f"{sha} Fix the | pipe; and quotes" in deploy
    unlabelled = invoke(repo, "ci-deploy", "--env", "stg", "--services", "silo", "--dry-run", "--no-label")
    assert "--tag" not in unlabelled.stdout


def test_ci_plan_takes_named_services(repo: Path) -> None:
    result = invoke(repo, "ci-plan", "--env", "stg", "--services", "dome-api,silo")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["services"] == ["silo", "dome-api"] and plan["waves"] == [["silo"], ["dome-api"]]
    bad = invoke(repo, "ci-plan", "--env", "stg", "--services", "sillo")
    assert bad.returncode != 0 and "silo" in bad.stderr and "Traceback" not in bad.stderr


def test_git_token_env_authenticates_one_command_without_argv_or_files() -> None:
    env = git_token_env({"GITHUB_TOKEN": "ghs_secret", "GITHUB_SERVER_URL": "https://github.example/"})
    assert env["GIT_CONFIG_COUNT"] == "1"
    assert env["GIT_CONFIG_KEY_0"] == "http.https://github.example/.extraheader"
    header = env["GIT_CONFIG_VALUE_0"]
    assert header.startswith("AUTHORIZATION: basic ")
    assert base64.b64decode(header.split()[-1]).decode() == "x-access-token:ghs_secret"
    # an earlier GIT_CONFIG_* entry is kept: ours goes after it
    more = git_token_env({"GITHUB_TOKEN": "t", "GIT_CONFIG_COUNT": "2"})
    assert more["GIT_CONFIG_COUNT"] == "3" and "GIT_CONFIG_KEY_2" in more
    assert git_token_env({}) == {}


def test_ci_mark_deployed_with_a_token_leaves_no_credentials_behind(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    env = run_env(GITHUB_TOKEN="ghs_do_not_print", GITHUB_SERVER_URL="https://github.com")
    result = invoke(repo, "ci-mark-deployed", "--env", "stg", env=env)
    assert result.returncode == 0, result.stderr
    assert git(remote, "rev-parse", "dome-deployed/staging") == git(repo, "rev-parse", "HEAD")
    assert "ghs_do_not_print" not in result.stdout + result.stderr
    assert "ghs_do_not_print" not in (repo / ".git" / "config").read_text(encoding="utf-8")
