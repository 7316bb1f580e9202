"""The pure planner: what a deploy or a migration would run, step by step (no I/O)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dome_tasks.errors import UsageError
from dome_tasks.manifest import load
from dome_tasks.plan import Tools, all_services, deploy_plan, migrate_plan
from dome_tasks.steps import Command, WriteFile
from tests.conftest import SAMPLE

TOOLS = Tools(wrangler="/bin/wrangler", just="/bin/just", just_recipes=frozenset({"build-pkg"}))


@pytest.fixture(scope="module")
def manifest():
    return load(SAMPLE / "dome.yaml")


def test_one_service_builds_renders_then_deploys_its_rendered_config(manifest):
    steps = deploy_plan(manifest, ["silo"], "stg", TOOLS)
    config = manifest.root / ".dome/build/staging/silo/wrangler.toml"
    assert [(s.event, s.service, s.environment) for s in steps] == [
        ("build", "silo", "staging"), ("render", "silo", "staging"), ("deploy", "silo", "staging"),
    ]
    build, render, deploy = (s.action for s in steps)
    assert build == Command(("/bin/just", "build-pkg", "silo"), cwd=manifest.root)
    assert isinstance(render, WriteFile) and render.path == config
    assert 'name = "silo-staging"' in render.text
    assert deploy.argv == ("/bin/wrangler", "deploy", "--config", str(config))
    assert deploy.wrangler and deploy.retry_safe


def test_every_service_deploys_after_what_it_binds_to(manifest):
    steps = deploy_plan(manifest, ["dome-api", "silo", "constellation"], "production", TOOLS)
    assert [s.service for s in steps if s.event == "deploy"] == ["silo", "constellation", "dome-api"]
    assert [s.description for s in steps if s.event == "deploy"] == [
        "deploy silo (production)", "deploy constellation (production)", "deploy dome-api (production)",
    ]


def test_no_build_step_without_a_build_command_or_recipe(manifest):
    bare = Tools(wrangler="wrangler")
    assert [s.event for s in deploy_plan(manifest, ["silo"], "dev", bare)] == ["render", "deploy"]
    assert [s.event for s in deploy_plan(manifest, ["silo"], "dev", TOOLS, build=False)] == ["render", "deploy"]


def test_the_manifest_build_command_wins_and_runs_in_the_service_folder(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "sample", ignore=shutil.ignore_patterns(".dome"))
    path = tmp_path / "sample/dome.yaml"
    path.write_text(path.read_text().replace(
        "    path: services/silo\n", "    path: services/silo\n    build: npm run build -- --minify\n", 1))
    manifest = load(path)
    build = deploy_plan(manifest, ["silo"], "dev", TOOLS)[0]
    assert build.action == Command(("npm", "run", "build", "--", "--minify"),
                                   cwd=tmp_path / "sample/services/silo")


def test_migrations_only_for_services_with_d1_and_always_remote(manifest):
    steps = migrate_plan(manifest, "production", TOOLS)
    assert [(s.event, s.service) for s in steps] == [("render", "silo"), ("migrate", "silo")]
    config = manifest.root / ".dome/build/production/silo/wrangler.toml"
    assert steps[1].action.argv == (
        "/bin/wrangler", "d1", "migrations", "apply", "silo-db", "--config", str(config), "--remote",
    )


def test_all_services_reads_empty_and_all_as_every_service(manifest):
    assert all_services(manifest, "") == all_services(manifest, "all") == ["silo", "constellation", "dome-api"]
    assert all_services(manifest, "dome-api") == ["dome-api"]
    with pytest.raises(UsageError, match="did you mean 'dome-api'"):
        all_services(manifest, "dome_api")


def test_planning_writes_nothing(manifest):
    build = Path(manifest.root) / ".dome/build/development"
    before = sorted(build.rglob("*")) if build.exists() else []
    deploy_plan(manifest, ["silo", "dome-api"], "development", TOOLS)
    assert (sorted(build.rglob("*")) if build.exists() else []) == before
