"""Who keeps a name when a justfile's recipe and a dome task share it (pure, no just needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dome_tasks.just.block import _changed_user_parts
from dome_tasks.just.coexist import Coexistence, check_prefix, dome_recipes
from dome_tasks.just.dump import parse_dump

TASKS = ("db-migrate-prod", "deploy", "deploy-env", "logs", "status", "stop")


def justfile(recipes: dict[str, list[str]], aliases: dict[str, str] | None = None,
             private: tuple[str, ...] = ()):
    """A `Justfile` as just would dump it: recipe name -> body lines."""
    dump = {
        "recipes": {
            name: {"name": name, "body": [[line] for line in body], "parameters": [],
                   "attributes": ["private"] if name in private else [], "private": name in private}
            for name, body in recipes.items()
        },
        "aliases": {a: {"name": a, "target": t} for a, t in (aliases or {}).items()},
        "settings": {},
    }
    return parse_dump(dump, Path("justfile"))


def test_without_a_justfile_every_task_keeps_its_name() -> None:
    names = Coexistence.of(None, TASKS)
    assert all(names.plain(t) for t in TASKS)
    assert [names.recipe(t) for t in TASKS] == list(TASKS)
    assert names.invoke_path("deploy") == "dome.deploy"
    assert names.notes() == [] and names.conflicts() == []


def test_user_recipes_aliases_and_private_recipes_keep_their_names() -> None:
    jf = justfile(
        {"deploy": ["wrangler deploy"], "stat": ["echo"], "stop": ["echo"],
         "db_migrate_prod": ["wrangler d1 migrations apply"], "build": ["pnpm build"]},
        aliases={"status": "stat"},
        private=("stop",),
    )
    names = Coexistence.of(jf, TASKS)
    assert names.shadowed() == ("db-migrate-prod", "deploy", "status", "stop")
    assert [t for t in TASKS if names.plain(t)] == ["deploy-env", "logs"]
    assert names.recipe("deploy") == "dome-deploy" and names.recipe("logs") == "logs"
    assert names.recipe("db-migrate-prod") == "dome-db-migrate-prod"  # invoke dashes db_migrate_prod
    assert names.notes() == [
        ("db-migrate-prod: your justfile's recipe; dome's task is `invoke dome.db-migrate-prod` / "
        "`just dome-db-migrate-prod`"),
        "deploy: your justfile's recipe; dome's task is `invoke dome.deploy` / `just dome-deploy`",
        "status: your justfile's alias; dome's task is `invoke dome.status` / `just dome-status`",
        "stop: your justfile's private recipe; dome's task is `invoke dome.stop` / `just dome-stop`",
    ]


def test_recipes_that_only_delegate_to_dome_are_domes() -> None:
    jf = justfile({
        "deploy-env": ['@{{dome_invoke}} dome.deploy-env "$@"'],   # the generated block
        "dome-deploy": ['@{{dome_invoke}} dome.deploy "$@"'],
        "logs": ["invoke logs {{service}} {{env}}"],                # an older hand-written twin
        "deploy": ["wrangler deploy"],                              # the user's own
        "deploy-prod": ["invoke deploy --yes"],                     # the user's, another name
    })
    assert dome_recipes(jf, TASKS, "dome") == {"deploy-env", "dome-deploy", "logs"}
    names = Coexistence.of(jf, TASKS)
    assert names.shadowed() == ("deploy",)
    assert names.plain("deploy-env") and names.plain("logs") and not names.plain("deploy")
    every = Coexistence.of(jf, TASKS, every_name=True)  # what a rewrite must not redefine
    assert every.shadowed() == ("deploy", "deploy-env", "logs")


def test_an_unreadable_justfile_gives_no_plain_names() -> None:
    names = Coexistence.unknown(TASKS)
    assert not any(names.plain(t) for t in TASKS)
    assert names.invoke_path("logs") == "dome.logs"


def test_conflicts_name_the_fix() -> None:
    jf = justfile({"deploy": ["a"], "dome-deploy": ["b"], "dome": ["c"]})
    assert Coexistence.of(jf, TASKS).conflicts() == [
        ("your recipe 'dome' has the name of dome-tasks' namespace: rename it, or pass another "
        "prefix: namespace(..., prefix='cf')"),
        ("your recipes 'deploy' and 'dome-deploy' both take names dome-tasks' 'deploy' task "
        "needs: rename one, or pass another prefix: namespace(..., prefix='cf')"),
    ]
    other = Coexistence.of(jf, TASKS, prefix="cf")
    assert other.conflicts() == [] and other.recipe("deploy") == "cf-deploy"
    assert other.invoke_path("deploy") == "cf.deploy"


@pytest.mark.parametrize("prefix", ["dome", "cf", "ops-2", "my_dome"])
def test_good_prefixes(prefix: str) -> None:
    assert check_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "Dome", "dome.", "-x", "a b", "dome-"])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="use lower-case letters and digits"):
        check_prefix(prefix)


def test_changed_user_parts_names_each_change() -> None:
    before = {"recipes": {"deploy": {"body": 1}, "build": {"body": 2}},
              "aliases": {"d": {"target": "deploy"}}, "assignments": {"pnpm": {"value": "pnpm"}},
              "settings": {"positional_arguments": True}}
    after = {"recipes": {"deploy": {"body": 9}, "build": {"body": 2}, "dome-deploy": {}},
             "aliases": {}, "assignments": {"pnpm": {"value": "pnpm"}, "dome_invoke": {}},
             "settings": {"positional_arguments": False}}
    assert list(_changed_user_parts(before, after)) == ["recipe 'deploy'", "alias 'd'", "settings"]
    assert list(_changed_user_parts(before, before)) == []
