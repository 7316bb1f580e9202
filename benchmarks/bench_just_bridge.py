"""The justfile bridge's added start-up time: `invoke --list` with and without it, side by side.

Both sides list the same native dome-tasks collection; one also exposes the 37 public recipes
of tests/just/fixtures/monorepo.just (read through `just --dump`). Goal: at most 50 ms added.
Usage: .venv/bin/python benchmarks/bench_just_bridge.py [--runs 15]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from timing import BIN, ROOT, interleaved, runs_argument, timed

FIXTURE = ROOT / "tests/just/fixtures/monorepo.just"
WITHOUT = "from dome_tasks.collection import native_tasks\nns = native_tasks()\n"
WITH = (
    "from dome_tasks.collection import native_tasks\n"
    "from dome_tasks.just.bridge import recipes_collection\n"
    f"ns = recipes_collection({str(FIXTURE)!r}, native=native_tasks())\n"
)


def main() -> None:
    runs = runs_argument(15)
    invoke = [str(BIN / "invoke"), "--list"]
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        without, with_bridge = Path(a), Path(b)
        (without / "tasks.py").write_text(WITHOUT)
        (with_bridge / "tasks.py").write_text(WITH)
        plain_s, bridged_s = interleaved(runs, lambda: timed(invoke, without), lambda: timed(invoke, with_bridge))
    print(f"invoke --list, median of {runs} interleaved runs")
    print(f"  native tasks only             : {plain_s * 1000:7.1f} ms")
    print(f"  + 37 recipes of monorepo.just: {bridged_s * 1000:7.1f} ms")
    print(f"  added                         : {(bridged_s - plain_s) * 1000:7.1f} ms  (goal <= 50 ms)"
          f"   ratio {bridged_s / plain_s:.2f}x")


if __name__ == "__main__":
    main()
