"""Helpers for the adoption tests: the fixture corpus and the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dome_tasks.testing.emulator import Emulator
from tests.conftest import ROOT, VENV_BIN, run_env

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT = "0123456789abcdef0123456789abcdef"  # every fixture config's account_id
TASKS = 'from dome_tasks.collection import namespace\nns = namespace(manifest="dome.yaml")\n'


def copy_fixture(name: str, target: Path) -> Path:
    """A copy of ``tests/adopt/fixtures/<name>`` with tasks/ and the pinned wrangler linked."""
    shutil.copytree(FIXTURES / name, target)
    (target / "tasks").mkdir()
    (target / "tasks" / "__init__.py").write_text(TASKS, encoding="utf-8")
    bin_dir = target / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "wrangler").symlink_to(ROOT / "node_modules" / ".bin" / "wrangler")
    return target


def invoke(project: Path, *args: str, emulator: Emulator | None = None,
           guard: dict[str, str] | None = None, timeout: float = 300
           ) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` in ``project`` as a user would (against the emulator if given)."""
    extra = dict(guard or {})
    if emulator is not None:
        extra.update(emulator.env())
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=project, env=run_env(**extra),
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )
