"""wrangler runs on a node new enough for it, whatever node comes first on the user's PATH.

A machine whose node is older than today's wrangler needs (Node 20: its support ended on
2026-04-30) still deploys: dome-tasks starts wrangler with the first node that is new enough
(the machine's, else the one in the venv), and `invoke doctor` says which, or how to fix it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dome_tasks import tools
from dome_tasks.cli.doctor import node_check
from dome_tasks.wrangler.env import hermetic_env

ROOT = Path(__file__).resolve().parents[2]
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"

OLD_NODE = """#!/bin/sh
if [ "$1" = "--version" ]; then echo v20.20.2; exit 0; fi
echo "Wrangler requires at least Node.js v22.12.0. You are using v20.20.2." >&2
exit 1
"""


@pytest.fixture
def old_node_first(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH starts with a node 20 (the wrong one for wrangler 4.164)."""
    folder = tmp_path / "old-node"
    folder.mkdir()
    shim = folder / "node"
    shim.write_text(OLD_NODE)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    tools.node_version.cache_clear()
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def test_the_engines_range_of_the_pinned_wrangler_is_read() -> None:
    wanted = tools.wrangler_node_range(str(WRANGLER))
    assert wanted is not None and wanted.startswith(">=")
    assert tools.node_minimum(wanted) >= (22, 0, 0)
    assert tools.node_minimum(">=18.0.0") == (18, 0, 0)
    assert tools.node_minimum("^22 || >=24") == tools.NODE_MINIMUM  # unreadable: our floor


def test_an_old_node_first_on_path_is_passed_over(old_node_first: dict[str, str]) -> None:
    chosen = tools.find_node(environ=old_node_first)
    assert chosen is not None and "old-node" not in chosen
    assert tools.node_version(chosen) >= tools.NODE_MINIMUM
    env = tools.with_node(old_node_first)
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(chosen)


@pytest.mark.integration
def test_wrangler_runs_through_dome_with_an_old_node_first(old_node_first: dict[str, str],
                                                           tmp_path: Path) -> None:
    bare = subprocess.run([str(WRANGLER), "--version"], env=old_node_first, capture_output=True,
                          text=True, check=False)
    assert bare.returncode != 0  # what a user with Node 20 meets without dome-tasks
    env = hermetic_env(old_node_first, state_dir=tmp_path / "state")
    done = subprocess.run([str(WRANGLER), "--version"], env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(
        tools.wrangler_version((str(WRANGLER),)))  # dome's own version read works too


@pytest.mark.integration
def test_doctor_names_the_node_wrangler_runs_on(old_node_first: dict[str, str]) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "invoke"), "doctor"],
                          cwd=ROOT / "sample", env=old_node_first, capture_output=True,
                          text=True, check=False)
    line = next(x for x in done.stdout.splitlines() if " node " in f" {x} ")
    assert line.startswith("ok") and "old-node" not in line and ">=22" in line, done.stdout


def test_doctor_says_how_to_fix_a_node_that_is_too_old(monkeypatch: pytest.MonkeyPatch,
                                                       old_node_first: dict[str, str]) -> None:
    monkeypatch.setattr(tools, "find_node", lambda *a, **k: None)
    monkeypatch.setenv("PATH", old_node_first["PATH"])
    check = node_check(str(WRANGLER))
    assert not check.ok
    assert "v20.20.2" in check.detail and ">=22" in check.detail
    assert "pip install 'dome-tasks[node]'" in check.detail


def test_a_node_version_is_remembered_until_the_binary_changes(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    node = tmp_path / "bin" / "node"
    node.parent.mkdir()

    def install(version: str) -> None:
        node.write_text(f'#!/bin/sh\necho run >> "{calls}"\necho {version}\n')
        node.chmod(0o755)

    def ask() -> tuple[int, int, int] | None:
        tools.node_version.cache_clear()  # a new dome process
        return tools.known_node_version(str(node), tmp_path / "versions")

    install("v22.12.0")
    assert ask() == (22, 12, 0) and ask() == (22, 12, 0)
    assert calls.read_text().count("run") == 1, "the second run starts no node --version"
    install("v24.1.0")  # an upgrade in place: another size (and time)
    assert ask() == (24, 1, 0)
    for entry in (tmp_path / "versions").iterdir():
        entry.write_text("{broken")
    assert ask() == (24, 1, 0)


def test_a_wrangler_environment_remembers_the_node_it_checked(tmp_path: Path) -> None:
    tools.node_version.cache_clear()
    hermetic_env(dict(os.environ), state_dir=tmp_path)
    kept = [json.loads(p.read_text()) for p in (tmp_path / "node-versions").iterdir()]
    assert kept and all(Path(entry["key"][0]).name.startswith("node") for entry in kept)
