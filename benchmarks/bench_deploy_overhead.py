"""dome-tasks' overhead over the bare `wrangler deploy` it wraps, both against the emulator.

Side by side, interleaved: `wrangler deploy --config <rendered silo-staging>` versus
`invoke deploy-env silo staging --no-build --no-verify --force` (load + validate the manifest,
render, the inputs' digest, hermetic environment, wrangler, output file, ledger, summary;
``--force``: nothing changes between runs, and the no-op skip would otherwise skip it). A third
side is the floor any invoke task pays: `wrangler deploy` run from an otherwise empty invoke task.
A fourth is the same bare `wrangler deploy` started the way dome starts it (one node, Node's
compile cache): the gap between it and dome is dome's own work.
Goal: ratio <= 1.15 (against the bare `wrangler deploy` a user types).
Usage: .venv/bin/python benchmarks/bench_deploy_overhead.py [--runs 5]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from timing import (BIN, ENV, as_dome_starts_it, interleaved, runs_argument, sample_workspace,
                    timed)

from dome_tasks.testing.emulator import Emulator

# invoke's own floor: a task that only runs the same `wrangler deploy`.
EMPTY_TASK = """import subprocess
from invoke import task


@task
def wrangler(c):
    subprocess.run({argv!r}, check=True)
"""


def main() -> None:
    runs = runs_argument(5)
    with tempfile.TemporaryDirectory() as tmp, Emulator() as emulator:
        work = sample_workspace(Path(tmp))
        env = {**ENV, **emulator.env(), "NO_COLOR": "1"}
        ours = [str(BIN / "invoke"), "deploy-env", "silo", "staging", "--no-build", "--no-verify",
                "--force"]
        timed(ours, work, env)  # first deploy: creates the worker and renders the config
        config = work / "sample/.dome/build/staging/silo/wrangler.toml"
        bare = [str(work / "node_modules/.bin/wrangler"), "deploy", "--config", str(config)]
        bare_env = {**env, "WRANGLER_HIDE_BANNER": "true"}
        empty = work / "empty"
        empty.mkdir()
        (empty / "tasks.py").write_text(EMPTY_TASK.format(argv=bare))
        floor = [str(BIN / "invoke"), "wrangler"]
        started, started_env = as_dome_starts_it(bare, bare_env, Path(tmp) / "compile-cache")
        timed(started, config.parent, started_env)  # fills the compile cache, as dome's first run
        bare_m, started_m, floor_m, ours_m = interleaved(
            runs, lambda: timed(bare, config.parent, bare_env),
            lambda: timed(started, config.parent, started_env),
            lambda: timed(floor, empty, bare_env), lambda: timed(ours, work, env),
        )
    print(f"deploy silo-staging to the emulator, median of {runs} interleaved runs")
    print(f"  bare wrangler deploy          : {bare_m * 1000:7.0f} ms")
    print(f"  the same, started as dome does: {started_m * 1000:7.0f} ms  ({started_m / bare_m:.2f}x)")
    print(f"  the same from an empty task   : {floor_m * 1000:7.0f} ms  ({floor_m / bare_m:.2f}x)")
    print(f"  invoke deploy-env (dome-tasks): {ours_m * 1000:7.0f} ms")
    print(f"  ratio                         : {ours_m / bare_m:7.2f}x  (goal <= 1.15x)")
    print(f"  dome's own work               : {(ours_m - started_m) * 1000:7.0f} ms over the "
          f"wrangler it starts ({ours_m / started_m:.2f}x)")


if __name__ == "__main__":
    main()
