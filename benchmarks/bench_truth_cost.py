"""The truth stays cheap: dome-tasks' reads and writes of the record (the live deployment, the
versions beside wrangler's start, the shared history in KV) against a far-away API.

The emulator answers every API call 100 ms late (``Emulator(latency=0.1)``), and the two sides
run interleaved: bare `wrangler deploy --config <rendered silo-staging>` versus `invoke
deploy-env silo staging --no-build --no-verify --force` on the same rendered config.
Goal: ratio <= 1.15 (dome's added wall time at most 15%). The bare command started the way
dome starts wrangler (one node, Node's compile cache) is timed after them, for what is dome's own.
Usage: .venv/bin/python benchmarks/bench_truth_cost.py [--runs 5] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from timing import (BIN, ENV, as_dome_starts_it, compile_sources, interleaved, sample_workspace,
                    timed)

from dome_tasks.testing.emulator import Emulator
from dome_tasks.tools import with_node


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per API call")
    args = parser.parse_args()
    compile_sources()
    with tempfile.TemporaryDirectory() as tmp, Emulator(latency=args.latency) as emulator:
        work = sample_workspace(Path(tmp))
        env = {**ENV, **emulator.env(), "NO_COLOR": "1"}
        env["PATH"] = with_node(env)["PATH"]  # the node dome-tasks runs wrangler on, for both
        ours = [str(BIN / "invoke"), "deploy-env", "silo", "staging", "--no-build", "--no-verify",
                "--force"]
        timed(ours, work, env)  # first deploy: creates the worker and renders the config
        config = work / "sample/.dome/build/staging/silo/wrangler.toml"
        bare = [str(work / "node_modules/.bin/wrangler"), "deploy", "--config", str(config)]
        bare_env = {**env, "WRANGLER_HIDE_BANNER": "true"}
        started, started_env = as_dome_starts_it(bare, bare_env, Path(tmp) / "compile-cache")
        timed(started, config.parent, started_env)  # fills the compile cache, as dome's first run
        emulator.clear_requests()
        bare_m, ours_m = interleaved(
            args.runs, lambda: timed(bare, config.parent, bare_env), lambda: timed(ours, work, env)
        )
        calls = len(emulator.requests) / (2 * args.runs)
        (started_m,) = interleaved(args.runs, lambda: timed(started, config.parent, started_env))
    print(f"deploy silo-staging, every API call {args.latency * 1000:.0f} ms late, median of "
          f"{args.runs} interleaved runs ({calls:.0f} calls per pair)")
    print(f"  bare wrangler deploy          : {bare_m * 1000:7.0f} ms")
    print(f"  invoke deploy-env (dome-tasks): {ours_m * 1000:7.0f} ms")
    print(f"  ratio                         : {ours_m / bare_m:7.2f}x  (goal <= 1.15x)")
    print(f"  bare, started as dome does    : {started_m * 1000:7.0f} ms  (one node, compile "
          f"cache: dome's own reads and writes cost {(ours_m - started_m) * 1000:.0f} ms)")


if __name__ == "__main__":
    main()
