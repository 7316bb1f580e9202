"""`invoke diff SERVICE ENV`: the rendered config against what the emulator serves after a real
deploy (then a var changes), or against a hand-kept wrangler config; exit 0 / 1 like diff."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dome_tasks.adopt.diff import config_view
from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import Tripwire, guard_env, violations
from tests.adopt.adopt_helpers import ACCOUNT, copy_fixture, invoke
from tests.adopt.test_provision import STAGING_DB, STAGING_KV
from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """One strict emulator for this module's deployment."""
    with Emulator(account_id=ACCOUNT, auto_create=False) as emu:
        yield emu


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tripwire = Tripwire()
    folder = tmp_path_factory.mktemp("netguard")
    yield guard_env(folder, tripwire=tripwire)
    tripwire.close()
    assert violations(folder) == [] and tripwire.hits == [], "something left 127.0.0.1"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, emulator: Emulator,
             guard: dict[str, str]) -> Path:
    """The small monorepo imported, staging provisioned, silo deployed to staging (once)."""
    project = copy_fixture("redeclared", tmp_path_factory.mktemp("diff") / "redeclared")
    emulator.state.add_d1("silo-db-staging", STAGING_DB)
    emulator.state.add_kv("silo-cache-staging", STAGING_KV)
    emulator.state.add_vectorize("api-index", 32, "cosine")
    for args in (("import",), ("provision", "staging"),
                 ("deploy-env", "silo", "staging", "--no-verify")):
        done = invoke(project, *args, emulator=emulator, guard=guard)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return project


@pytest.fixture
def manifest(deployed: Path) -> Iterator[Path]:
    """dome.yaml of the deployed monorepo, restored after the test."""
    path = deployed / "dome.yaml"
    text = path.read_text(encoding="utf-8")
    yield path
    path.write_text(text, encoding="utf-8")


def test_no_changes_right_after_a_deploy_then_a_changed_var_shows(
    deployed, manifest, emulator, guard,
) -> None:
    same = invoke(deployed, "diff", "silo", "staging", emulator=emulator, guard=guard)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "silo-staging: no changes (live: silo-staging matches the rendered config)" in same.stdout
    data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    data["services"]["silo"]["environments"]["staging"]["vars"] = {"LOG_LEVEL": "verbose"}
    manifest.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    changed = invoke(deployed, "diff", "silo", "stg", emulator=emulator, guard=guard)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    lines = changed.stdout.splitlines()
    assert lines[0] == "--- live: silo-staging"
    assert lines[1] == "+++ rendered: .dome/build/staging/silo/wrangler.toml"
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        '-var LOG_LEVEL = "info"', '+var LOG_LEVEL = "verbose"']
    assert f" binding DB: d1 {STAGING_DB}" in lines  # unchanged lines are context


def test_a_worker_not_deployed_yet_is_all_additions(deployed, emulator, guard) -> None:
    done = invoke(deployed, "diff", "api", "staging", emulator=emulator, guard=guard)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "--- live: api-staging (not deployed)"
    assert "+binding SILO: service silo-staging" in lines
    assert "+binding INDEX: vectorize api-index-staging" in lines
    assert all(line[:1] in "+@" for line in lines[2:])


def test_against_a_hand_kept_config_shows_what_adopting_changes(deployed) -> None:
    done = invoke(deployed, "diff", "silo", "staging", "--against", "services/silo/wrangler.toml")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "--- services/silo/wrangler.toml [env.staging]"
    # wrangler would deploy the staging block without these; the manifest gives them
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        "+binding BUCKET: r2 silo-objects-staging",
        "+binding JOBS: queue silo-jobs-staging",
        '+var LOG_LEVEL = "info"',
    ]
    wrong = invoke(deployed, "diff", "silo", "staging", "--against", "services/silo/wrangler.toml",
                   "--against-env", "stage")
    assert wrong.returncode == 2
    assert "the config has no [env.stage] block" in wrong.stderr
    assert "its env blocks: dev, staging" in wrong.stderr


def test_without_credentials_it_says_how_to_get_them(deployed, tmp_path) -> None:
    env = {k: v for k, v in run_env().items() if not k.startswith("CLOUDFLARE_")}
    env.update(HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    done = subprocess.run([str(VENV_BIN / "invoke"), "diff", "silo", "staging"], cwd=deployed,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert "no Cloudflare credentials" in done.stderr and "CLOUDFLARE_API_TOKEN" in done.stderr


def test_the_view_lists_triggers_and_bindings_one_per_line() -> None:
    view = config_view({
        "name": "cron-staging", "compatibility_date": "2025-01-01",
        "routes": [{"pattern": "a.example.com/*", "zone_name": "example.com"},
                   {"pattern": "b.example.com", "custom_domain": True}],
        "triggers": {"crons": ["0 3 * * *"]},
        "observability": {"enabled": True, "head_sampling_rate": 0.5},
        "vars": {"N": 2, "S": "x"},
        "durable_objects": {"bindings": [{"name": "C", "class_name": "Counter",
                                          "script_name": "other"}]},
    }, "x")
    assert view.lines == [
        "name: cron-staging", "compatibility_date: 2025-01-01", "compatibility_flags: (none)",
        "workers_dev: disabled", "observability: enabled, head_sampling_rate 0.5",
        "binding C: durable object Counter (in other)", "var N = 2", 'var S = "x"',
        "custom domain b.example.com", "route a.example.com/*", "cron 0 3 * * *",
    ]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator and a network guard of this test alone."""
    tripwire = Tripwire()
    with Emulator(account_id=ACCOUNT, auto_create=False) as emu:
        emu.state.triggers.add_zone("example.com")
        yield emu, guard_env(tmp_path / "netguard", tripwire=tripwire)
    tripwire.close()
    assert violations(tmp_path / "netguard") == [] and tripwire.hits == []


def test_routes_and_crons_are_read_back_from_the_account(corpus, fresh) -> None:
    emulator, guard = fresh
    emulator.state.add_d1("silo-db-staging", STAGING_DB)
    emulator.state.add_vectorize("constellation-index", 768, "cosine")
    for args in (("import",), ("provision", "staging"),
                 ("deploy-env", "constellation", "staging", "--no-verify"),
                 ("deploy-env", "dome-api", "staging", "--no-verify")):
        done = invoke(corpus, *args, emulator=emulator, guard=guard)
        assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    for service in ("constellation", "dome-api"):
        same = invoke(corpus, "diff", service, "staging", emulator=emulator, guard=guard)
        assert same.returncode == 0, same.stdout + same.stderr
    manifest = corpus / "dome.yaml"
    manifest.write_text(manifest.read_text().replace("'*/15 * * * *'", "'*/5 * * * *'")
                        .replace("api-staging.example.com/*", "api-stg.example.com/*"),
                        encoding="utf-8")
    changed = invoke(corpus, "diff", "constellation", "staging", emulator=emulator, guard=guard)
    assert changed.returncode == 1
    assert [line for line in changed.stdout.splitlines()[2:] if line[:1] in "+-"] == [
        "-cron */15 * * * *", "+cron */5 * * * *"]
    api = invoke(corpus, "diff", "dome-api", "staging", emulator=emulator, guard=guard)
    assert [line for line in api.stdout.splitlines()[2:] if line[:1] in "+-"] == [
        "-route api-staging.example.com/*", "+route api-stg.example.com/*"]
