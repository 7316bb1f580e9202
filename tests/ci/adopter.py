"""A dome-tasks install as an adopter has it: the standard build, a fresh venv, a monorepo.

``build_dist`` builds like a release does (``python -m build``: the sdist, then the wheel from
the sdist). ``Venv`` is a fresh virtualenv outside the repository that installs only from the
wheelhouse ``scripts/setup`` filled (``.venv/wheelhouse``) and the built wheel: no network.
``write_monorepo`` lays out a Workers monorepo shaped like an adopter's: services/<name>, one
dome.yaml, tasks/__init__.py, package.json and its lock file, a requirements file, a justfile.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]

TASKS_INIT = '''\
"""The monorepo's invoke tasks: dome-tasks, pointed at the manifest and justfile beside it."""

from pathlib import Path

from dome_tasks import namespace

ROOT = Path(__file__).resolve().parent.parent
ns = namespace(manifest=ROOT / "dome.yaml", justfile=ROOT / "justfile")
'''

JUSTFILE = '''\
# The team's own recipes.

# Syntax-check one service (dome-tasks runs it before each deploy)
build-pkg service:
    node --check services/{{service}}/src/index.js

# Say hello (a recipe of the team's, reachable through invoke too)
hello name="world":
    @echo "hello {{name}} from just"
'''


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path


def build_dist(out: Path) -> Dist:
    """``python -m build --no-isolation`` of a clean copy of the sources: sdist, then its wheel."""
    src = out / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "docs", src / "docs")
    shutil.copytree(ROOT / "dome_tasks", src / "dome_tasks",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = out / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)],
        capture_output=True, text=True, check=False, timeout=300, env=offline_pip_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Building wheel from sdist" in done.stderr, done.stderr  # build's own progress lines
    (sdist,) = dist.glob("dome_tasks-*.tar.gz")
    (wheel,) = dist.glob("dome_tasks-*.whl")
    return Dist(sdist, wheel)


def offline_pip_env(**extra: str) -> dict[str, str]:
    """The environment with pip pointed at the wheelhouse only (no index, no user config)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "VIRTUAL_ENV", "GITHUB_"))}  # not the real runner's files
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(WHEELHOUSE),
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


class Venv:
    """A fresh virtualenv: its bin/ first on PATH, then only node's and the system's folders.

    Made ``--without-pip`` and filled by this Python's pip (``pip --python``): ensurepip alone
    takes longer than the rest. ``with_pip`` adds pip itself (Python's bundled wheel), for the
    workflow's own `pip install` steps.
    """

    def __init__(self, path: Path, *, with_pip: bool = False) -> None:
        self.path = path
        self.bin = path / "bin"
        done = subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)],
                              capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 0, done.stderr
        if with_pip:
            import ensurepip

            (bundled,) = (Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl")
            self.pip_install(str(bundled))

    def env(self, **extra: str) -> dict[str, str]:
        node = Path(shutil.which("node") or "/usr/bin/node").parent
        folders = [str(self.bin), str(node), "/usr/bin", "/bin"]
        env = offline_pip_env(**extra)
        env.update(PATH=os.pathsep.join(dict.fromkeys(folders)), VIRTUAL_ENV=str(self.path),
                   NO_COLOR="1")
        return env

    def run(self, *argv: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), cwd=cwd, env=self.env(**extra), capture_output=True,
                              text=True, check=False, timeout=300)

    def pip_install(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(self.bin / "python"), "install",
             "--quiet", "--no-compile", *args],
            env=offline_pip_env(), capture_output=True, text=True, check=False, timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def write_monorepo(root: Path, *, justfile: bool = True) -> Path:
    """A Workers monorepo shaped like an adopter's, using the sample's three services."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "sample" / "services", root / "services",
                    ignore=shutil.ignore_patterns(".dome", ".wrangler", "node_modules"))
    shutil.copy2(ROOT / "sample" / "dome.yaml", root / "dome.yaml")
    (root / "tasks").mkdir()
    tasks_init = TASKS_INIT if justfile else TASKS_INIT.replace(', justfile=ROOT / "justfile"', "")
    (root / "tasks" / "__init__.py").write_text(tasks_init, encoding="utf-8")
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, root / name)
    (root / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    (root / "requirements-deploy.txt").write_text(f"dome-tasks=={VERSION}\n", encoding="utf-8")
    if justfile:
        (root / "justfile").write_text(JUSTFILE, encoding="utf-8")
    (root / ".gitignore").write_text(".dome/\n.wrangler/\nnode_modules\n__pycache__/\n",
                                     encoding="utf-8")
    return root
