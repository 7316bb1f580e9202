"""Parity between a justfile's delegating recipes and the invoke tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from invoke import Collection, task
from invoke.exceptions import Exit

from dome_tasks.justargs import recipe
from dome_tasks.justfile_bridge import (
    BLOCK_BEGIN,
    BLOCK_END,
    check_parity,
    delegations,
    write_delegating_block,
)
from dome_tasks.justfile_dump import load_justfile

ROOT = Path(__file__).resolve().parents[2]


@recipe
def deploy(c, service=""):
    """Deploy SERVICE (or every service) to production."""


@recipe
def deploy_env(c, service, env):
    """Deploy SERVICE to ENV."""


@recipe(plus=True, name="test")
def run_tests(c, *packages, verbose=False):
    """Run the tests of PACKAGES."""


@task
def lint(c, fix=False):
    """Lint."""


def collection() -> Collection:
    return Collection(deploy, deploy_env, run_tests, lint)


HAND = "# Hand-written\nhello:\n    echo hello\n"


def test_write_then_in_parity(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text(HAND)
    assert write_delegating_block(jf, collection()) is True
    text = jf.read_text()
    assert text.startswith(HAND) and BLOCK_BEGIN in text and BLOCK_END in text
    assert "deploy service=\"\":\n    invoke deploy \"$@\"" in text
    assert "deploy-env service env:" in text and "test +packages:" in text
    assert check_parity(jf, collection()) == []
    assert {d.task for d in delegations(load_justfile(jf))} == {
        "deploy", "deploy-env", "test", "lint"
    }
    assert write_delegating_block(jf, collection()) is False  # idempotent


def test_generated_recipes_run_invoke_with_same_words(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    write_delegating_block(jf, collection(), invoke="echo invoke")
    import subprocess

    from dome_tasks.justfile_dump import find_just

    outs = [
        subprocess.run(
            [find_just(), "--justfile", str(jf), *words], capture_output=True, text=True, check=True
        ).stdout
        for words in (["deploy"], ["deploy", "silo"], ["test", "a", "b c"])
    ]
    # `just deploy` forwards the default "" explicitly; invoke binds it the same way.
    assert outs == ["invoke deploy \n", "invoke deploy silo\n", "invoke test a b c\n"]


def test_update_replaces_only_the_block(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text(HAND)
    write_delegating_block(jf, Collection(deploy))
    jf.write_text(jf.read_text() + "\n# after\nbye:\n    echo bye\n")
    assert write_delegating_block(jf, collection()) is True
    text = jf.read_text()
    assert text.count(BLOCK_BEGIN) == 1 and "bye:" in text and "hello:" in text
    assert "deploy-env service env:" in text


def test_hand_written_recipes_are_not_shadowed(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text("deploy:\n    echo mine\n")
    write_delegating_block(jf, collection())
    assert load_justfile(jf).recipes["deploy"].body == ("echo mine",)


def test_mismatches_are_reported(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text(
        "deploy service='all':\n    invoke deploy {{service}}\n"
        "deploy-env env service:\n    invoke deploy-env {{service}} {{env}}\n"
        "gone:\n    invoke nosuch\n"
        "[positional-arguments]\ntest +packages:\n    invoke test \"$@\"\n"
        "lint:\n    uv run invoke -e lint\n"
    )
    problems = check_parity(jf, collection())
    assert len(problems) == 3, problems
    assert "recipe 'deploy service='all'' and task 'deploy service=\"\"'" in problems[0]
    assert "deploy-env env service" in problems[1]
    assert "runs 'invoke nosuch' but there is no task 'nosuch'" in problems[2]


def test_wrong_forwarding_is_reported(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text("deploy-env service env:\n    invoke deploy-env {{env}} {{service}}\n")
    (problem,) = check_parity(jf, collection())
    assert "instead of its parameters in order" in problem


def test_refuses_to_write_what_just_rejects(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    broken = "hello:\n    echo hi\nhello:\n    echo again\n"
    jf.write_text(broken)
    with pytest.raises(Exit) as exc:
        write_delegating_block(jf, collection())
    assert "not writing" in exc.value.message
    assert jf.read_text() == broken
    assert [p.name for p in tmp_path.iterdir()] == ["justfile"]


def test_repository_justfile_in_parity() -> None:
    """This repository's own justfile delegates to its own tasks faithfully."""
    justfile = ROOT / "justfile"
    from invoke import Collection as C
    import importlib
    import sys

    sys.path.insert(0, str(ROOT))
    try:
        module = importlib.import_module("tasks")
    finally:
        sys.path.remove(str(ROOT))
    assert check_parity(justfile, C.from_module(module)) == []
