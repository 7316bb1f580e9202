"""Bringing up the sample stack locally: dome-tasks against bare `wrangler dev`, side by side.

dome-tasks: `invoke deploy-env all local` from a cold state folder (render, D1 migrations, three
`wrangler dev` processes in three dependency waves, health checks, the status table), then the
redeploys `invoke deploy-env dome-api local` and `invoke deploy-env silo local` (silo has a D1
database with migrations). Bare: what a user would type by hand for the same result: silo's
`wrangler d1 migrations apply --local`, then the three rendered configs started with
`wrangler dev` (same flags, same registry) all at once, waiting until each /health answers 200;
for a redeploy, one `wrangler dev` of that service. Goal: each ratio <= 1.2.
Usage: .venv/bin/python benchmarks/bench_local_stack.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from timing import BIN, ENV, ROOT, compile_sources

from dome_tasks.local.wrangler import dev_argv, migrations_apply_argv, wrangler_env

SERVICES = ("silo", "constellation", "dome-api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


def bare_stack(work: Path, services: tuple[str, ...] = SERVICES, migrate: bool = True) -> float:
    """Migrate silo's D1, then start the rendered local configs with plain `wrangler dev`;
    seconds until every /health answers 200 (then stop them)."""
    state = work / "bare-state"
    if migrate:
        shutil.rmtree(state, ignore_errors=True)
    env = wrangler_env(state, ENV)
    wrangler = ROOT / "node_modules/.bin/wrangler"
    started = time.perf_counter()
    if migrate:
        silo = work / "sample/.dome/build/local/silo/wrangler.toml"
        subprocess.run(migrations_apply_argv(wrangler, silo, "silo-db", state), cwd=silo.parent, env=env,
                       check=True, capture_output=True, stdin=subprocess.DEVNULL)
    processes, urls, logs = [], [], []
    for service in services:
        config = work / f"sample/.dome/build/local/{service}/wrangler.toml"
        port = free_port()
        argv = dev_argv(wrangler, config, state, host="127.0.0.1", port=port, inspector_port=free_port())
        logs.append(work / f"bare-{service}.log")
        with logs[-1].open("wb") as log:
            processes.append(subprocess.Popen(argv, cwd=config.parent, env=env, stdin=subprocess.DEVNULL,
                                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        urls.append(f"http://127.0.0.1:{port}/health")
    try:
        deadline = started + 60
        for url, process, log in zip(urls, processes, logs):
            while not healthy(url):
                if time.perf_counter() > deadline or process.poll() is not None:
                    raise BareFailed(f"bare wrangler dev did not answer {url} (exit {process.poll()}):\n"
                                     + "\n".join(log.read_text(errors="replace").splitlines()[:15]))
                time.sleep(0.05)
        return time.perf_counter() - started
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()


class BareFailed(Exception):
    """A bare `wrangler dev` died (e.g. workerd's SQLITE_BUSY race when several start on one
    state folder, which dome-tasks retries and a user would too)."""


def bare_retried(work: Path, *args, **kwargs) -> float:
    """:func:`bare_stack`, run again (up to twice) when it lost a startup race."""
    for attempt in range(3):
        try:
            return bare_stack(work, *args, **kwargs)
        except BareFailed as failed:
            print(f"(bare run discarded and repeated: {failed})", file=sys.stderr)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def ours(work: Path, *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "invoke"), "deploy-env", *args, "local"], cwd=work, env=ENV,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if done.returncode:
        sys.exit(f"invoke deploy-env {' '.join(args)} local failed:\n{done.stdout}{done.stderr}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    compile_sources()
    cold, redeploy, bare, bare_one, redeploy_silo, bare_silo = [], [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "sample", work / "sample", ignore=shutil.ignore_patterns(".dome"))
        shutil.copytree(ROOT / "tasks", work / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(ROOT / "justfile", work / "justfile")
        (work / "node_modules").symlink_to(ROOT / "node_modules")
        try:
            for _ in range(runs):
                subprocess.run([str(BIN / "invoke"), "stop"], cwd=work, env=ENV, capture_output=True, check=False)
                shutil.rmtree(work / "sample/.dome/local", ignore_errors=True)
                cold.append(ours(work, "all"))
                redeploy.append(ours(work, "dome-api"))
                redeploy_silo.append(ours(work, "silo"))
                subprocess.run([str(BIN / "invoke"), "stop"], cwd=work, env=ENV, capture_output=True, check=False)
                bare.append(bare_retried(work))
                bare_one.append(bare_retried(work, ("dome-api",), migrate=False))
                bare_silo.append(bare_retried(work, ("silo",), migrate=False))
        finally:
            subprocess.run([str(BIN / "invoke"), "stop"], cwd=work, env=ENV, capture_output=True, check=False)
    med = statistics.median
    print(f"sample stack on workerd, median of {runs} interleaved runs")
    print(f"  cold stack: bare migrate + wrangler dev x3 : {med(bare):6.2f} s")
    print(f"  cold stack: invoke deploy-env all local    : {med(cold):6.2f} s"
          f"   ratio {med(cold) / med(bare):.2f}x (goal <= 1.2x)")
    print(f"  redeploy:   bare wrangler dev of dome-api  : {med(bare_one):6.2f} s")
    print(f"  redeploy:   invoke deploy-env dome-api local: {med(redeploy):6.2f} s"
          f"   ratio {med(redeploy) / med(bare_one):.2f}x (goal <= 1.2x)")
    print(f"  redeploy:   bare wrangler dev of silo      : {med(bare_silo):6.2f} s")
    print(f"  redeploy:   invoke deploy-env silo local   : {med(redeploy_silo):6.2f} s"
          f"   ratio {med(redeploy_silo) / med(bare_silo):.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
