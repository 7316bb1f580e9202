"""What every benchmark here shares: the environment users run in, timing a command, and
interleaving the two sides so that machine noise hits both alike."""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from dome_tasks.tools import with_node

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: Users have .pyc files; this workplace's shells may set PYTHONDONTWRITEBYTECODE. wrangler runs
#: on the node dome-tasks picks (the machine's when new enough, else the venv's Node 24), so the
#: bare side starts on the same node as dome's.
ENV = with_node({k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


def compile_sources() -> None:
    """Write the .pyc files a wheel install has (pip compiles at install time).

    This checkout's package is an editable install, and invoke turns bytecode writing off
    (``--write-pyc`` is off by default), so modules first imported under invoke would be
    compiled from source on every run: a cost no installed user pays.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "dome_tasks"),
                    str(ROOT / "tasks")], env=ENV, check=True, capture_output=True)


def runs_argument(default: int) -> int:
    """``--runs N`` from the command line; also compiles the sources (:func:`compile_sources`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=default)
    runs = parser.parse_args().runs
    compile_sources()
    return runs


def timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Seconds one command takes (it must succeed)."""
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env or ENV, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def interleaved(runs: int, *sides: Callable[[], float]) -> list[float]:
    """Run each side once per round, *runs* rounds; the median seconds of each side."""
    samples: list[list[float]] = [[] for _ in sides]
    for _ in range(runs):
        for side, bucket in zip(sides, samples):
            bucket.append(side())
    return [statistics.median(bucket) for bucket in samples]


def sample_workspace(work: Path) -> Path:
    """A copy of the sample, the tasks and the justfile in ``work``, the pinned wrangler linked;
    returns ``work``."""
    import shutil

    shutil.copytree(ROOT / "sample", work / "sample", ignore=shutil.ignore_patterns(".dome"))
    shutil.copytree(ROOT / "tasks", work / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "justfile", work / "justfile")
    (work / "node_modules").symlink_to(ROOT / "node_modules")
    return work


def as_dome_starts_it(argv: list[str], env: dict[str, str],
                      cache: Path) -> tuple[list[str], dict[str, str]]:
    """*argv* / *env* of a bare wrangler command, started the way dome-tasks starts wrangler:
    one node instead of the launcher's two (``wrangler.launch``), Node's compile cache in
    *cache* (``wrangler.env.keep_compiled_code``). Beside the bare side, it shows how much of
    dome's time is its own and how much its faster wrangler start gives back."""
    from dome_tasks.tools import node_version
    from dome_tasks.wrangler.env import keep_compiled_code
    from dome_tasks.wrangler.launch import direct_argv

    env = dict(env)
    keep_compiled_code(env, cache)
    return direct_argv(argv, env, node_version), env
