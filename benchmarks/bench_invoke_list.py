"""`invoke --list` in this repository against invoke with an one-task module, side by side.

Goal: ratio <= 1.25. Runs are interleaved so that machine noise hits both sides alike.
Usage: .venv/bin/python benchmarks/bench_invoke_list.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INVOKE = Path(sys.executable).parent / "invoke"
# invoke refuses to list a module with no task at all, so the baseline holds one trivial task.
BASELINE_TASKS = 'from invoke import task\n\n\n@task\ndef hello(c):\n    """Say hello."""\n'


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # users have .pyc files


def timed(cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(INVOKE), "--list"], cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as empty:
        (Path(empty) / "tasks.py").write_text(BASELINE_TASKS)
        ours, baseline = [], []
        for _ in range(runs):
            baseline.append(timed(Path(empty)))
            ours.append(timed(ROOT))
    ours_s, base_s = statistics.median(ours), statistics.median(baseline)
    print(f"invoke --list, median of {runs} interleaved runs")
    print(f"  one-task module    : {base_s * 1000:7.1f} ms")
    print(f"  dome-tasks (repo)  : {ours_s * 1000:7.1f} ms")
    print(f"  ratio              : {ours_s / base_s:7.2f}x  (goal <= 1.25x)")


if __name__ == "__main__":
    main()
