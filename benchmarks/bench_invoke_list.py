"""`invoke --list` in this repository against invoke with a one-task module, side by side.

Goal: ratio <= 1.15. Usage: .venv/bin/python benchmarks/bench_invoke_list.py [--runs 15]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from timing import BIN, ROOT, interleaved, runs_argument, timed

# invoke refuses to list a module with no task at all, so the baseline holds one trivial task.
BASELINE_TASKS = 'from invoke import task\n\n\n@task\ndef hello(c):\n    """Say hello."""\n'


def main() -> None:
    runs = runs_argument(15)
    invoke = [str(BIN / "invoke"), "--list"]
    with tempfile.TemporaryDirectory() as empty:
        (Path(empty) / "tasks.py").write_text(BASELINE_TASKS)
        base_s, ours_s = interleaved(runs, lambda: timed(invoke, Path(empty)), lambda: timed(invoke, ROOT))
    print(f"invoke --list, median of {runs} interleaved runs")
    print(f"  one-task module    : {base_s * 1000:7.1f} ms")
    print(f"  dome-tasks (repo)  : {ours_s * 1000:7.1f} ms")
    print(f"  ratio              : {ours_s / base_s:7.2f}x  (goal <= 1.15x)")


if __name__ == "__main__":
    main()
