"""The emulator serves every call that the pinned and the oldest supported wrangler make.

One worker with D1, KV, R2, a queue and a cron goes through the commands dome-tasks and its
users run: deploy (new, then existing), secrets (put, bulk, list, delete, and the versions
ones), versions upload, deployments, rollback, D1 migrations and execute, KV, R2, queues,
resource creation and delete. Each must exit 0, and the emulator must have routed every call
(the autouse check in tests/conftest.py also fails any other test that meets an unserved call).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dome_tasks.testing.emulator import Emulator
from dome_tasks.wrangler.env import hermetic_env

REPO = Path(__file__).resolve().parents[2]
WRANGLERS = {
    "pinned": REPO / "node_modules" / ".bin" / "wrangler",
    "oldest": REPO / "tests" / "fixtures" / "wrangler-oldest" / "node_modules" / ".bin" / "wrangler",
}

CONFIG = """\
name = "probe"
main = "index.js"
compatibility_date = "2025-01-01"
workers_dev = true
[[d1_databases]]
binding = "DB"
database_name = "probe-db"
database_id = "11111111-2222-3333-4444-555555555555"
migrations_dir = "migrations"
[[kv_namespaces]]
binding = "KV"
id = "{kv}"
[[r2_buckets]]
binding = "FILES"
bucket_name = "probe-files"
[[queues.producers]]
binding = "EVENTS"
queue = "probe-events"
[[queues.consumers]]
queue = "probe-events"
[triggers]
crons = ["*/5 * * * *"]
"""

#: (argv after `wrangler`, stdin)
COMMANDS: list[tuple[list[str], str]] = [
    (["deploy"], ""),
    (["deploy"], ""),
    (["secret", "put", "ONE"], "first\n"),
    (["secret", "bulk", "secrets.json"], ""),
    (["secret", "list"], ""),
    (["secret", "delete", "ONE"], ""),
    (["versions", "upload"], ""),
    (["versions", "list", "--json"], ""),
    (["deployments", "list", "--json"], ""),
    (["versions", "secret", "put", "LATER"], "later\n"),
    (["rollback", "--message", "back", "-y"], ""),
    (["d1", "migrations", "apply", "probe-db", "--remote"], ""),
    (["d1", "execute", "probe-db", "--remote", "--command", "SELECT 1"], ""),
    (["kv", "key", "put", "--binding", "KV", "k", "v", "--remote"], ""),
    (["kv", "key", "get", "--binding", "KV", "k", "--remote"], ""),
    (["r2", "object", "put", "probe-files/a/b.json", "--file", "secrets.json", "--remote"], ""),
    (["queues", "list"], ""),
    (["d1", "create", "probe-new-db"], ""),
    (["kv", "namespace", "create", "PROBE_NEW"], ""),
    (["r2", "bucket", "create", "probe-new-bucket"], ""),
    (["queues", "create", "probe-new-queue"], ""),
    (["d1", "execute", "probe-db", "--remote", "--file", "seed.sql", "-y"], ""),
    (["secret", "bulk"], '{"FROM_STDIN": "piped"}'),
    (["d1", "delete", "probe-new-db", "-y"], ""),
    (["r2", "bucket", "delete", "probe-new-bucket"], ""),
    (["queues", "delete", "probe-new-queue"], ""),
    (["vectorize", "create", "probe-index", "--dimensions", "3", "--metric", "cosine"], ""),
    (["vectorize", "delete", "probe-index", "--force"], ""),
    (["kv", "namespace", "delete", "--namespace-id", "{kv}"], ""),
    (["delete", "--force"], ""),
]


@pytest.mark.integration
@pytest.mark.parametrize("which", sorted(WRANGLERS))
def test_every_call_of_the_supported_wranglers_is_served(which: str, tmp_path: Path) -> None:
    wrangler = WRANGLERS[which]
    assert wrangler.exists(), f"{which} wrangler missing: run scripts/setup"
    project = tmp_path / "probe"
    (project / "migrations").mkdir(parents=True)
    (project / "index.js").write_text(
        "export default { fetch() { return new Response('ok'); }, queue() {}, scheduled() {} };\n")
    (project / "migrations" / "0001_init.sql").write_text("CREATE TABLE t (id INTEGER);\n")
    (project / "secrets.json").write_text(json.dumps({"TWO": "second", "THREE": "third"}))
    (project / "seed.sql").write_text("INSERT INTO t VALUES (7);\n")
    with Emulator() as emulator:
        kv = emulator.state.add_kv("probe-kv")
        emulator.state.add_bucket("probe-files")
        (project / "wrangler.toml").write_text(CONFIG.format(kv=kv.id))
        env = hermetic_env(os.environ, state_dir=tmp_path / "state", api_base_url=emulator.url,
                           api_token=emulator.token, account_id=emulator.account_id,
                           isolate_config=True)
        for args, stdin in COMMANDS:
            args = [arg.format(kv=kv.id) for arg in args]
            done = subprocess.run([str(wrangler), *args], cwd=project, env=env, input=stdin,
                                  capture_output=True, text=True, timeout=120, check=False)
            assert done.returncode == 0, f"wrangler {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        assert emulator.unrouted == []
        state = emulator.state
        assert "probe" not in state.workers  # deleted at the end
        assert kv.entries["k"].value == b"v" and kv.id not in state.kv
        assert json.loads(state.buckets["probe-files"].objects["a/b.json"]) == {
            "TWO": "second", "THREE": "third"}
        assert "probe-files" in state.buckets and "probe-new-bucket" not in state.buckets
        assert "probe-new-queue" not in state.queues and "probe-index" not in state.vectorize
        assert list(state.d1) == ["11111111-2222-3333-4444-555555555555"]
        seeded = state.d1["11111111-2222-3333-4444-555555555555"].rows("SELECT id FROM t")
        assert seeded == [{"id": 7}]
