"""`invoke import` on the shapes real monorepos have (tests/adopt/fixtures/shapes): a top level
that is the development worker, env blocks with names of their own, logs-only observability,
a placeholder var for a secret, keys wrangler ignores ([dev.vars], `command` in an env block)
or still reads though deprecated (containers[].instances), an assets-only site and a stub
without `main`, a worker with no block for some environments, and a `Justfile`."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from dome_tasks.manifest.loader import load
from tests.adopt.adopt_helpers import copy_fixture, invoke, rendered_equals_intent
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    project = copy_fixture("shapes", tmp_path_factory.mktemp("shapes") / "shapes")
    done = invoke(project, "import")
    assert done.returncode == 0, done.stdout + done.stderr
    rendering = invoke(project, "render")
    assert rendering.returncode == 0, rendering.stdout + rendering.stderr
    return project, done.stdout + done.stderr


def rendered(project: Path, env: str, service: str) -> dict:
    path = project / ".dome" / "build" / env / service / "wrangler.toml"
    return tomllib.loads(path.read_text(encoding="utf-8"))


def test_every_pair_adopts_true_and_the_manifest_loads(imported: tuple[Path, str]) -> None:
    project, out = imported
    assert "10 of 10 configs adopt true, judged by wrangler" in out
    manifest = load(project / "dome.yaml")
    assert rendered_equals_intent(project) == 10  # the same verdict from `invoke render`'s files
    assert manifest.services_in("production") == ("site", "api", "auth", "box", "reference-test")
    assert manifest.services_in("development") == ("auth",)


def test_the_development_top_level_stays_development(imported: tuple[Path, str]) -> None:
    project, _ = imported
    manifest = load(project / "dome.yaml")
    names = {e: manifest.resolve("auth", e).name for e in ("development", "staging", "production")}
    assert names == {"development": "auth-dev", "staging": "auth-staging",
                     "production": "auth-production"}
    assert dict(manifest.resolve("auth", "local").vars)["ISSUER"] == "https://auth-dev.example.com"
    # api's production binding keeps naming auth's production worker
    assert rendered(project, "production", "api")["services"] == [
        {"binding": "AUTH", "service": "auth-production"}]


def test_nothing_is_invented(imported: tuple[Path, str]) -> None:
    project, out = imported
    api = rendered(project, "staging", "api")
    assert "CLIENT_SECRET" not in api["vars"]  # a placeholder for a secret: not carried
    assert api["observability"] == {"logs": {"enabled": True}}  # no `enabled = false` added
    assert "enabled" not in rendered(project, "production", "api")["observability"]
    assert not (project / ".dome" / "build" / "staging" / "reference-test").exists()
    assert "no [env.*] block for staging: not deployed there" in out
    assert "main" not in rendered(project, "production", "site")  # assets only, as wrangler allows


def test_keys_wrangler_ignores_are_dropped_with_a_line_deprecated_ones_kept(
    imported: tuple[Path, str],
) -> None:
    project, out = imported
    assert "workers/api/wrangler.toml: dev.vars is dropped: wrangler ignores it" in out
    assert "workers/api/wrangler.toml [env.staging]: command is dropped: wrangler ignores it" in out
    (box,) = rendered(project, "staging", "box")["containers"]
    assert box["instances"] == 1 and box["name"] == "box-box-staging"  # the application's name
    assert 'containers[0].instances: deprecated by wrangler (use "max_instances")' in out
    # wrangler's own [secrets] table: declared where the config declares it, never carried
    assert rendered(project, "production", "box")["secrets"] == {"required": ["BOX_TOKEN"]}
    assert "secrets" not in rendered(project, "staging", "box")
    assert load(project / "dome.yaml").resolve("box", "production").secrets == ("BOX_TOKEN",)


def test_just_sync_writes_the_justfile_just_picks(imported: tuple[Path, str]) -> None:
    project, _ = imported
    (project / "tasks" / "__init__.py").write_text(  # the README's tasks module, as written
        'from dome_tasks import namespace\nns = namespace(manifest="dome.yaml", '
        'justfile="justfile")\n', encoding="utf-8")
    done = invoke(project, "just.sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in project.iterdir() if p.name.lower() == "justfile") == ["Justfile"]
    listed = subprocess.run([str(VENV_BIN / "just"), "--list"], cwd=project, env=run_env(),
                            capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "dev" in listed.stdout and "deploy-env" in listed.stdout
