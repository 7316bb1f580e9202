"""The pull request's one preview comment: its body, create-or-update, and the real task against
a stand-in for GitHub's API on 127.0.0.1 (tests/ci/fake_github.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci_helpers import invoke, run_env
from fake_github import TOKEN, FakeGitHub

from dome_tasks.ci.preview_comment import MARKER, comment_body, decide_comment

REPO = "acme/stack"


def preview(**changes: object) -> dict:
    """What `invoke preview-up 42 --json` prints (the parts the comment reads)."""
    document = {
        "preview": "pr-42", "number": 42, "from": "staging", "commit": "3f2a" * 10,
        "urls": {s: f"https://{s}-pr-42.acme.workers.dev" for s in ("silo", "constellation", "dome-api")},
        "deploy": {"ok": True, "services": [
            {"service": "silo", "result": "deployed", "health": "healthy", "note": None},
            {"service": "constellation", "result": "skipped", "health": None, "note": "unchanged"},
            {"service": "dome-api", "result": "deployed", "health": "healthy", "note": None},
        ]},
        "ok": True,
    }
    document.update(changes)
    return document


# --- the body and the decision (pure) -------------------------------------------------------


def test_the_body_is_marked_and_lists_each_service_url_in_deploy_order() -> None:
    body = comment_body(preview())
    assert body.splitlines()[0] == MARKER
    assert "### Preview `pr-42` (from staging): up" in body
    rows = [line for line in body.splitlines() if line.startswith("| ") and "://" in line]
    assert rows == [
        "| silo | <https://silo-pr-42.acme.workers.dev> | ✅ deployed, healthy |",
        "| constellation | <https://constellation-pr-42.acme.workers.dev> | ✅ skipped |",
        "| dome-api | <https://dome-api-pr-42.acme.workers.dev> | ✅ deployed, healthy |",
    ]
    assert f"Commit `{'3f2a' * 10}`" in body


def test_a_failed_service_shows_in_the_heading_and_its_row() -> None:
    failed = preview(urls={"silo": "https://silo-pr-42.acme.workers.dev"}, deploy={"services": [
        {"service": "silo", "result": "deployed", "health": "healthy"},
        {"service": "constellation", "result": "failed", "note": "build | exited 1"},
        {"service": "dome-api", "result": "not run"},
    ]})
    body = comment_body(failed)
    assert "### Preview `pr-42` (from staging): 2 of 3 failed" in body
    assert "| constellation | — | ❌ failed: build \\| exited 1 |" in body
    assert "| dome-api | — | ❌ not run |" in body


def test_no_sticky_comment_means_create_one() -> None:
    others = [{"id": 1, "body": "LGTM"}, {"id": 2, "body": f"quoting the bot:\n> {MARKER}"}]
    action = decide_comment(REPO, 42, "new", others)
    assert (action.method, action.path, action.body) == ("POST", f"/repos/{REPO}/issues/42/comments", "new")


def test_the_marked_comment_is_updated_and_an_unchanged_one_left_alone() -> None:
    comments = [{"id": 1, "body": "LGTM"}, {"id": 7, "body": f"{MARKER}\nold"},
                {"id": 9, "body": f"{MARKER}\nanother"}]
    action = decide_comment(REPO, 42, f"{MARKER}\nnew", comments)
    assert (action.method, action.path, action.comment_id) == ("PATCH", f"/repos/{REPO}/issues/comments/7", 7)
    assert decide_comment(REPO, 42, f"{MARKER}\nold", comments) is None


# --- the task against the GitHub stand-in ---------------------------------------------------


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def comment(repo: Path, github: FakeGitHub, document: dict, *args: str, token: str = TOKEN):
    env = run_env(GITHUB_API_URL=github.url, GITHUB_TOKEN=token, GITHUB_REPOSITORY=REPO,
                  DOME_PREVIEW_JSON=json.dumps(document))
    return invoke(repo, "ci-preview-comment", "42", *args, env=env)


def test_running_twice_updates_the_same_comment_and_a_third_time_changes_nothing(
        repo: Path, github: FakeGitHub) -> None:
    github.add(REPO, 42, "Looks good")
    first = comment(repo, github, preview())
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created the preview comment" in first.stdout
    pushed = preview(commit="9" * 40)
    second = comment(repo, github, pushed)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "updated the preview comment" in second.stdout
    bodies = [c["body"] for c in github.comments[(REPO, 42)]]
    assert bodies == ["Looks good", comment_body(pushed)]  # still one preview comment
    writes = len(github.writes())
    third = comment(repo, github, pushed)
    assert "up to date" in third.stdout and len(github.writes()) == writes
    assert [(r.method, r.path) for r in github.writes()] == [
        ("POST", f"/repos/{REPO}/issues/42/comments"),
        ("PATCH", f"/repos/{REPO}/issues/comments/{github.comments[(REPO, 42)][1]['id']}"),
    ]


def test_the_sticky_comment_is_found_on_a_later_page(repo: Path, github: FakeGitHub) -> None:
    github.page_size = 2
    for text in ("one", "two", "three"):
        github.add(REPO, 42, text)
    sticky = github.add(REPO, 42, f"{MARKER}\nan older preview")
    done = comment(repo, github, preview())
    assert done.returncode == 0, done.stdout + done.stderr
    assert [(r.method, r.path) for r in github.writes()] == [
        ("PATCH", f"/repos/{REPO}/issues/comments/{sticky['id']}")]
    assert len(github.comments[(REPO, 42)]) == 4


def test_a_refused_token_is_one_clear_message_without_the_token(repo: Path, github: FakeGitHub) -> None:
    github.writable = False  # a job without `pull-requests: write`
    refused = comment(repo, github, preview())
    assert refused.returncode == 1
    assert f"POST /repos/{REPO}/issues/42/comments: HTTP 403 (Resource not accessible" in refused.stderr
    assert "pull-requests: write" in refused.stderr
    assert TOKEN not in refused.stdout + refused.stderr and "Traceback" not in refused.stderr
    bad = comment(repo, github, preview(), token="ghs_wrong_token_value")
    assert bad.returncode == 1 and "HTTP 401 (Bad credentials)" in bad.stderr
    assert "ghs_wrong_token_value" not in bad.stdout + bad.stderr
    assert (REPO, 42) not in github.comments


def test_a_document_that_is_not_preview_ups_is_refused_before_any_request(
        repo: Path, github: FakeGitHub) -> None:
    wrong = comment(repo, github, {"environment": "staging"})
    assert wrong.returncode != 0
    assert "$DOME_PREVIEW_JSON: not a preview-up document" in wrong.stderr
    assert github.requests == []


def test_a_dry_run_prints_the_comment_and_sends_nothing(repo: Path, github: FakeGitHub,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "preview.json"
    path.write_text(json.dumps(preview()), encoding="utf-8")
    env = run_env(GITHUB_API_URL=github.url, GITHUB_REPOSITORY=REPO)  # no token needed
    dry = invoke(repo, "ci-preview-comment", "42", "--from-json", str(path), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout == f"would post or update the comment on {REPO}#42:\n{comment_body(preview())}"
    assert github.requests == []
