"""What test files share besides fixtures (as invoke's ``tests/_util.py``): the repository's
paths and the environment for CLI subprocesses. conftest.py keeps the fixtures and hooks;
:mod:`tests.helpers.lifecycle` holds the lifecycle calls below the task layer."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample"
VENV_BIN = Path(sys.executable).parent
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"


def run_env(**extra: str) -> dict[str, str]:
    """The environment for CLI subprocesses: this venv first on PATH, no colour."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    env["DOME_INVOKE"] = str(VENV_BIN / "invoke")
    env.update(extra)
    return env
