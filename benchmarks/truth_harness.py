"""Does the record tell the truth under faults and signals? The real `invoke deploy-env silo
staging` (real wrangler, real signals) against the emulator; after each run the real `invoke
history` and `invoke status` must name exactly the version the emulator serves, and one deploy
may upload at most one version.

* faults: every API call kind one deploy makes (found by watching a clean deploy: wrangler's
  calls and dome's own), each under 500 once, 429 once, 503 for good, a dropped connection, and
  (on the upload and the activation) a hang past the command deadline whose request lands;
* signals: SIGINT (to the process group, as a terminal's Ctrl-C) and SIGTERM (to the process),
  in each phase: build, upload, activation (the held request lands afterwards), verification.

Prints, per kind, how many runs held (n/n held), and every run that did not.
Usage: .venv/bin/python benchmarks/truth_harness.py [--only faults|signals] [--quick]
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from timing import BIN, ENV, ROOT, compile_sources

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.truth import PHASES, Harness, HealthServer

ACCOUNT = "0123456789abcdef0123456789abcdef"  # the sample manifest's account
#: The workspace's build: held (a marker, then a sleep) when $DOME_TRUTH_HOLD is set.
BUILD = """
build-pkg service:
    @if [ -n "${DOME_TRUTH_HOLD:-}" ]; then touch "$DOME_TRUTH_HOLD"; sleep 60; fi
"""
FAULTS = {
    "500 once": {"status": 500},
    "429 once": {"status": 429},
    "503 for good": {"status": 503, "times": None},
    "dropped connection": {"drop": True},
}
HANG = {"delay": 14, "lands": True, "command_timeout": 10}  # past the deadline, then lands
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{32}")


def workspace(root: Path) -> Path:
    shutil.copytree(ROOT / "sample", root / "sample", ignore=shutil.ignore_patterns(".dome"))
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "node_modules").symlink_to(ROOT / "node_modules")
    (root / "justfile").write_text(BUILD)
    return root


def call_kinds(harness: Harness) -> list[tuple[str, str]]:
    """(method, path pattern) of every API call one deploy of an existing worker makes, in
    order, ids generalised."""
    first = harness.run(*harness.deploy_args())  # creates the worker
    assert first.returncode == 0, first.stdout + first.stderr
    harness.emulator.clear_requests()
    done = harness.run(*harness.deploy_args())
    assert done.returncode == 0, done.stdout + done.stderr
    kinds: list[tuple[str, str]] = []
    for request in harness.emulator.requests:
        pattern = ID.sub("[^/]+", re.escape(request.path).replace(r"\-", "-")) + "$"
        pattern = pattern.replace(re.escape(ACCOUNT), "[^/]+")
        if (request.method, pattern) not in kinds:
            kinds.append((request.method, pattern))
    return kinds


def short(method: str, pattern: str) -> str:
    return f"{method} {pattern.replace('[^/]+', '*').rstrip('$').split('/accounts/*', 1)[-1]}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("faults", "signals"))
    parser.add_argument("--quick", action="store_true",
                        help="only the upload and activation calls, and SIGINT")
    args = parser.parse_args()
    compile_sources()
    held: dict[str, list[bool]] = defaultdict(list)
    broken: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, Emulator(account_id=ACCOUNT) as emulator:
        health = HealthServer(emulator)
        with health.running():
            env = {**ENV, **emulator.env(), "NO_COLOR": "1", "DOME_ACTOR": "truth-harness",
                   "INVOKE_DOME_HEALTH_BASE_URL": health.origin,
                   "INVOKE_DOME_WORKERS_SUBDOMAIN": emulator.state.subdomain,
                   "INVOKE_DOME_VERIFY_DEADLINE": "5",
                   "PATH": f"{BIN}:{ENV.get('PATH', '')}"}
            harness = Harness(emulator, workspace(Path(tmp)), BIN / "invoke", env, health)
            kinds = call_kinds(harness)

            def note(kind: str, case: str, code: int, verdict) -> None:
                held[kind].append(verdict.held)
                mark = "held" if verdict.held else f"BROKEN: {verdict.why}"
                print(f"  {kind:<22} {case:<58} exit {code:<3} {mark}", flush=True)
                if not verdict.held:
                    broken.append(f"{kind}: {case}: {verdict.why}")

            if args.only in (None, "faults"):
                for method, pattern in kinds:
                    call = short(method, pattern)
                    upload_or_activation = method == "POST" and pattern.endswith(
                        ("/versions$", "/deployments$")) and "silo-staging" in pattern
                    if args.quick and not upload_or_activation:
                        continue
                    cases = dict(FAULTS)
                    if upload_or_activation:
                        cases["hang past the deadline"] = HANG
                    for name, fault in cases.items():
                        code, verdict = harness.fault(method, pattern, **dict(fault))
                        note(name, call, code, verdict)
            if args.only in (None, "signals"):
                signums = (signal.SIGINT,) if args.quick else (signal.SIGINT, signal.SIGTERM)
                for phase in PHASES:
                    for signum in signums:
                        code, verdict = harness.signal(phase, signum)
                        expected = 128 + signum
                        if code != expected:
                            verdict = type(verdict)(False, f"exit {code}, not {expected}")
                        note(f"{signal.Signals(signum).name} in {phase}", "", code, verdict)
    print("\nthe record names what serves, per kind:")
    for kind, results in held.items():
        print(f"  {kind:<26} {sum(results)}/{len(results)} held")
    total = [r for results in held.values() for r in results]
    print(f"  {'all':<26} {sum(total)}/{len(total)} held")
    for line in broken:
        print(f"  broken: {line}")


if __name__ == "__main__":
    main()
