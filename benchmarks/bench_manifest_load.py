"""Loading dome.yaml: the schema pass run (cold) against a text that passed before (cached),
side by side in one run, for the sample manifest and a generated 200-service one.

In a fresh process (what every command pays: the cached load does not import jsonschema) and
repeated in one process (the validation itself). Goal: the cached load is never slower than the
walker it replaced (sample ~3 ms, 200 services ~107 ms in-process on this machine).
Usage: .venv/bin/python benchmarks/bench_manifest_load.py [--runs 9]
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_render import manifest_text
from timing import ROOT, interleaved, runs_argument, timed

from dome_tasks.manifest.loader import load

LOAD = ("import sys; from dome_tasks.manifest.loader import load; "
        "load(sys.argv[1], check_files=False)")


def in_process(path: Path, cached: bool, runs: int) -> float:
    """Median seconds of ``load``: cold (the cache removed first) or cached."""
    cache = path.parent / ".dome" / "cache"
    load(path, check_files=False)  # warm-up: imports, compiled validator, the cache written
    samples = []
    for _ in range(runs):
        if not cached:
            shutil.rmtree(cache, ignore_errors=True)
        started = time.perf_counter()
        load(path, check_files=False)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def fresh_process(path: Path, cached: bool) -> float:
    if not cached:
        shutil.rmtree(path.parent / ".dome" / "cache", ignore_errors=True)
    return timed([sys.executable, "-c", LOAD, str(path)], ROOT)


def main() -> None:
    runs = runs_argument(9)
    with tempfile.TemporaryDirectory() as work:
        sample = Path(work) / "sample"
        shutil.copytree(ROOT / "sample", sample, ignore=shutil.ignore_patterns(".dome"))
        big = Path(work) / "big"
        big.mkdir()
        (big / "dome.yaml").write_text(manifest_text(200), encoding="utf-8")
        for project in (sample, big):  # the cache lives in a project's own .dome folder
            (project / ".dome").mkdir()
        print(f"load() of dome.yaml, median of {runs} runs: cold (schema pass) vs cached")
        print(f"  {'':28}{'cold':>10}{'cached':>10}{'ratio':>8}")
        for label, path in (("sample", sample / "dome.yaml"), ("200 services", big / "dome.yaml")):
            cold, cached = interleaved(runs, lambda p=path: fresh_process(p, False),
                                       lambda p=path: fresh_process(p, True))
            _row(f"{label}, fresh process", cold, cached)
            cold, cached = in_process(path, False, runs), in_process(path, True, runs)
            _row(f"{label}, in process", cold, cached)


def _row(label: str, cold: float, cached: float) -> None:
    print(f"  {label:28}{cold * 1000:8.1f}ms{cached * 1000:8.1f}ms{cached / cold:7.2f}x")


if __name__ == "__main__":
    main()
