"""The output-file parser and the hermetic wrangler environment."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from dome_tasks import tools
from dome_tasks.wrangler.env import DEAD_REGISTRY, hermetic_env
from dome_tasks.wrangler.output import (
    DeployRecord,
    FailedCommandRecord,
    WranglerSession,
    parse_output,
    read_output,
)

NDJSON = (
    "\n".join(
        json.dumps(r)
        for r in [
            {
                "type": "wrangler-session",
                "version": 1,
                "wrangler_version": "4.86.0",
                "command_line_args": ["deploy", "--env", "staging"],
            },
            {
                "type": "deploy",
                "version": 1,
                "worker_name": "silo-staging",
                "worker_tag": None,
                "version_id": "v-1",
                "targets": ["https://silo-staging.x.workers.dev"],
                "wrangler_environment": "staging",
                "worker_name_overridden": False,
            },
            {
                "type": "version-upload",
                "version": 1,
                "worker_name": "silo",
                "worker_tag": "t",
                "version_id": "v-2",
                "preview_url": "https://p",
            },
            {
                "type": "version-deploy",
                "version": 1,
                "worker_name": "silo",
                "worker_tag": "t",
                "deployment_id": "d-1",
                "version_traffic": {},
            },
            {
                "type": "command-failed",
                "version": 1,
                "code": 971,
                "message": "A request ... failed.",
            },
            {"type": "something-new", "version": 1},
        ]
    )
    + "\n{truncated"
)


def test_parse_output_types_every_record():
    out = parse_output(NDJSON)
    assert out.records[0] == WranglerSession("4.86.0", ("deploy", "--env", "staging"))
    assert out.deploy == DeployRecord(
        "silo-staging", "v-1", None, ("https://silo-staging.x.workers.dev",), "staging"
    )
    assert out.version_upload.version_id == "v-2"
    assert out.version_deploy.deployment_id == "d-1"
    assert out.failure == FailedCommandRecord("A request ... failed.", 971)
    assert out.error_code == 971
    assert out.version_id == "v-2"
    assert out.unknown == ({"type": "something-new", "version": 1},)


def test_non_api_failure_has_no_code():
    out = parse_output('{"type":"command-failed","version":1,"message":"fetch failed"}')
    assert out.failure == FailedCommandRecord("fetch failed", None) and out.error_code is None


def test_read_output_of_a_missing_file_is_empty(tmp_path: Path):
    out = read_output(tmp_path / "none.ndjson")
    assert out.records == () and out.version_id is None


def test_hermetic_env(tmp_path: Path):
    base = {
        "PATH": "/bin",
        "CF_API_BASE_URL": "http://elsewhere",
        "WRANGLER_LOG": "debug",
        "WRANGLER_LOG_SANITIZE": "false",
    }
    env = hermetic_env(
        base,
        state_dir=tmp_path,
        environment="staging",
        api_base_url="http://127.0.0.1:1/client/v4",
        api_token="t",
        account_id="a",
    )
    # PATH is kept, behind a node new enough for the pinned wrangler where /bin's is older
    assert env["PATH"].split(os.pathsep)[-1] == "/bin"
    assert tools.node_version(shutil.which("node", path=env["PATH"])) >= tools.NODE_MINIMUM
    assert "CF_API_BASE_URL" not in env and "WRANGLER_LOG" not in env
    assert "WRANGLER_LOG_SANITIZE" not in env
    assert env["CLOUDFLARE_API_BASE_URL"] == "http://127.0.0.1:1/client/v4"
    assert (env["CLOUDFLARE_API_TOKEN"], env["CLOUDFLARE_ACCOUNT_ID"]) == ("t", "a")
    assert env["WRANGLER_SEND_METRICS"] == "false"
    assert env["WRANGLER_CACHE_DIR"] == str(tmp_path / "staging" / "cache")
    assert env["npm_registry"] == DEAD_REGISTRY
    seeded = json.loads((tmp_path / "tmp" / "update-check" / "wrangler-latest.json").read_text())
    assert seeded["latest"] == "0.0.0" and abs(seeded["lastUpdate"] / 1000 - time.time()) < 60
    assert env["TMPDIR"] == str(tmp_path / "tmp")
    assert Path(env["WRANGLER_OUTPUT_FILE_PATH"]).read_text() == ""
    assert env["NO_COLOR"] == "1" and "XDG_CONFIG_HOME" not in base


def test_each_call_gets_a_fresh_output_file_and_per_environment_cache(tmp_path: Path):
    a = hermetic_env({}, state_dir=tmp_path, environment="staging")
    b = hermetic_env({}, state_dir=tmp_path, environment="staging")
    c = hermetic_env({}, state_dir=tmp_path, environment="production", isolate_config=True)
    assert a["WRANGLER_OUTPUT_FILE_PATH"] != b["WRANGLER_OUTPUT_FILE_PATH"]
    assert a["WRANGLER_CACHE_DIR"] == b["WRANGLER_CACHE_DIR"] != c["WRANGLER_CACHE_DIR"]
    assert c["XDG_CONFIG_HOME"] == str(tmp_path / "config")
    assert hermetic_env({}, state_dir=tmp_path, debug_http=True)["WRANGLER_LOG"] == "debug"
