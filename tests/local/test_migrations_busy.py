"""A local D1 database locked for a moment (a `wrangler dev` of the same state folder booting,
another workerd closing) does not fail a local migration: it is tried again."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from tests.helpers import ROOT, VENV_BIN, run_env

pytestmark = pytest.mark.integration


def _invoke(workspace: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENV_BIN / "invoke"), *words], cwd=workspace, env=run_env(),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=240,
                          check=False)


def test_a_migration_that_meets_a_locked_database_is_tried_again(workspace):
    (workspace / "node_modules").symlink_to(ROOT / "node_modules")
    first = _invoke(workspace, "db-migrate-local")
    assert first.returncode == 0, first.stderr
    databases = [p for p in (workspace / "sample").rglob("*.sqlite") if "d1" in str(p).lower()]
    assert databases, "the first apply made no local D1 database"
    migrations = workspace / "sample" / "services" / "silo" / "migrations"
    (migrations / "0009_busy.sql").write_text("CREATE TABLE busy (id INTEGER PRIMARY KEY);\n")

    holders = [sqlite3.connect(path, timeout=0, isolation_level=None,
                               check_same_thread=False) for path in databases]
    for holder in holders:
        holder.execute("BEGIN EXCLUSIVE")  # a second workerd on the folder, past the first try
    released = threading.Timer(4.0, lambda: [h.execute("ROLLBACK") for h in holders])
    released.start()
    try:
        again = _invoke(workspace, "db-migrate-local")
    finally:
        released.join()
        for holder in holders:
            holder.close()

    assert again.returncode == 0, again.stdout + again.stderr
    assert "0009_busy.sql" in again.stdout + again.stderr
