"""Parity between a justfile's delegating recipes and the invoke tasks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from invoke import Collection, Context, task
from invoke.exceptions import Exit

from dome_tasks.collection import ci_task_names, native_tasks
from dome_tasks.errors import JustfileError
from dome_tasks.just.args import recipe
from dome_tasks.just.block import BLOCK_BEGIN, BLOCK_END, BlockSpec
from dome_tasks.just.delegation import delegations
from dome_tasks.just.dump import find_just, load_justfile
from dome_tasks.just.parity import (
    check_justfile,
    check_parity,
    parity_tasks,
    write_delegating_block,
)

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


def spec() -> BlockSpec:
    return BlockSpec(collection())


def test_write_then_in_parity(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text(HAND)
    assert write_delegating_block(jf, spec()) is True
    text = jf.read_text()
    assert text.startswith(HAND + "\n" + BLOCK_BEGIN) and text.endswith(BLOCK_END + "\n")
    assert "[group('dome')]\n[positional-arguments]\ndeploy *args:\n" in text
    assert '    @{{dome_invoke}} dome.deploy "$@"\n' in text
    assert "# SERVICE ENV — Deploy SERVICE to ENV.\n" in text
    assert "# [OPTIONS] PACKAGES... — Run the tests of PACKAGES.\n" in text
    report = check_justfile(jf, spec())
    assert report.problems == () and report.notes == () and report.recipes == 4
    assert {d.task for d in delegations(load_justfile(jf))} == {
        "dome.deploy", "dome.deploy-env", "dome.test", "dome.lint"
    }
    assert write_delegating_block(jf, spec()) is False  # idempotent


def test_check_fails_before_anything_delegates(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text(HAND)
    (problem,) = check_justfile(jf, spec()).problems
    assert problem == (
        "justfile: no recipe delegates to dome-tasks yet: run `invoke just.sync` to add a "
        "recipe per dome task"
    )


def test_check_names_a_missing_recipe(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    write_delegating_block(jf, BlockSpec(Collection(deploy, lint)))
    problems = check_justfile(jf, spec()).problems
    assert problems == (
        "justfile: dome's 'deploy-env' task has no recipe 'deploy-env': run `invoke just.sync`",
        "justfile: dome's 'test' task has no recipe 'test': run `invoke just.sync`",
    )


def test_check_reports_a_stale_doc(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    write_delegating_block(jf, spec())
    jf.write_text(jf.read_text().replace("Deploy SERVICE to ENV.", "Deploy it."))
    (problem,) = check_justfile(jf, spec()).problems
    assert "the generated block differs from what `invoke just.sync` writes" in problem


def test_generated_recipes_pass_words_and_flags_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jf = tmp_path / "justfile"
    write_delegating_block(jf, spec())
    monkeypatch.setenv("DOME_INVOKE", "printf [%s]")
    outs = [
        subprocess.run(
            [find_just(), "--justfile", str(jf), *words], capture_output=True, text=True, check=True
        ).stdout
        for words in (
            ["deploy"],
            ["deploy-env", "silo", "staging", "--dry-run", "--yes"],
            ["deploy-env", "--percent", "25", "silo", "staging", "--json", ""],
            ["test", "a", "b c", "--verbose"],
            ["deploy", "--help"],
        )
    ]
    root = f"[--search-root][{tmp_path}]"
    assert outs == [
        f"{root}[dome.deploy]",
        f"{root}[dome.deploy-env][silo][staging][--dry-run][--yes]",
        f"{root}[dome.deploy-env][--percent][25][silo][staging][--json][]",
        f"{root}[dome.test][a][b c][--verbose]",
        f"{root}[dome.deploy][--help]",
    ]


def test_update_replaces_only_the_block(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text(HAND)
    write_delegating_block(jf, BlockSpec(Collection(deploy)))
    jf.write_text(jf.read_text() + "\n# after\nbye:\n    echo bye\n")
    assert write_delegating_block(jf, spec()) is True
    text = jf.read_text()
    assert text.count(BLOCK_BEGIN) == 1 and text.endswith("# after\nbye:\n    echo bye\n")
    assert text.startswith(HAND) and "deploy-env *args:" in text


def test_hand_written_recipes_keep_their_names(tmp_path: Path) -> None:
    jf = tmp_path / "justfile"
    jf.write_text("deploy:\n    echo mine\n")
    write_delegating_block(jf, spec())
    recipes = load_justfile(jf).recipes
    assert recipes["deploy"].body == ("echo mine",)
    assert recipes["dome-deploy"].body == ('@{{dome_invoke}} dome.deploy "$@"',)
    assert "deploy-env" in recipes and "dome-deploy-env" not in recipes


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
    with pytest.raises(JustfileError) as exc:
        write_delegating_block(jf, spec())
    assert f"not writing {jf}: just rejects it (outside the generated block)" in str(exc.value)
    assert "recipe `hello` first defined on line 1 is redefined on line 3" in str(exc.value)
    assert jf.read_text() == broken
    assert [p.name for p in tmp_path.iterdir()] == ["justfile"]


def test_sync_task_reports_what_the_system_refuses(tmp_path: Path) -> None:
    (tmp_path / "justfile").mkdir()  # a folder where the justfile should be
    with pytest.raises(Exit) as exc:
        parity_tasks(tmp_path / "justfile", spec())["sync"](Context())
    assert exc.value.message == (
        f"error: not writing {tmp_path / 'justfile'}: Is a directory: {tmp_path / 'justfile'}")


def test_repository_justfile_in_parity() -> None:
    """This repository's own justfile has the block `invoke just.sync` writes for its tasks."""
    report = check_justfile(ROOT / "justfile", BlockSpec(native_tasks(), "dome", ci_task_names()))
    assert report.problems == ()
    assert report.recipes == len(native_tasks().tasks)
