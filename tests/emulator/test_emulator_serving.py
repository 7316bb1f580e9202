"""Served workers: the emulator runs each deployed worker's current version under workerd.

The real wrangler deploys; requests to the emulator's origin with `Host:
<worker>.emulator.workers.dev` reach the served version; the deploy tasks verify against it
(`INVOKE_DOME_HEALTH_BASE_URL`) and roll back automatically when it is red. Every wrangler process,
the served `wrangler dev`s included, runs under the network guard.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_helpers import WRANGLER, Wrangler

from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.testing.emulator import Emulator
from tests.helpers import ROOT, SAMPLE, VENV_BIN, run_env

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account

HEALTH_JS = """\
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === "/health") {
      return Response.json({ ok: true, release: env.RELEASE, host: new URL(request.url).host });
    }
    if (pathname === "/callee") {
      return new Response(`callee says ${await (await env.CALLEE.fetch("http://x/health")).text()}`);
    }
    return new Response("not found", { status: 404 });
  },
};
"""


@pytest.fixture
def emulator(tmp_path: Path, network_guard: dict[str, str]) -> Iterator[Emulator]:
    """An emulator that serves deployed workers; their wrangler dev runs under the guard."""
    assert WRANGLER.exists(), "the pinned wrangler is not installed: run scripts/setup (npm ci)"
    with Emulator(
        account_id=ACCOUNT,
        serve_workers=True,
        serve_env=network_guard,
        serve_dir=tmp_path / "served",
    ) as emu:
        yield emu


def get(emulator: Emulator, worker: str, path: str = "/health") -> tuple[int, str]:
    """GET through the emulator's origin, as a client reaching `<worker>.emulator.workers.dev`."""
    request = urllib.request.Request(
        emulator.origin + path, headers={"Host": emulator.workers_dev_host(worker)}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def project(tmp_path: Path, name: str, release: str, extra: str = "") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "wrangler.toml").write_text(
        f'name = "{name}"\nmain = "index.js"\ncompatibility_date = "2025-01-01"\n'
        f'workers_dev = true\n{extra}\n[vars]\nRELEASE = "{release}"\n',
        encoding="utf-8",
    )
    (folder / "index.js").write_text(HEALTH_JS, encoding="utf-8")
    return folder


def test_deploys_redeploys_and_rollbacks_are_served(emulator, tmp_path, network_guard):
    wrangler = Wrangler(
        emulator, project(tmp_path, "pinger", "one"), tmp_path / "state", network_guard
    )
    wrangler("deploy")
    first = emulator.state.worker("pinger").current_version()

    status, body = get(emulator, "pinger")
    assert status == 200, body
    assert json.loads(body) == {"ok": True, "release": "one", "host": "pinger.emulator.workers.dev"}
    served = emulator.served_worker("pinger")
    assert served.version_id == first.id
    assert served.url == emulator.worker_url("pinger")
    with urllib.request.urlopen(served.url + "/health", timeout=10) as direct:  # its own workerd
        assert json.loads(direct.read())["release"] == "one"

    project(tmp_path, "pinger", "two")
    wrangler("deploy")
    status, body = get(emulator, "pinger")
    assert (status, json.loads(body)["release"]) == (200, "two")
    assert emulator.served_worker("pinger").version_number == 2
    second = emulator.state.worker("pinger").current_version()

    # A split serves the version with the highest percentage.
    wrangler("versions", "deploy", f"{first.id}@70%", f"{second.id}@30%", "-y")
    assert get(emulator, "pinger")[1].count('"release":"one"') == 1
    wrangler("versions", "deploy", f"{second.id}@100%", "-y")
    assert get(emulator, "pinger")[1].count('"release":"two"') == 1

    wrangler("rollback", first.id, "--message", "back to one", "-y")
    assert emulator.state.traffic("pinger") == {first.id: 100}
    status, body = get(emulator, "pinger")
    assert (status, json.loads(body)["release"]) == (200, "one")
    assert [r.status for r in emulator.worker_requests] == [200] * 5

    assert get(emulator, "nobody")[0] == 404


def test_service_bindings_reach_the_other_served_worker(emulator, tmp_path, network_guard):
    callee = Wrangler(
        emulator, project(tmp_path, "callee", "c1"), tmp_path / "state", network_guard
    )
    callee("deploy")
    binding = '[[services]]\nbinding = "CALLEE"\nservice = "callee"\n'
    caller = Wrangler(
        emulator, project(tmp_path, "caller", "r1", binding), tmp_path / "state", network_guard
    )
    caller("deploy")
    emulator.served_worker("callee")

    status, body = get(emulator, "caller", "/callee")

    assert status == 200, body
    assert body.startswith("callee says ") and '"release":"c1"' in body


def test_vectorize_indexes_through_the_real_wrangler(make_wrangler, emulator):
    wrangler = make_wrangler()
    created = wrangler(
        "vectorize",
        "create",
        "embeddings",
        "--dimensions",
        "32",
        "--metric",
        "euclidean",
        "--description",
        "test index",
    )
    assert "Successfully created a new Vectorize index: 'embeddings'" in created.stdout
    wrangler("vectorize", "create", "docs", "--preset", "@cf/baai/bge-small-en-v1.5")
    assert (
        wrangler(
            "vectorize", "create", "docs", "--dimensions", "3", "--metric", "cosine", check=False
        ).returncode
        != 0
    )

    listed = json.loads(wrangler("vectorize", "list", "--json").stdout)
    assert [(i["name"], i["config"]) for i in listed] == [
        ("embeddings", {"dimensions": 32, "metric": "euclidean"}),
        ("docs", {"dimensions": 384, "metric": "cosine"}),
    ]
    table = wrangler("vectorize", "list").stdout
    assert "embeddings" in table and "test index" in table
    got = json.loads(wrangler("vectorize", "get", "docs", "--json").stdout)
    assert got["config"] == {"dimensions": 384, "metric": "cosine"}
    wrangler("vectorize", "delete", "docs", "--force")
    assert sorted(emulator.state.vectorize) == ["embeddings"]


# --- through the task layer ------------------------------------------------------------------


@pytest.fixture
def workspace_copy(tmp_path: Path) -> Path:
    """The sample workspace (as tests/conftest.py copies it) with the pinned wrangler linked."""
    root = tmp_path / "ws"
    shutil.copytree(SAMPLE, root / "sample", ignore=shutil.ignore_patterns(".dome", ".wrangler"))
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "justfile", root / "justfile")
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    return root


def invoke(
    root: Path, emulator: Emulator, guard: dict[str, str], *args: str, **extra: str
) -> subprocess.CompletedProcess:
    env = run_env(**{**emulator.env(), **guard, "INVOKE_DOME_HEALTH_BASE_URL": emulator.origin, **extra})
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )


def test_deploy_verifies_against_the_served_worker_and_rolls_back_when_red(
    emulator, workspace_copy, network_guard
):
    staging = invoke(workspace_copy, emulator, network_guard, "deploy-env", "silo", "staging")
    assert staging.returncode == 0, staging.stdout + staging.stderr
    assert "verify silo-staging: healthy" in staging.stdout
    assert (
        "GET http://127.0.0.1" in staging.stdout
        and "(Host: silo-staging.emulator.workers.dev)" in staging.stdout
    )

    good = invoke(
        workspace_copy, emulator, network_guard, "deploy-env", "silo", "production", "--yes"
    )
    assert good.returncode == 0, good.stdout + good.stderr
    verified = emulator.state.worker("silo").current_version()  # the last version verified
    # production refuses a deploy over a live worker that lacks a declared secret: set it (a new
    # version of the same code, recorded as a `secret` record naming it: rollback returns to it)
    key = "not-a-real-key-0123456789"
    synced = invoke(workspace_copy, emulator, network_guard, "secrets-sync", "production",
                    "--from-env", "--yes", SILO_API_KEY=key)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    healthy = emulator.state.worker("silo").current_version()
    assert healthy.id != verified.id and "SILO_API_KEY" in healthy.secrets
    assert "SILO_API_KEY" not in verified.secrets

    source = workspace_copy / "sample/services/silo/src/index.js"
    text = source.read_text()
    red = "return json({ ok: true, service: env.SERVICE_NAME });"
    assert red in text
    source.write_text(
        text.replace(red, "return json({ ok: false, service: env.SERVICE_NAME }, 500);")
    )
    bad = invoke(
        workspace_copy,
        emulator,
        network_guard,
        "deploy-env",
        "silo",
        "production",
        "--yes",
        # long enough for a restart of the served worker on a loaded machine (the red version
        # must answer its 500, the rolled-back one its 200); a red answer only costs the wait
        INVOKE_DOME_VERIFY_DEADLINE="20",
    )

    output = bad.stdout + bad.stderr
    assert bad.returncode != 0, output
    assert "verify silo: UNHEALTHY" in output and "-> 500" in output
    assert "rolling back silo automatically" in output
    worker = emulator.state.worker("silo")
    assert [v.number for v in worker.versions] == [1, 2, 3]  # deploy, secret, the red deploy
    # the rollback returns to the version with the secret, not to the one verified before it
    assert emulator.state.traffic("silo") == {healthy.id: 100}
    assert emulator.served_worker("silo").version_id == healthy.id
    assert worker.current_version().secrets == {"SILO_API_KEY": key}
    records = Ledger(workspace_copy / "sample/.dome/ledger.jsonl").read().records
    records = [r for r in records if r.kind != "migrate"]  # each deploy-env migrates D1 first
    assert [(r.kind, r.environment, r.outcome) for r in records] == [
        ("deploy", "staging", "success"),
        ("deploy", "production", "success"),
        ("secret", "production", "success"),
        ("deploy", "production", "unhealthy"),
        ("rollback", "production", "success"),
    ], output
    secret = records[2]
    assert (secret.version_id, secret.from_version) == (healthy.id, verified.id)
    assert secret.extra["secrets"] == ["SILO_API_KEY"]
    assert records[-1].verified is True and records[-1].to_version == healthy.id
    shown = invoke(workspace_copy, emulator, network_guard, "history", "silo", "production",
                   "--json")
    assert shown.returncode == 0 and healthy.id in shown.stdout and "SILO_API_KEY" in shown.stdout
    for text in (shown.stdout, shown.stderr, synced.stdout, synced.stderr, output,
                 (workspace_copy / "sample/.dome/ledger.jsonl").read_text()):
        assert key not in text
