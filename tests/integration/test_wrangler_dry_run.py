"""Every sample service x remote environment renders to a config the real wrangler accepts,
and the bindings wrangler lists are exactly the manifest's; so does a manifest using wrangler
keys dome does not model; and both ends of the supported wrangler range accept them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from dome_tasks.manifest.loader import load
from dome_tasks.manifest.model import WorkerConfig
from dome_tasks.render.config import config_path, render_all, render_config, write_config
from dome_tasks.wrangler.env import hermetic_env

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
#: The oldest wrangler dome-tasks supports (scripts/setup installs it).
OLDEST = REPO / "tests" / "fixtures" / "wrangler-oldest" / "node_modules" / ".bin" / "wrangler"
MANIFEST = REPO / "sample" / "dome.yaml"
SERVICES = ("silo", "constellation", "dome-api")
ENVIRONMENTS = ("development", "staging", "production")

# "env.NAME (detail)   Kind" rows under "Your Worker has access to the following bindings:".
ROW = re.compile(r"^env\.(?P<name>\S+)(?: \((?P<detail>.*?)\))?\s{2,}(?P<kind>\S.*?)\s*$")


@dataclass(frozen=True)
class DryRun:
    config: WorkerConfig
    path: Path
    returncode: int
    output: str


def expected_bindings(config: WorkerConfig) -> set[tuple[str, str | None, str]]:
    """(binding, detail, kind) as wrangler 4.86 prints them, from the resolved manifest."""
    rows: set[tuple[str, str | None, str]] = set()
    rows |= {(s.binding, s.worker, "Worker") for s in config.services}
    rows |= {(d.binding, d.database_name, "D1 Database") for d in config.d1_databases}
    rows |= {(r.binding, r.bucket_name, "R2 Bucket") for r in config.r2_buckets}
    rows |= {(k.binding, k.id, "KV Namespace") for k in config.kv_namespaces}
    rows |= {(v.binding, v.index_name, "Vectorize Index") for v in config.vectorize}
    rows |= {(q.binding, q.queue, "Queue") for q in config.queue_producers}
    rows |= {(name, json.dumps(value), "Environment Variable") for name, value in config.vars}
    if config.ai_binding:
        rows.add((config.ai_binding, None, "AI"))
    return rows


def listed_bindings(output: str) -> set[tuple[str, str | None, str]]:
    lines = output.splitlines()
    start = lines.index("Your Worker has access to the following bindings:") + 2  # skip header row
    rows = set()
    for line in lines[start:]:
        if not line.strip():
            break
        match = ROW.match(line)
        assert match, f"unexpected bindings row: {line!r}"
        rows.add((match["name"], match["detail"], match["kind"]))
    return rows


def dry_run(config: WorkerConfig, path: Path, tmp: Path, wrangler: Path = WRANGLER) -> DryRun:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "WRANGLER_HIDE_BANNER": "true",
        "npm_config_registry": "http://127.0.0.1:9/",
    }
    # the runtime's own environment: no telemetry, an update check that never leaves the machine
    env = hermetic_env(base, state_dir=tmp / "state", environment=config.environment)
    outdir = tmp / "out" / wrangler.parent.parent.parent.name / config.environment / config.service
    proc = subprocess.run(
        [str(wrangler), "deploy", "--dry-run", "--outdir", str(outdir), "--config", str(path)],
        cwd=tmp,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return DryRun(config, path, proc.returncode, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], DryRun]:
    if not WRANGLER.exists():
        pytest.fail(f"{WRANGLER} is missing: run `npm ci` (scripts/setup does)")
    tmp = tmp_path_factory.mktemp("wrangler")
    manifest = load(MANIFEST)
    jobs = []
    for environment in ENVIRONMENTS:
        for service in SERVICES:
            config = manifest.resolve(service, environment)
            # The layout render_all uses, rooted in tmp so the checkout is left alone.
            path = config_path(tmp, config.environment, config.service)
            write_config(render_config(config, manifest_path=manifest.path, out_path=path), path)
            jobs.append((config, path))
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda job: dry_run(*job, tmp), jobs))
    return {(run.config.service, run.config.environment): run for run in runs}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("service", SERVICES)
def test_wrangler_accepts_the_rendered_config(
    dry_runs: dict[tuple[str, str], DryRun], service: str, environment: str
) -> None:
    run = dry_runs[service, environment]
    assert run.returncode == 0, run.output
    assert "--dry-run: exiting now." in run.output
    assert "WARNING" not in run.output, run.output  # no unknown or misplaced fields
    assert listed_bindings(run.output) == expected_bindings(run.config), run.output


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_bindings_point_at_the_same_environment(
    dry_runs: dict[tuple[str, str], DryRun], environment: str
) -> None:
    suffix = {"development": "-dev", "staging": "-staging", "production": ""}[environment]
    api = listed_bindings(dry_runs["dome-api", environment].output)
    assert ("SILO", f"silo{suffix}", "Worker") in api
    assert ("CONSTELLATION", f"constellation{suffix}", "Worker") in api
    # Queue consumers are triggers, not bindings: wrangler accepted them; check the file.
    doc = tomllib.loads(dry_runs["constellation", environment].path.read_text())
    assert doc["queues"]["consumers"][0]["queue"] == f"silo-events{suffix}"
    silo = listed_bindings(dry_runs["silo", environment].output)
    assert ("EVENTS", f"silo-events{suffix}", "Queue") in silo


# -- wrangler keys dome does not model -----------------------------------------------------------

KEYS_MANIFEST = """\
version: 1
defaults:
  compatibility_date: "2025-01-01"
  main: src/index.js
  account_id: "0123456789abcdef0123456789abcdef"
  observability: {enabled: true, head_sampling_rate: 0.25}
  workers_dev: false
environments:
  staging: {suffix: "-staging"}
  production: {suffix: "", protected: true}
services:
  api:
    triggers: {crons: ["*/5 * * * *"]}
    assets: {directory: public, binding: ASSETS, not_found_handling: 404-page}
    dev: {port: 8999, local_protocol: http}
    limits: {cpu_ms: 50}
    placement: {mode: smart}
    miniflare: {kv_persist: true}
    hyperdrive: {PG: {id: "0123456789abcdef0123456789abcdef", shared: true}}
    kv_namespaces: {CACHE: {title: api-cache, id: "00000000000000000000000000000ca1"}}
    d1_databases:  # wrangler before 4.4x needs the id; newer ones would look it up by name
      DB: {database_name: api-db, database_id: "00000000-0000-4000-8000-0000000000a1"}
    queues:
      producers: {JOBS: {queue: jobs}}
      consumers:
        - {queue: jobs, max_batch_size: 10, max_batch_timeout: 5, max_retries: 3,
           max_concurrency: 2, retry_delay: 5, dead_letter_queue: jobs-dlq}
    services: {WORKER: {service: worker, environment: production}}
    environments:
      staging:
        workers_dev: null
        kv_namespaces: {CACHE: {id: "00000000000000000000000000000ca2"}}
        d1_databases: {DB: {database_id: "00000000-0000-4000-8000-0000000000a2"}}
  worker: {}
"""


@pytest.fixture(scope="module")
def keys_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    for service in ("api", "worker"):
        (root / "services" / service / "src").mkdir(parents=True)
        (root / "services" / service / "src/index.js").write_text(
            "export default {\n  fetch() { return new Response('ok'); },\n"
            "  scheduled() {},\n  queue() {},\n};\n"
        )
    (root / "services/api/public").mkdir()
    (root / "services/api/public/index.html").write_text("<h1>api</h1>\n")
    (root / "services/api/migrations").mkdir()
    (root / "services/api/migrations/0001_init.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    (root / "dome.yaml").write_text(KEYS_MANIFEST)
    return root


@pytest.mark.parametrize("wrangler", [WRANGLER, OLDEST], ids=["pinned", "oldest"])
@pytest.mark.parametrize("environment", ["staging", "production"])
def test_wrangler_keys_dome_does_not_model_pass_the_real_wrangler(
    keys_workspace: Path, environment: str, wrangler: Path, tmp_path: Path
) -> None:
    if not wrangler.exists():
        pytest.fail(f"{wrangler} is missing: run scripts/setup")
    manifest = load(keys_workspace / "dome.yaml")
    [path] = render_all(manifest, ["api"], [environment])
    config = manifest.resolve("api", environment)
    run = dry_run(config, path, tmp_path, wrangler)
    assert run.returncode == 0, run.output
    assert "--dry-run: exiting now." in run.output
    assert "WARNING" not in run.output, run.output  # nothing unknown, misplaced or ignored
    rows = listed_bindings(run.output)
    suffix = "-staging" if environment == "staging" else ""
    assert ("DB", f"api-db{suffix}", "D1 Database") in rows
    assert ("JOBS", f"jobs{suffix}", "Queue") in rows
    assert ("WORKER", f"worker{suffix}", "Worker") in rows
    assert ("PG", "0123456789abcdef0123456789abcdef", "Hyperdrive Config") in rows
    kv = "00000000000000000000000000000ca2" if suffix else "00000000000000000000000000000ca1"
    assert ("CACHE", kv, "KV Namespace") in rows
    doc = tomllib.loads(path.read_text())
    assert doc["triggers"] == {"crons": ["*/5 * * * *"]}
    assert doc["queues"]["consumers"][0]["max_concurrency"] == 2
    assert doc["observability"] == {"enabled": True, "head_sampling_rate": 0.25}
    assert doc["d1_databases"][0]["migrations_dir"].endswith("services/api/migrations")
    assert ("workers_dev" in doc) is (environment == "production")
    assert "miniflare" not in doc


# -- both ends of the supported range, and each service's own wrangler ------------------------------


def test_the_oldest_supported_wrangler_accepts_the_sample(tmp_path: Path) -> None:
    from dome_tasks.tools import supported, wrangler_version

    if not OLDEST.exists():
        pytest.fail(f"{OLDEST} is missing: run scripts/setup")
    assert supported(wrangler_version([str(OLDEST)]))
    assert supported(wrangler_version([str(WRANGLER)]))
    manifest = load(MANIFEST)
    for service in SERVICES:
        config = manifest.resolve(service, "staging")
        path = config_path(tmp_path, "staging", service)
        write_config(render_config(config, manifest_path=manifest.path, out_path=path), path)
        run = dry_run(config, path, tmp_path, OLDEST)
        assert run.returncode == 0, run.output
        assert "WARNING" not in run.output, run.output
        assert listed_bindings(run.output) == expected_bindings(config), run.output


def test_each_service_runs_the_wrangler_its_workspace_pins(tmp_path: Path) -> None:
    """silo's own package pins the oldest wrangler; the others use the repository's."""
    import shutil

    from dome_tasks.cli.doctor import run_checks
    from dome_tasks.plan.deploy import deploy_plan
    from dome_tasks.plan.target import resolve
    from dome_tasks.tools import Tools

    if not OLDEST.exists():
        pytest.fail(f"{OLDEST} is missing: run scripts/setup")
    workspace = tmp_path / "ws"
    shutil.copytree(REPO / "sample", workspace, ignore=shutil.ignore_patterns(".dome", ".wrangler"))
    (workspace / "node_modules").symlink_to(REPO / "node_modules", target_is_directory=True)
    (workspace / "services/silo/node_modules").symlink_to(
        OLDEST.parent.parent, target_is_directory=True
    )
    manifest = load(workspace / "dome.yaml")
    own = (str(workspace / "services/silo/node_modules/.bin/wrangler"),)
    assert manifest.resolve("silo", "staging").wrangler == own
    assert manifest.resolve("dome-api", "staging").wrangler is None
    tools = Tools(wrangler=str(workspace / "node_modules/.bin/wrangler"))
    request = resolve(manifest, ["silo", "dome-api"], "staging", wrangler=tools.wrangler)
    deploys = [s.action.argv for s in deploy_plan(request, tools) if s.event == "deploy"]
    assert [argv[0] for argv in deploys] == [own[0], tools.wrangler]

    checks = [c for c in run_checks(workspace / "dome.yaml") if c.name == "wrangler"]
    details = [c.detail for c in checks if c.ok]
    assert f"silo: 4.20.0 ({own[0]})" in details
    pinned = json.loads((REPO / "node_modules/wrangler/package.json").read_text())["version"]
    assert any(d.startswith(f"constellation, dome-api: {pinned} (") for d in details), details
