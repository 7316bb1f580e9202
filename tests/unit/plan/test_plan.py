"""The pure planner: what a deploy or a migration would run, step by step (no I/O)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dome_tasks.cli.common import request_for
from dome_tasks.errors import UsageError
from dome_tasks.manifest.loader import load
from dome_tasks.plan.deploy import deploy_plan, migrate_plan
from dome_tasks.plan.steps import Command, WriteFile
from dome_tasks.plan.target import resolve
from dome_tasks.tools import Tools
from tests.helpers import SAMPLE

TOOLS = Tools(wrangler="/bin/wrangler", just="/bin/just", just_recipes=frozenset({"build-pkg"}))


def req(manifest, services, environment):
    return resolve(manifest, services, environment, wrangler=TOOLS.wrangler)


@pytest.fixture(scope="module")
def manifest():
    return load(SAMPLE / "dome.yaml")


def test_one_service_builds_renders_then_deploys_its_rendered_config(manifest):
    steps = deploy_plan(req(manifest, ["silo"], "stg"), TOOLS)
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
    steps = deploy_plan(req(manifest, ["dome-api", "silo", "constellation"], "production"), TOOLS)
    assert [s.service for s in steps if s.event == "deploy"] == ["silo", "constellation", "dome-api"]
    assert [s.description for s in steps if s.event == "deploy"] == [
        "deploy silo (production)", "deploy constellation (production)", "deploy dome-api (production)",
    ]


def test_no_build_step_without_a_build_command_or_recipe(manifest):
    bare = Tools(wrangler="wrangler")
    assert [s.event for s in deploy_plan(req(manifest, ["silo"], "dev"), bare)] == ["render", "deploy"]
    assert [s.event for s in deploy_plan(req(manifest, ["silo"], "dev"), TOOLS, build=False)] == ["render", "deploy"]


def test_the_manifest_build_command_wins_and_runs_in_the_service_folder(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "sample", ignore=shutil.ignore_patterns(".dome"))
    path = tmp_path / "sample/dome.yaml"
    path.write_text(path.read_text().replace(
        "    path: services/silo\n", "    path: services/silo\n    build: npm run build -- --minify\n", 1))
    manifest = load(path)
    build = deploy_plan(req(manifest, ["silo"], "dev"), TOOLS)[0]
    assert build.action == Command(("npm", "run", "build", "--", "--minify"),
                                   cwd=tmp_path / "sample/services/silo")


def test_migrations_only_for_services_with_d1_and_always_remote(manifest):
    steps = migrate_plan(req(manifest, None, "production"))
    assert [(s.event, s.service) for s in steps] == [("render", "silo"), ("migrate", "silo")]
    config = manifest.root / ".dome/build/production/silo/wrangler.toml"
    assert steps[1].action.argv == (
        "/bin/wrangler", "d1", "migrations", "apply", "silo-db", "--config", str(config), "--remote",
    )


def test_the_task_words_empty_and_all_mean_every_service(manifest):
    def services(word):
        return request_for(manifest, word, "stg", wrangler="wrangler").services

    assert services("") == services("all") == ["silo", "constellation", "dome-api"]
    assert services("dome-api") == ["dome-api"]
    with pytest.raises(UsageError, match="did you mean 'dome-api'"):
        services("dome_api")


def test_a_request_resolves_each_service_once_with_its_worker_and_rendered_config(manifest):
    request = req(manifest, ["dome-api"], "stg")
    assert request.environment.name == "staging" and request.services == ["dome-api"]
    (target,) = request.targets
    assert target.worker == "dome-api-staging" and target.environment == "staging"
    assert target.path == manifest.root / ".dome/build/staging/dome-api/wrangler.toml"
    assert 'name = "dome-api-staging"' in target.text and target.wrangler == ("/bin/wrangler",)
    assert request.waves == [["dome-api"]]


def test_a_lifecycle_request_refuses_the_local_environment(manifest):
    with pytest.raises(UsageError, match="local runs under `wrangler dev`: canaries need a remote"):
        resolve(manifest, ["silo"], "local", remote_only="canaries")


def test_planning_writes_nothing(manifest):
    build = Path(manifest.root) / ".dome/build/development"
    before = sorted(build.rglob("*")) if build.exists() else []
    deploy_plan(req(manifest, ["silo", "dome-api"], "development"), TOOLS)
    assert (sorted(build.rglob("*")) if build.exists() else []) == before
