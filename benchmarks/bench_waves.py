"""30 services in 4 dependency waves, deployed to the emulator: parallel waves and the no-op skip.

A generated workspace (``dome_tasks.testing.workspace``: 30 tiny workers, each wave binding to
the one before) is deployed with the real wrangler, side by side in one run:

* ``invoke deploy-env all staging`` with the default ``--jobs`` (one per core) against the same
  with ``--jobs 1``, each time to a fresh emulator (every worker created). Goal: <= 0.6x on two
  cores (about 0.5x is the floor: each wrangler start is CPU-bound).
* after a deploy, the same command again with nothing changed: every service is skipped (their
  digests and live versions read, no wrangler start). Goal: <= 2 s in all; shown beside a
  forced redeploy of all 30.

Usage: .venv/bin/python benchmarks/bench_waves.py [--runs 1] [--services 30] [--waves 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from timing import BIN, ENV, ROOT, compile_sources

from dome_tasks.runner import default_jobs
from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.workspace import ACCOUNT, generate_workspace

TASKS = "from dome_tasks.collection import namespace\n\nns = namespace(manifest='dome.yaml')\n"


def workspace(folder: Path, services: int, waves: int) -> Path:
    generate_workspace(folder, services=services, waves=waves)
    (folder / "tasks.py").write_text(TASKS)
    (folder / "node_modules").symlink_to(ROOT / "node_modules")
    return folder


def deploy(root: Path, emulator: Emulator, *flags: str) -> float:
    """Seconds ``invoke deploy-env all staging --no-verify FLAGS`` takes (it must succeed)."""
    env = {**ENV, **emulator.env(), "NO_COLOR": "1"}
    argv = [str(BIN / "invoke"), "deploy-env", "all", "staging", "--no-verify", *flags]
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    return took


def fresh(tmp: Path, name: str, services: int, waves: int, *flags: str) -> float:
    """A deploy of a fresh workspace to a fresh emulator."""
    with Emulator(account_id=ACCOUNT) as emulator:
        return deploy(workspace(tmp / name, services, waves), emulator, *flags)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--waves", type=int, default=4)
    args = parser.parse_args()
    compile_sources()
    serial, parallel, noop, forced = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            serial.append(fresh(Path(tmp), f"serial{run}", args.services, args.waves, "--jobs", "1"))
            with Emulator(account_id=ACCOUNT) as emulator:
                root = workspace(Path(tmp) / f"parallel{run}", args.services, args.waves)
                parallel.append(deploy(root, emulator))
                noop.append(deploy(root, emulator))
                forced.append(deploy(root, emulator, "--force"))
    med = statistics.median
    cores = default_jobs()
    print(f"{args.services} services in {args.waves} waves to the emulator, {cores} core(s), "
          f"median of {args.runs} run(s)")
    print(f"  deploy-env all, --jobs 1         : {med(serial):7.1f} s")
    print(f"  deploy-env all, default jobs ({cores}) : {med(parallel):7.1f} s")
    print(f"  ratio                            : {med(parallel) / med(serial):7.2f}x  (goal <= 0.60x)")
    print(f"  forced redeploy of all           : {med(forced):7.1f} s")
    print(f"  no-op redeploy (all skipped)     : {med(noop):7.2f} s  (goal <= 2 s)")


if __name__ == "__main__":
    os.environ.setdefault("NO_COLOR", "1")
    main()
