"""Every sample service x remote environment renders to a config the real wrangler accepts,
and the bindings wrangler lists are exactly the manifest's."""

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

from dome_tasks.manifest import load
from dome_tasks.model import WorkerConfig
from dome_tasks.render import config_path, render_config, write_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"
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


def dry_run(config: WorkerConfig, path: Path, tmp: Path) -> DryRun:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "WRANGLER_SEND_METRICS": "false",
        "WRANGLER_HIDE_BANNER": "true",  # also skips wrangler's update check (network)
        "npm_config_registry": "http://127.0.0.1:9/",  # ... and if not, it fails locally
        "NO_COLOR": "1",
        "CI": "1",
    }
    outdir = tmp / "out" / config.environment / config.service
    proc = subprocess.run(
        [str(WRANGLER), "deploy", "--dry-run", "--outdir", str(outdir), "--config", str(path)],
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
