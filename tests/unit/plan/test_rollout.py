"""Golden argv for every lifecycle wrangler command (no mocks: plans are data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dome_tasks.errors import UsageError
from dome_tasks.manifest.loader import load
from dome_tasks.manifest.model import Environment
from dome_tasks.plan.rollout import (
    NEW,
    OLD,
    abort_steps,
    canary_steps,
    promote_steps,
    resources_steps,
    rollback_steps,
    secret_put_step,
    status_step,
    tail_step,
)
from dome_tasks.plan.target import resolve
from tests.helpers import SAMPLE

CFG = Path("/ws/.dome/build/staging/silo/wrangler.toml")
T = dataclasses.replace(
    resolve(load(SAMPLE / "dome.yaml"), ["silo"], "staging").targets[0],
    path=CFG,
)


def argv(step):
    return list(step.action.argv)


def test_canary_uploads_then_splits_with_yes() -> None:
    upload, split = canary_steps(T, 10, old="OLD1", new="NEW1", message="try v2", tag="v2")
    assert argv(upload) == ["wrangler", "versions", "upload", "--message", "try v2", "--tag", "v2",
                            "--config", str(CFG)]
    assert argv(split) == ["wrangler", "versions", "deploy", "NEW1@10%", "OLD1@90%", "--yes",
                           "--message", "try v2", "--config", str(CFG)]
    assert (upload.event, split.event) == ("upload", "canary")
    assert split.service == "silo" and split.environment == "staging"
    assert upload.action.cwd == CFG.parent and upload.action.wrangler


def test_canary_placeholders_for_dry_runs_and_resplit() -> None:
    steps = canary_steps(T, 25)
    assert f"{NEW}@25%" in argv(steps[1]) and f"{OLD}@75%" in argv(steps[1])
    (only,) = canary_steps(T, 50, old="a", new="b", upload=False)
    assert argv(only)[3:5] == ["b@50%", "a@50%"]


@pytest.mark.parametrize("percent", [0, 100, -5, 150, 12.5, True])
def test_canary_percent_is_checked(percent) -> None:
    with pytest.raises(UsageError):
        canary_steps(T, percent)


def test_promote_and_abort_put_one_version_at_100() -> None:
    (promote,) = promote_steps(T, "NEW1")
    (abort,) = abort_steps(T, "OLD1")
    assert argv(promote)[:5] == ["wrangler", "versions", "deploy", "NEW1@100%", "--yes"]
    assert argv(abort)[:5] == ["wrangler", "versions", "deploy", "OLD1@100%", "--yes"]
    assert (promote.event, abort.event) == ("promote", "abort")


def test_every_versions_deploy_has_yes() -> None:
    steps = [*canary_steps(T, 10, old="o", new="n"), *promote_steps(T, "n"), *abort_steps(T, "o")]
    for step in steps:
        if argv(step)[1:3] == ["versions", "deploy"]:
            assert "--yes" in argv(step)


def test_rollback_with_and_without_version() -> None:
    (explicit,) = rollback_steps(T, "v1", message="bad deploy")
    assert argv(explicit) == ["wrangler", "rollback", "v1", "--message", "bad deploy", "-y",
                              "--config", str(CFG)]
    (previous,) = rollback_steps(T, None, message="m")
    assert argv(previous)[:2] == ["wrangler", "rollback"] and argv(previous)[2] == "--message"


def test_status_and_tail() -> None:
    assert argv(status_step(T)) == ["wrangler", "deployments", "status", "--json", "--config", str(CFG)]
    assert argv(tail_step(T)) == ["wrangler", "tail", "--format", "pretty", "--config", str(CFG)]


def test_secret_value_is_on_stdin_never_in_argv_or_display() -> None:
    value = "hunter2-very-secret"
    step = secret_put_step(T, "SILO_API_KEY", value)
    assert argv(step) == ["wrangler", "secret", "put", "SILO_API_KEY", "--config", str(CFG)]
    assert step.action.stdin == value
    for text in (step.display(), step.description, repr(step), repr(step.action)):
        assert value not in text
    with pytest.raises(UsageError):
        secret_put_step(T, "BAD NAME", value)


def test_resources_lists_d1_r2_vectorize() -> None:
    steps = resources_steps("wrangler", Environment("staging", "-staging", account_id="acc"))
    assert [argv(s) for s in steps] == [
        ["wrangler", "d1", "list"],
        ["wrangler", "r2", "bucket", "list"],
        ["wrangler", "vectorize", "list"],
    ]
    assert all(s.action.env == {"CLOUDFLARE_ACCOUNT_ID": "acc"} for s in steps)
