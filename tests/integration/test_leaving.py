"""The last task of an ``invoke`` run leaves without the interpreter's teardown; nothing a
user relies on at exit is skipped for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

INVOKE = str(Path(sys.executable).parent / "invoke")
AT_EXIT = """
import atexit, pathlib
atexit.register(lambda: pathlib.Path("at-exit-ran").write_text("yes"))
"""


def _invoke(workspace: Path, *words: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "CLOUDFLARE_ACCOUNT_ID": "0" * 32}
    return subprocess.run([INVOKE, *words], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_every_task_on_the_command_line_runs_and_exit_handlers_still_run(workspace):
    with (workspace / "tasks" / "__init__.py").open("a") as tasks:
        tasks.write(AT_EXIT)  # a user's own exit handler, in their tasks module

    done = _invoke(workspace, "render", "silo", "staging", "render", "silo", "production")

    assert done.returncode == 0, done.stderr
    build = workspace / "sample" / ".dome" / "build"
    assert (build / "staging" / "silo" / "wrangler.toml").is_file()
    assert (build / "production" / "silo" / "wrangler.toml").is_file()
    assert (workspace / "at-exit-ran").read_text() == "yes"


def test_a_failing_task_still_exits_non_zero(workspace):
    done = _invoke(workspace, "render", "silo", "staging", "render", "silo", "nowhere")

    assert done.returncode != 0
    assert "nowhere" in done.stderr
    build = workspace / "sample" / ".dome" / "build"
    assert (build / "staging" / "silo" / "wrangler.toml").is_file()
