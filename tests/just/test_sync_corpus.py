"""`just.sync` on a corpus of monorepo-shaped justfiles, checked with the real just.

For each: the synced file is accepted by `just --summary`, the user's recipes are exactly as
before (just's own dump, field by field) and the text outside the block is byte for byte the
same, every dome task has one recipe, the clashing ones are `dome-NAME`, `just.check` passes,
and a second sync changes nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dome_tasks.collection import ci_task_names, native_tasks
from dome_tasks.errors import JustfileError
from dome_tasks.just.block import BLOCK_BEGIN, BLOCK_END, BlockSpec, plan_rewrite, split_block
from dome_tasks.just.delegation import delegations
from dome_tasks.just.dump import dump_json, dump_text, find_just, load_justfile, summary
from dome_tasks.just.parity import check_justfile, write_delegating_block

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CORPUS = FIXTURES / "corpus"
SPEC = BlockSpec(native_tasks(), "dome", ci_task_names())
TASKS = set(SPEC.names())

#: fixture -> the dome tasks whose plain name the user's recipes (or aliases) hold.
SHADOWED = {
    "workers-monorepo.just": {"deploy", "logs", "db-migrate-local", "db-migrate-prod"},
    "every-header.just": {"deploy", "logs", "status", "changed"},
    "with-import.just": {"logs", "db-migrate-local"},
    "old-block.just": {"deploy", "logs"},
    "monorepo.just": {"deploy", "deploy-env", "rollback", "logs", "db-migrate-dev", "doctor"},
}

#: What just.check still reports after a sync: hand-written delegations it cannot vouch for.
LEFT = {
    "monorepo.just": (("justfile: recipe 'lint-py' runs 'invoke lint-py' but there is no task "
                      "'lint-py'"),),
}


def copy(name: str, folder: Path) -> Path:
    source = CORPUS / name if (CORPUS / name).exists() else FIXTURES / name
    shutil.copy(source, folder / "justfile")
    shutil.copy(CORPUS / "common.just", folder / "common.just")
    return folder / "justfile"


def just(justfile: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([find_just(), "--justfile", str(justfile), *words],
                          capture_output=True, text=True, check=False, timeout=60)


def test_the_corpus_is_shaped_like_real_justfiles() -> None:
    workers = load_justfile(CORPUS / "workers-monorepo.just")
    assert len(workers.recipes) == 42
    assert workers.settings["positional_arguments"] is True
    assert sum(1 for r in workers.recipes.values() if r.params) >= 15
    assert workers.recipes["deploy"].declaration() == "deploy SERVICE ENV='dev':"
    assert workers.recipes["build"].dependencies == ("install",)
    assert [p.param.kind for p in workers.recipes["cli"].params] == ["star"]
    assert len(load_justfile(FIXTURES / "monorepo.just").recipes) >= 30


@pytest.mark.parametrize("name", sorted(SHADOWED))
def test_sync_keeps_every_user_recipe_and_reaches_every_task(tmp_path: Path, name: str) -> None:
    path = copy(name, tmp_path)
    original = path.read_text()
    before, _, after = split_block(original)
    users = dump_text(before + after, tmp_path, shown=path)["recipes"]

    assert write_delegating_block(path, SPEC) is True
    text = path.read_text()
    assert summary(path)  # just --summary accepts it
    assert text.startswith(before) and text.endswith(after)  # outside the block: byte for byte
    assert text.count(BLOCK_BEGIN) == text.count(BLOCK_END) == 1
    synced = dump_json(path)["recipes"]
    for recipe, raw in users.items():
        assert synced[recipe] == raw, f"{name}: recipe {recipe} changed"

    delegating = {d.recipe: d.task for d in delegations(load_justfile(path))}
    generated = {r: t.removeprefix("dome.") for r, t in delegating.items() if t.startswith("dome.")}
    assert sorted(generated.values()) == sorted(TASKS)  # every task exactly once
    renamed = {task for recipe, task in generated.items() if recipe == f"dome-{task}"}
    assert renamed == SHADOWED[name]
    assert all(recipe == task for recipe, task in generated.items() if task not in renamed)

    report = check_justfile(path, SPEC)
    assert report.problems == LEFT.get(name, ())
    assert len(report.notes) == len(SHADOWED[name])
    assert write_delegating_block(path, SPEC) is False
    assert [p.name for p in tmp_path.iterdir()] == ["common.just", "justfile"]  # no temp files


def test_user_recipes_still_run_as_before(tmp_path: Path) -> None:
    path = copy("workers-monorepo.just", tmp_path)
    write_delegating_block(path, SPEC)
    assert just(path, "deploy", "silo", "dev").stdout == (
        "wrangler -c services/silo/wrangler.toml deploy --env dev\n")
    assert just(path, "deploy", "silo").stdout.endswith("deploy --env dev\n")
    assert just(path, "logs", "silo").stdout == "wrangler tail -c services/silo/wrangler.toml\n"
    assert just(path, "cli", "a", "b c").stdout == "node scripts/cli.mjs a b c\n"
    assert just(path, "build").stdout == "pnpm install --frozen-lockfile\npnpm -r build\n"
    listing = just(path, "--list").stdout
    assert "    deploy SERVICE ENV=\"dev\"" in listing
    dome_group = listing.split("    [dome]\n")[1].split("\n\n")[0]
    assert "    dome-deploy *args" in dome_group and "    deploy-env *args" in dome_group
    assert "ci-plan" not in dome_group and "    ci-plan *args" in listing.split("[dome-ci]")[1]


def test_allow_duplicate_recipes_keeps_the_users_recipe(tmp_path: Path) -> None:
    path = copy("every-header.just", tmp_path)
    write_delegating_block(path, SPEC)
    assert just(path, "deploy", "silo").stdout == "deploy silo to dev\n"
    assert just(path, "status").stdout == "stat\n"
    assert just(path, "changed").stdout == "git diff --name-only\n"


def test_an_older_block_that_replaced_user_recipes_is_repaired(tmp_path: Path) -> None:
    path = copy("old-block.just", tmp_path)
    assert just(path, "deploy", "silo").stdout == ""  # the old block's `invoke deploy` won
    problems = check_justfile(path, SPEC).problems
    assert problems[:2] == (
        ("justfile: your recipe 'deploy' is not what `just deploy` runs: a generated recipe of "
        "that name replaces it (allow-duplicate-recipes): run `invoke just.sync`"),
        ("justfile: your recipe 'logs' is not what `just logs` runs: a generated recipe of that "
        "name replaces it (allow-duplicate-recipes): run `invoke just.sync`"),
    )
    write_delegating_block(path, SPEC)
    assert just(path, "deploy", "silo").stdout == (
        "wrangler -c services/silo/wrangler.toml deploy --env dev\n")
    assert check_justfile(path, SPEC).problems == ()


def test_a_user_recipe_added_after_sync_is_caught_and_fixed(tmp_path: Path) -> None:
    path = tmp_path / "justfile"
    path.write_text("build:\n    @echo build\n")
    write_delegating_block(path, SPEC)
    path.write_text(path.read_text() + "\n# mine\nlogs SERVICE:\n    @echo tail {{SERVICE}}\n")
    (problem,) = check_justfile(path, SPEC).problems
    assert "recipe `logs` first defined on line" in problem
    assert "hint: run `invoke just.sync`: it renames dome's recipes that clash with yours" in problem
    write_delegating_block(path, SPEC)
    assert just(path, "logs", "silo").stdout == "tail silo\n"
    assert "dome-logs" in load_justfile(path).recipes


def test_refuses_names_it_cannot_take(tmp_path: Path) -> None:
    path = tmp_path / "justfile"
    text = "deploy:\n    @echo mine\n\ndome-deploy:\n    @echo also mine\n"
    path.write_text(text)
    with pytest.raises(JustfileError) as error:
        write_delegating_block(path, SPEC)
    assert str(error.value) == (
        f"not writing {path}:\n  your recipes 'deploy' and 'dome-deploy' both take names "
        "dome-tasks' 'deploy' task needs: rename one, or pass another prefix: "
        "namespace(..., prefix='cf')"
    )
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["justfile"]


def test_refuses_a_block_without_its_end(tmp_path: Path) -> None:
    path = tmp_path / "justfile"
    path.write_text(f"build:\n    @echo b\n\n{BLOCK_BEGIN}\nlogs:\n    @echo x\n")
    with pytest.raises(JustfileError) as error:
        plan_rewrite(path, SPEC)
    assert f"{path}: '{BLOCK_BEGIN}' without '{BLOCK_END}'" in str(error.value)
    assert "hint: restore the end marker" in str(error.value)


def test_a_users_dome_invoke_variable_is_used_not_redefined(tmp_path: Path) -> None:
    path = tmp_path / "justfile"
    path.write_text("dome_invoke := \"printf [%s]\"\n\nbuild:\n    @echo b\n")
    write_delegating_block(path, SPEC)
    assert path.read_text().count("dome_invoke :=") == 1
    assert just(path, "deploy-env", "silo", "staging", "--dry-run").stdout == (
        "[dome.deploy-env][silo][staging][--dry-run]")


def test_a_new_justfile_gets_only_the_block(tmp_path: Path) -> None:
    path = tmp_path / "justfile"
    assert write_delegating_block(path, SPEC) is True
    assert path.read_text().startswith(BLOCK_BEGIN)
    assert set(summary(path)) == TASKS
