"""Helpers for the CI tests: real git, invoke as a workflow step runs it, the repo fixture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample"
VENV_BIN = Path(sys.executable).parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "dome-tests",
    "GIT_AUTHOR_EMAIL": "dome-tests@example.invalid",
    "GIT_COMMITTER_NAME": "dome-tests",
    "GIT_COMMITTER_EMAIL": "dome-tests@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}

# The repository's own namespace plus the CI tasks (a no-op once the collection has them).
TASKS_INIT = '''\
from pathlib import Path

from dome_tasks.cli import ci
from dome_tasks.collection import namespace

ns = namespace(manifest=Path(__file__).resolve().parent.parent / "sample" / "dome.yaml")
for _task in ci.TASKS:
    if _task.name not in ns.tasks:
        ns.add_task(_task)
'''


def git(repo: Path, *args: str) -> str:
    """Run real git in *repo* (argv, no shell); return stdout."""
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True, text=True, check=False, env={**os.environ, **GIT_ENV},
    )
    assert result.returncode == 0, f"git {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--allow-empty", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def run_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **GIT_ENV}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    for key in [k for k in env if k.startswith("GITHUB_")]:
        del env[key]
    env.update(extra)
    return env


def invoke(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` in *repo* the way a workflow step does."""
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args],
        cwd=repo, capture_output=True, text=True, check=False, env=env or run_env(), timeout=300,
    )


def write_event(path: Path, payload: dict) -> Path:
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (branch main, one commit) holding the sample workspace and tasks/."""
    root = tmp_path / "repo"
    shutil.copytree(SAMPLE, root / "sample", ignore=shutil.ignore_patterns(".dome", ".wrangler"))
    (root / "tasks").mkdir()
    (root / "tasks" / "__init__.py").write_text(TASKS_INIT, encoding="utf-8")
    shutil.copy(ROOT / "justfile", root / "justfile")
    (root / ".gitignore").write_text(".dome/\n.wrangler/\nnode_modules\n__pycache__/\n", encoding="utf-8")
    git(root, "init", "--quiet", "-b", "main")
    commit(root, "initial")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def lines(result: subprocess.CompletedProcess[str]) -> Sequence[str]:
    return result.stdout.splitlines()
