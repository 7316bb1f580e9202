"""dome-tasks' overhead over the bare `wrangler deploy` it wraps, both against the emulator.

Side by side, interleaved: `wrangler deploy --config <rendered silo-staging>` versus
`invoke deploy-env silo staging --no-build --no-verify` (load + validate the manifest, render,
hermetic environment, wrangler, output file, ledger). Goal: ratio <= 1.10.
Usage: .venv/bin/python benchmarks/bench_deploy_overhead.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dome_tasks.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emulator:
        work = Path(tmp)
        shutil.copytree(ROOT / "sample", work / "sample", ignore=shutil.ignore_patterns(".dome"))
        shutil.copytree(ROOT / "tasks", work / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "justfile", work / "justfile")
        (work / "node_modules").symlink_to(ROOT / "node_modules")
        env = {**os.environ, **emulator.env(), "NO_COLOR": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what users run: with .pyc files
        ours = [str(BIN / "invoke"), "deploy-env", "silo", "staging", "--no-build", "--no-verify"]
        timed(ours, work, env)  # first deploy: creates the worker and renders the config
        config = work / "sample/.dome/build/staging/silo/wrangler.toml"
        bare = [str(work / "node_modules/.bin/wrangler"), "deploy", "--config", str(config)]
        bare_env = {**env, "WRANGLER_HIDE_BANNER": "true"}
        bare_s, ours_s = [], []
        for _ in range(runs):
            bare_s.append(timed(bare, config.parent, bare_env))
            ours_s.append(timed(ours, work, env))
    bare_m, ours_m = statistics.median(bare_s), statistics.median(ours_s)
    print(f"deploy silo-staging to the emulator, median of {runs} interleaved runs")
    print(f"  bare wrangler deploy         : {bare_m * 1000:7.0f} ms")
    print(f"  invoke deploy-env (dome-tasks): {ours_m * 1000:7.0f} ms")
    print(f"  ratio                        : {ours_m / bare_m:7.2f}x  (goal <= 1.10x)")


if __name__ == "__main__":
    main()
