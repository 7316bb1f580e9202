"""Shared fixtures and hooks: a throwaway copy of the sample workspace, a recording wrangler,
the check that the emulator served every call (shared non-fixture helpers: tests/helpers/)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.tools import with_node

# The `cloudflare_emulator` fixture, opted into as an adopter does (no auto-loaded pytest11
# plugin); imported rather than listed in pytest_plugins, so that a checkout whose stale
# *.egg-info still names the old entry point does not register the module twice.
from dome_tasks.testing.pytest_plugin import cloudflare_emulator  # noqa: E402,F401
from tests.helpers import ROOT, SAMPLE

# The tests that start wrangler themselves run it as a user with this venv activated would:
# on the node that dome-tasks picks (the machine's when new enough, else .venv/bin/node).
# tests/integration/test_node.py checks dome-tasks' own choice, with an old node first on PATH.
os.environ["PATH"] = with_node(os.environ)["PATH"]

RECORDING_WRANGLER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["DOME_TEST_RECORD"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A copy of the sample workspace, with this repo's justfile and tasks, in tmp_path."""
    shutil.copytree(SAMPLE, tmp_path / "sample", ignore=shutil.ignore_patterns(".dome", ".wrangler"))
    shutil.copytree(ROOT / "tasks", tmp_path / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "justfile", tmp_path / "justfile")
    return tmp_path


@pytest.fixture
def recording_wrangler(workspace: Path) -> Path:
    """Put a wrangler that only records its argv where dome-tasks looks first; return the log.

    Pass ``DOME_TEST_RECORD=<log>`` in the subprocess environment (see :func:`tests.helpers.run_env`).
    """
    record = workspace / "wrangler-calls.jsonl"
    binary = workspace / "node_modules" / ".bin" / "wrangler"
    binary.parent.mkdir(parents=True)
    binary.write_text(RECORDING_WRANGLER)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return record


@pytest.fixture(scope="session")
def _unrouted_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per test process where every emulator (in-process or in a CLI subprocess)
    appends the API calls it could not route."""
    from dome_tasks.testing.emulator.emulator import UNROUTED_LOG_ENV

    log = tmp_path_factory.mktemp("emulator") / "unrouted.log"
    log.touch()
    os.environ[UNROUTED_LOG_ENV] = str(log)
    return log


@pytest.fixture(autouse=True)
def _every_wrangler_call_is_served(request: pytest.FixtureRequest, _unrouted_log: Path) -> Iterator[None]:
    """Fail a test in which wrangler called the emulator on a path it has no route for: the
    emulator must follow every call of the wrangler versions we support."""
    start = _unrouted_log.stat().st_size
    yield
    with _unrouted_log.open(encoding="utf-8") as log:
        log.seek(start)
        missed = sorted(set(log.read().split("\n")) - {""})
    if missed and request.node.get_closest_marker("unrouted_ok") is None:
        pytest.fail("the emulator answered 'No route' to: " + "; ".join(missed), pytrace=False)
