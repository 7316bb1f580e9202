"""The real wrangler 4.86.0 deploys to the emulator: both deploy paths, --env, bindings."""

from __future__ import annotations

import json

import pytest
from emulator_helpers import api_lines, sequence_in

pytestmark = pytest.mark.integration

DB_ID = "11111111-2222-3333-4444-555555555555"
KV_ID = "0123456789abcdef0123456789abcdef"


def test_first_deploy_uploads_then_second_takes_the_existing_worker_path(make_wrangler, emulator):
    wrangler = make_wrangler('[vars]\nSERVICE_NAME = "silo"\n')

    first = wrangler("deploy")

    worker = emulator.state.worker("silo")
    assert first.output.deploy.version_id == worker.current_version().id
    assert sequence_in(
        [
            "GET /a/workers/services/silo",
            "GET /a/workers/scripts/silo/deployments",
            "PUT /a/workers/scripts/silo",
            "POST /a/workers/scripts/silo/subdomain",
        ],
        api_lines(emulator),
    )
    assert "POST /a/workers/scripts/silo/versions" not in api_lines(emulator)
    emulator.clear_requests()

    second = wrangler("deploy")

    lines = api_lines(emulator)
    assert "PUT /a/workers/scripts/silo" not in lines
    assert sequence_in(
        [
            "GET /a/workers/services/silo",
            "POST /a/workers/scripts/silo/versions",
            "POST /a/workers/scripts/silo/deployments",
            "PATCH /a/workers/scripts/silo/script-settings",
        ],
        lines,
    )
    current = worker.current_version()
    assert second.output.deploy.version_id == current.id
    assert [v.number for v in worker.versions] == [1, 2]
    assert len(worker.deployments) == 2
    assert emulator.state.traffic("silo") == {current.id: 100}
    assert current.main_module == "index.js"
    assert "hello from ${env.SERVICE_NAME}" in current.modules["index.js"].text  # bundled
    assert current.compatibility_date == "2025-01-01"
    assert current.vars == {"SERVICE_NAME": "silo"}
    assert worker.subdomain_enabled


STAGING = f"""
compatibility_flags = ["nodejs_compat"]

[vars]
SERVICE_NAME = "silo"

[env.staging]
name = "silo-staging"

[env.staging.vars]
SERVICE_NAME = "silo-staging"
LIMITS = {{ max = 5 }}

[[env.staging.d1_databases]]
binding = "DB"
database_name = "silo-db-staging"
database_id = "{DB_ID}"

[[env.staging.kv_namespaces]]
binding = "CACHE"
id = "{KV_ID}"

[[env.staging.r2_buckets]]
binding = "BUCKET"
bucket_name = "silo-staging-bucket"

[[env.staging.services]]
binding = "AUTH"
service = "auth-staging"

[[env.staging.queues.producers]]
binding = "JOBS"
queue = "jobs-staging"

[[env.staging.queues.consumers]]
queue = "jobs-staging"
max_batch_size = 10
"""


def test_env_staging_deploy_stores_exactly_the_configured_bindings(make_wrangler, emulator):
    wrangler = make_wrangler(STAGING)

    run = wrangler("deploy", "--env", "staging")

    assert run.output.deploy.worker_name == "silo-staging"
    assert run.output.deploy.environment == "staging"
    version = emulator.state.worker("silo-staging").current_version()
    by_name = {b["name"]: b for b in version.bindings}
    assert by_name == {
        "SERVICE_NAME": {"name": "SERVICE_NAME", "type": "plain_text", "text": "silo-staging"},
        "LIMITS": {"name": "LIMITS", "type": "json", "json": {"max": 5}},
        "DB": {"name": "DB", "type": "d1", "id": DB_ID},
        "CACHE": {"name": "CACHE", "type": "kv_namespace", "namespace_id": KV_ID},
        "BUCKET": {"name": "BUCKET", "type": "r2_bucket", "bucket_name": "silo-staging-bucket"},
        "AUTH": {"name": "AUTH", "type": "service", "service": "auth-staging"},
        "JOBS": {"name": "JOBS", "type": "queue", "queue_name": "jobs-staging"},
    }
    assert version.vars == {"SERVICE_NAME": "silo-staging", "LIMITS": {"max": 5}}
    assert version.compatibility_flags == ["nodejs_compat"]
    assert emulator.state.worker("silo-staging").tags == [
        "cf:service=silo",
        "cf:environment=staging",
    ]
    assert "silo" not in emulator.state.workers
    # the deploy auto-provisioned the bucket and registered the queue consumer
    assert "silo-staging-bucket" in emulator.state.buckets
    queue = emulator.state.queue_by_name("jobs-staging")
    assert [(c["script"], c["settings"]["batch_size"]) for c in queue.consumers] == [
        ("silo-staging", 10)
    ]


def test_versions_upload_split_deploy_and_rollbacks(make_wrangler, emulator):
    wrangler = make_wrangler('[vars]\nSERVICE_NAME = "silo"\n')
    v1 = wrangler("deploy").output.deploy.version_id

    upload_a = wrangler("versions", "upload", "--message", "upload A", "--tag", "a")
    a = upload_a.output.version_upload.version_id
    assert emulator.state.traffic("silo") == {v1: 100}  # uploaded, not deployed
    stored_a = emulator.state.worker("silo").version(a)
    assert (stored_a.message, stored_a.tag) == ("upload A", "a")
    viewed = json.loads(wrangler("versions", "view", a, "--json").stdout)
    assert viewed["annotations"]["workers/message"] == "upload A"
    assert viewed["resources"]["bindings"] == [
        {"name": "SERVICE_NAME", "type": "plain_text", "text": "silo"}
    ]
    b = wrangler("versions", "upload").output.version_upload.version_id

    split = wrangler("versions", "deploy", f"{a}@90%", f"{b}@10%", "--yes", "--message", "canary")

    assert split.output.version_deploy.worker_name == "silo"
    assert emulator.state.traffic("silo") == {a: 90, b: 10}
    listed = json.loads(wrangler("deployments", "list", "--json").stdout)
    assert [len(d["versions"]) for d in listed] == [1, 2]  # oldest first
    assert listed[-1]["annotations"]["workers/message"] == "canary"

    wrangler("rollback", "--message", "back", "-y")  # to the last deployment at 100%
    assert emulator.state.traffic("silo") == {v1: 100}
    assert emulator.state.worker("silo").latest_deployment.annotations == {
        "workers/message": "back"
    }

    wrangler("rollback", a, "--message", "to A", "-y")
    assert emulator.state.traffic("silo") == {a: 100}
    assert [len(d.versions) for d in emulator.state.worker("silo").deployments] == [1, 1, 2, 1]


def test_secret_put_list_bulk_delete_on_a_new_worker(make_wrangler, emulator, tmp_path):
    wrangler = make_wrangler('[vars]\nSERVICE_NAME = "silo"\n')

    wrangler("secret", "put", "API_KEY", input="s3cr3t\n")

    assert api_lines(emulator) == [
        "PUT /a/workers/scripts/silo/secrets",  # 404: no such worker yet
        "PUT /a/workers/scripts/silo",  # wrangler creates a draft worker
        "PUT /a/workers/scripts/silo/secrets",
    ]
    worker = emulator.state.worker("silo")
    assert worker.secrets == {"API_KEY": "s3cr3t"}

    listed = json.loads(wrangler("secret", "list").stdout)
    assert listed == [{"name": "API_KEY", "type": "secret_text"}]

    (wrangler.project / "secrets.json").write_text(json.dumps({"BULK_A": "a1", "BULK_B": "b2"}))
    wrangler("secret", "bulk", "secrets.json")
    assert worker.secrets == {"API_KEY": "s3cr3t", "BULK_A": "a1", "BULK_B": "b2"}

    wrangler("secret", "delete", "BULK_A")
    assert worker.secrets == {"API_KEY": "s3cr3t", "BULK_B": "b2"}
    # like the real API, each secret change rolled out a new version
    assert [v.triggered_by for v in worker.versions] == ["upload", "secret", "secret", "secret"]


D1_TOML = f"""
[[d1_databases]]
binding = "DB"
database_name = "silo-db"
database_id = "{DB_ID}"
migrations_dir = "migrations"
"""


def test_d1_migrations_apply_remote_twice(make_wrangler, emulator):
    wrangler = make_wrangler(D1_TOML)
    migrations = wrangler.project / "migrations"
    migrations.mkdir()
    (migrations / "0001_init.sql").write_text(
        "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT);\n"
        "INSERT INTO items(name) VALUES ('a; not a separator');\n"
    )
    (migrations / "0002_more.sql").write_text("INSERT INTO items(name) VALUES ('b');\n")

    wrangler("d1", "migrations", "apply", "silo-db", "--remote")

    db = emulator.state.d1[DB_ID]
    assert [r["name"] for r in db.rows("SELECT name FROM items ORDER BY id")] == [
        "a; not a separator",
        "b",
    ]
    applied = db.rows("SELECT name FROM d1_migrations ORDER BY id")
    assert [r["name"] for r in applied] == ["0001_init.sql", "0002_more.sql"]
    emulator.clear_requests()

    again = wrangler("d1", "migrations", "apply", "silo-db", "--remote")

    assert "No migrations to apply" in again.stdout
    assert len(emulator.requests_matching("POST", r"/d1/database/[^/]+/query$")) == 2
    assert len(db.rows("SELECT * FROM items")) == 2


def test_sql_error_in_a_migration_fails_and_keeps_earlier_ones(make_wrangler, emulator):
    wrangler = make_wrangler(D1_TOML)
    migrations = wrangler.project / "migrations"
    migrations.mkdir()
    (migrations / "0001_init.sql").write_text("CREATE TABLE items(id INTEGER PRIMARY KEY);\n")
    (migrations / "0002_broken.sql").write_text("CREAT TABLE nope(id);\n")

    run = wrangler("d1", "migrations", "apply", "silo-db", "--remote", check=False)

    assert run.returncode == 1
    assert "SQLITE_ERROR" in run.stderr
    db = emulator.state.d1[DB_ID]
    assert [r["name"] for r in db.rows("SELECT name FROM d1_migrations")] == ["0001_init.sql"]
    assert "nope" not in db.tables()
