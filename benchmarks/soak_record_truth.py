"""Issue 11's counts, measured: concurrent runs serialized, faulted runs whose record equals what
is live. The real `invoke` and wrangler against the emulator; no contention is forced.

* ``--rounds N``: N rounds of two `invoke deploy-env silo staging` started together. A round is
  serialized when the two wrangler runs' API calls do not interleave and the ledger's last
  success is the version live at the end.
* ``--faulted N``: N deploys, each under a persistent 500 on one of the calls `wrangler deploy`
  makes after the upload (account subdomain, script subdomain GET and POST, in turn). A run is
  correct when its record is ``success`` with the live version and exactly one deployment and
  one upload were added.

Usage: .venv/bin/python benchmarks/soak_record_truth.py [--rounds 10] [--faulted 9]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from timing import BIN, ENV, ROOT

from dome_tasks.lifecycle.ledger import Ledger
from dome_tasks.testing.emulator import Emulator

DEPLOY = ("deploy-env", "silo", "staging", "--no-build", "--no-verify", "--no-migrate")
FAULTS = (("GET", r"/workers/subdomain$"), ("GET", r"/scripts/silo-staging/subdomain$"),
          ("POST", r"/scripts/silo-staging/subdomain$"))


def workspace(root: Path) -> Path:
    shutil.copytree(ROOT / "sample", root / "sample", ignore=shutil.ignore_patterns(".dome"))
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    return root


def invoke(work: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "invoke"), *DEPLOY], cwd=work, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def interleaved(emulator: Emulator) -> bool:
    marks = [r.method for r in emulator.requests
             if (r.method == "GET" and r.path.endswith("/workers/services/silo-staging"))
             or (r.method == "POST" and r.path.endswith("/scripts/silo-staging/subdomain"))]
    return marks != ["GET", "POST", "GET", "POST"]


def rounds(count: int) -> tuple[int, int]:
    serialized = waited = 0
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emulator:
        work = workspace(Path(tmp))
        env = {**ENV, **emulator.env(), "NO_COLOR": "1"}
        subprocess.run([str(BIN / "invoke"), *DEPLOY], cwd=work, env=env, check=True,
                       capture_output=True)
        ledger = Ledger(work / "sample" / ".dome" / "ledger.jsonl")
        for _ in range(count):
            emulator.clear_requests()
            runs = [invoke(work, env), invoke(work, env)]
            errors = [run.communicate(timeout=600)[1] for run in runs]
            live = emulator.state.worker("silo-staging").current_version().id
            last = [r for r in ledger.read().records if r.kind == "deploy" and r.ok][-1]
            ok = all(run.returncode == 0 for run in runs) and not interleaved(emulator)
            serialized += ok and last.version_id == live
            waited += any("waiting for pid" in text for text in errors)
    return serialized, waited


def faulted(count: int) -> int:
    correct = 0
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emulator:
        work = workspace(Path(tmp))
        env = {**ENV, **emulator.env(), "NO_COLOR": "1"}
        subprocess.run([str(BIN / "invoke"), *DEPLOY], cwd=work, env=env, check=True,
                       capture_output=True)
        ledger = Ledger(work / "sample" / ".dome" / "ledger.jsonl")
        worker = emulator.state.worker("silo-staging")
        for n in range(count):
            method, path = FAULTS[n % len(FAULTS)]
            emulator.faults.clear()
            emulator.faults.add(path=path, method=method, status=500, times=None)
            deployments = len(worker.deployments)
            uploads = len(emulator.requests_matching("POST", "/scripts/silo-staging/versions$"))
            done = subprocess.run([str(BIN / "invoke"), *DEPLOY], cwd=work, env=env,
                                  capture_output=True, check=False)
            record = ledger.read().records[-1]
            correct += (
                done.returncode == 1  # wrangler's failure still fails the run …
                and record.ok  # … but the record says the new version is live
                and "wrangler failed after it went live" in record.extra.get("warning", "")
                and record.version_id == worker.current_version().id
                and len(worker.deployments) == deployments + 1
                and len(emulator.requests_matching("POST", "/scripts/silo-staging/versions$"))
                == uploads + 1
            )
    return correct


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--faulted", type=int, default=9)
    args = parser.parse_args()
    if args.rounds:
        serialized, waited = rounds(args.rounds)
        print(f"concurrent rounds serialized with a true record: {serialized} of {args.rounds} "
              f"(one run waited, naming the other, in {waited})")
    if args.faulted:
        print(f"faulted deploys whose record equals what is live, one deployment each: "
              f"{faulted(args.faulted)} of {args.faulted}")


if __name__ == "__main__":
    main()
