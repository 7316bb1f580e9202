"""Pure parts of the local environment: no process is started."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dome_tasks import tools
from dome_tasks.local import LocalError, PortRange
from dome_tasks.local.wrangler import d1_targets, dev_argv, parse_applied_migrations, wrangler_env

FIRST_RUN = """\
Migrations to be applied:
┌─────────────────┐
│ name            │
├─────────────────┤
│ 0001_init.sql   │
├─────────────────┤
│ 0002_events.sql │
└─────────────────┘
🚣 2 commands executed successfully.
┌─────────────────┬────────┐
│ name            │ status │
├─────────────────┼────────┤
│ 0001_init.sql   │ ✅     │
├─────────────────┼────────┤
│ 0002_events.sql │ ✅     │
└─────────────────┴────────┘
"""


def test_parse_applied_migrations():
    assert parse_applied_migrations(FIRST_RUN) == ("0001_init.sql", "0002_events.sql")
    assert parse_applied_migrations("Resource location: local\n\n\x1b[32m✅ No migrations to apply!\x1b[0m\n") == ()


@pytest.mark.parametrize(
    ("spec", "expected"), [("8787", (8787, 8787)), (8787, (8787, 8787)), ("8787-8799", (8787, 8799))]
)
def test_port_range_parse(spec, expected):
    ports = PortRange.parse(spec)
    assert (ports.first, ports.last) == expected
    assert ports.single == (expected[0] == expected[1])


@pytest.mark.parametrize("spec", ["", "abc", "9000-8000", "0", "70000"])
def test_port_range_rejects(spec):
    with pytest.raises(LocalError, match="bad port"):
        PortRange.parse(spec)


def test_d1_targets_resolve_like_wrangler(tmp_path: Path):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "other").mkdir()
    config = tmp_path / "silo.toml"
    config.write_text(
        '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "silo-db"\ndatabase_id = "x"\n'
        '[[d1_databases]]\nbinding = "AUX"\ndatabase_name = "aux"\ndatabase_id = "y"\nmigrations_dir = "other"\n'
        '[[d1_databases]]\nbinding = "NONE"\ndatabase_name = "none"\ndatabase_id = "z"\nmigrations_dir = "missing"\n'
    )
    assert [(t.database_name, t.migrations_dir.name) for t in d1_targets(config)] == [
        ("silo-db", "migrations"),
        ("aux", "other"),
    ]


def test_dev_argv_and_env_are_isolated(tmp_path: Path):
    argv = dev_argv(Path("/w/wrangler"), tmp_path / "a.toml", tmp_path / "state", host="127.0.0.1", port=8790, inspector_port=9300)
    assert argv[:2] == ("/w/wrangler", "dev")
    assert ("--port", "8790") == argv[argv.index("--port") : argv.index("--port") + 2]
    assert "--persist-to" in argv and str(tmp_path / "state") in argv
    env = wrangler_env(tmp_path / "state", {"PATH": "/bin"})
    assert env["WRANGLER_REGISTRY_PATH"] == str(tmp_path / "state" / "registry")
    assert env["WRANGLER_SEND_METRICS"] == "false" and env["NO_COLOR"] == "1"
    assert env["PATH"].split(os.pathsep)[-1] == "/bin"  # kept, behind a new-enough node
    assert tools.node_version(shutil.which("node", path=env["PATH"])) >= tools.NODE_MINIMUM
    assert env["WRANGLER_WRITE_LOGS"] == "false"
