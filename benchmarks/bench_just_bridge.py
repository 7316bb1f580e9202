"""The justfile bridge's added start-up time: `invoke --list` with and without it, side by side.

Both sides list the same native dome-tasks collection; one also exposes the 37 public recipes
of tests/just/fixtures/monorepo.just (read through `just --dump`). Goal: at most 50 ms added.
Usage: .venv/bin/python benchmarks/bench_just_bridge.py [--runs 15]
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
FIXTURE = ROOT / "tests/just/fixtures/monorepo.just"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # users have .pyc files

WITHOUT = "from dome_tasks.collection import native_tasks\nns = native_tasks()\n"
WITH = (
    "from dome_tasks.collection import native_tasks\n"
    "from dome_tasks.justfile_bridge import recipes_collection\n"
    f"ns = recipes_collection({str(FIXTURE)!r}, native=native_tasks())\n"
)


def timed(cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(INVOKE), "--list"], cwd=cwd, check=True, capture_output=True, env=ENV)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        without, with_bridge = Path(a), Path(b)
        (without / "tasks.py").write_text(WITHOUT)
        (with_bridge / "tasks.py").write_text(WITH)
        plain, bridged = [], []
        for _ in range(runs):
            plain.append(timed(without))
            bridged.append(timed(with_bridge))
    plain_s, bridged_s = statistics.median(plain), statistics.median(bridged)
    print(f"invoke --list, median of {runs} interleaved runs")
    print(f"  native tasks only             : {plain_s * 1000:7.1f} ms")
    print(f"  + 37 recipes of monorepo.just: {bridged_s * 1000:7.1f} ms")
    print(f"  added                         : {(bridged_s - plain_s) * 1000:7.1f} ms  (goal <= 50 ms)"
          f"   ratio {bridged_s / plain_s:.2f}x")


if __name__ == "__main__":
    main()
