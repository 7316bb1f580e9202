"""GitHub event -> environment: push, release created/published, manual dispatch, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dome_tasks.ci.events import ZERO_SHA, EventRefused, decide, read_event, remote_environment
from dome_tasks.errors import DomeError, UsageError
from dome_tasks.manifest.loader import Manifest, load

SAMPLE = Path(__file__).resolve().parents[2] / "sample" / "dome.yaml"
BEFORE = "a" * 40


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load(SAMPLE)


def push(ref: str = "refs/heads/main", before: str = BEFORE, **extra: object) -> dict:
    return {"ref": ref, "before": before, "repository": {"default_branch": "main"}, **extra}


def release(action: str, *, prerelease: bool = False, draft: bool = False) -> dict:
    return {
        "action": action,
        "release": {"tag_name": "v1.2.0", "prerelease": prerelease, "draft": draft},
    }


def test_push_to_main_deploys_development_only_what_changed(manifest: Manifest) -> None:
    decision = decide("push", push(), manifest)
    assert decision.environment == "development"
    assert decision.only_changed and decision.since == BEFORE
    assert decision.deploys


def test_push_of_a_new_branch_has_no_before_commit(manifest: Manifest) -> None:
    assert decide("push", push(before=ZERO_SHA), manifest).since is None


def test_push_uses_the_repository_default_branch(manifest: Manifest) -> None:
    payload = push("refs/heads/trunk", repository={"default_branch": "trunk"})
    assert decide("push", payload, manifest).environment == "development"


@pytest.mark.parametrize("ref", ["refs/heads/feature/x", "refs/tags/v1.0.0", ""])
def test_push_elsewhere_is_refused_with_a_fix(manifest: Manifest, ref: str) -> None:
    with pytest.raises(EventRefused) as caught:
        decide("push", push(ref), manifest)
    assert "only pushes to 'main' go to development" in str(caught.value)
    assert caught.value.hint


def test_push_that_deletes_main_is_refused(manifest: Manifest) -> None:
    with pytest.raises(EventRefused, match="deleted"):
        decide("push", push(deleted=True), manifest)


def test_prerelease_created_deploys_staging(manifest: Manifest) -> None:
    decision = decide("release", release("created", prerelease=True), manifest)
    assert decision.environment == "staging"
    assert decision.action == "created" and not decision.only_changed


def test_release_published_deploys_production(manifest: Manifest) -> None:
    decision = decide("release", release("published"), manifest)
    assert decision.environment == "production"


def test_full_release_created_is_skipped_so_staging_and_production_never_run_together(
    manifest: Manifest,
) -> None:
    # GitHub fires `created` and `published` at once for a non-draft release: exactly one
    # of the two may deploy, and it is production.
    created = decide("release", release("created"), manifest)
    published = decide("release", release("published"), manifest)
    assert created.environment is None and not created.deploys
    assert "published" in created.reason
    assert published.environment == "production"


def test_prerelease_published_is_skipped_and_says_how_to_stage_it(manifest: Manifest) -> None:
    decision = decide("release", release("published", prerelease=True), manifest)
    assert decision.environment is None
    assert "environment staging" in decision.reason


def test_draft_created_would_deploy_staging(manifest: Manifest) -> None:
    assert decide("release", release("created", draft=True), manifest).environment == "staging"


@pytest.mark.parametrize("action", ["edited", "deleted", "released", ""])
def test_other_release_actions_are_refused(manifest: Manifest, action: str) -> None:
    with pytest.raises(EventRefused, match="does not deploy anything"):
        decide("release", release(action), manifest)


@pytest.mark.parametrize(
    ("given", "expected"),
    [("production", "production"), ("prod", "production"), ("stg", "staging"), ("dev", "development")],
)
def test_manual_dispatch_takes_the_input_aliases_allowed(
    manifest: Manifest, given: str, expected: str
) -> None:
    decision = decide("workflow_dispatch", {"inputs": {"environment": given}}, manifest)
    assert decision.environment == expected
    assert not decision.only_changed


def test_manual_dispatch_only_changed_input(manifest: Manifest) -> None:
    payload = {"inputs": {"environment": "staging", "only-changed": "true"}}
    assert decide("workflow_dispatch", payload, manifest).only_changed


def test_manual_dispatch_validates_the_environment(manifest: Manifest) -> None:
    with pytest.raises(UsageError, match="unknown environment 'prodution'; did you mean"):
        decide("workflow_dispatch", {"inputs": {"environment": "prodution"}}, manifest)
    with pytest.raises(UsageError, match="CI cannot deploy it"):
        decide("workflow_dispatch", {"inputs": {"environment": "local"}}, manifest)
    with pytest.raises(EventRefused, match="without an 'environment' input"):
        decide("workflow_dispatch", {"inputs": {}}, manifest)


@pytest.mark.parametrize("event", ["pull_request", "schedule", "issue_comment", "pushh"])
def test_unknown_events_are_a_clear_refusal(manifest: Manifest, event: str) -> None:
    with pytest.raises(EventRefused) as caught:
        decide(event, {"action": "opened"}, manifest)
    error = caught.value
    assert isinstance(error, DomeError) and error.exit_code == 1
    assert f"'{event}' does not deploy anything" in str(error)
    assert "--env ENV" in (error.hint or "")
    if event == "pushh":
        assert "did you mean 'push'?" in (error.hint or "")


def test_without_a_manifest_names_are_not_validated() -> None:
    assert decide("release", release("published"), None).environment == "production"


def test_read_event_from_the_github_environment(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(push()), encoding="utf-8")
    name, payload = read_event(environ={"GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": str(path)})
    assert name == "push" and payload["ref"] == "refs/heads/main"
    # arguments beat the environment
    name, _ = read_event("release", str(path), environ={"GITHUB_EVENT_NAME": "push"})
    assert name == "release"


def test_read_event_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="GITHUB_EVENT_NAME is not set"):
        read_event(environ={})
    with pytest.raises(UsageError, match="cannot read the event payload"):
        read_event("push", str(tmp_path / "missing.json"), environ={})
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    with pytest.raises(UsageError, match="not JSON"):
        read_event("push", str(bad), environ={})


def test_remote_environment_refuses_local(manifest: Manifest) -> None:
    assert remote_environment(manifest, "prod") == "production"
    with pytest.raises(UsageError, match="choose a remote environment: development, staging, production"):
        remote_environment(manifest, "local")
