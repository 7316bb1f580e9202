"""Nothing but the emulator is contacted; the account cache is per environment."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from emulator_helpers import WRANGLER, write_project

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import guard_env, violations
from dome_tasks.wrangler.env import hermetic_env

pytestmark = pytest.mark.integration


def test_guard_catches_the_npm_update_check_that_the_hermetic_env_prevents(tmp_path):
    """Without the seeded update-check cache, wrangler looks up the npm registry."""
    assert WRANGLER.exists(), "the pinned wrangler is not installed: run scripts/setup (npm ci)"
    project = write_project(tmp_path / "p", "")
    fresh_tmp = tmp_path / "bare-tmp"
    fresh_tmp.mkdir()
    with Emulator() as emu:
        env = {k: v for k, v in os.environ.items() if k.lower() != "npm_registry"}
        env.update(emu.env())
        del env["npm_registry"]
        env.update(guard_env(tmp_path / "guard"), TMPDIR=str(fresh_tmp))
        env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
        proc = subprocess.run(
            [str(WRANGLER), "whoami"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert any("registry.npmjs.org" in v for v in violations(tmp_path / "guard"))


def test_account_cache_is_not_shared_between_environments(make_wrangler, emulator):
    """Without CLOUDFLARE_ACCOUNT_ID wrangler looks the account up and caches it."""
    wrangler = make_wrangler('[env.staging]\nname = "silo-staging"\n')

    wrangler("deploy", "--env", "staging", env=wrangler.env("staging", CLOUDFLARE_ACCOUNT_ID=None))
    wrangler("deploy", env=wrangler.env("production", CLOUDFLARE_ACCOUNT_ID=None))

    assert len(emulator.requests_matching("GET", r"^/memberships$")) == 2
    for environment in ("staging", "production"):
        cache = wrangler.state / environment / "cache" / "wrangler-account.json"
        assert json.loads(cache.read_text())["account"]["id"] == emulator.account_id
    assert not (wrangler.project / ".wrangler" / "cache").exists()
    assert set(emulator.state.workers) == {"silo", "silo-staging"}


def test_wrangler_keeps_its_compiled_code_in_the_project_and_a_users_choice_wins(
        make_wrangler, tmp_path):
    """Node's compile cache for wrangler's bundle lives in dome's state folder (later starts
    skip compiling it); a user's own NODE_COMPILE_CACHE is left as it is."""
    wrangler = make_wrangler("")

    wrangler("whoami", env=wrangler.env("staging"))
    cached = wrangler.state / "node-compile-cache"
    assert any(p.is_file() for p in cached.rglob("*")), "node wrote no compile cache"

    own = str(tmp_path / "own-cache")
    for users in ({"NODE_COMPILE_CACHE": own}, {"NODE_DISABLE_COMPILE_CACHE": "1"}):
        env = hermetic_env({**os.environ, **users}, state_dir=tmp_path / "state")
        assert env.get("NODE_COMPILE_CACHE") == users.get("NODE_COMPILE_CACHE")
