"""Render 200 generated services x 3 environments (goal: under 1 s on this machine).

Prints, measured in one run: loading + validating the manifest, rendering all 600 configs in
memory (TOML parse-back included), the first atomic write of all files (fsync each), and a
write with nothing changed. Each but the first write is the median of ``--runs`` rounds after
one warm-up round (imports and first-use caches are not what a repeated run pays).
Usage: .venv/bin/python benchmarks/bench_render.py [--runs 5]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from timing import runs_argument

from dome_tasks.manifest.loader import load
from dome_tasks.render.config import config_path, render_config, write_config

SERVICES = 200
ENVIRONMENTS = ("development", "staging", "production")
ACCOUNT = "0123456789abcdef0123456789abcdef"


def manifest_text(count: int) -> str:
    lines = [
        "version: 1",
        "defaults:",
        '  compatibility_date: "2025-01-01"',
        "  vars: { LOG_LEVEL: info }",
        "environments:",
        f'  development: {{ suffix: "-dev", account_id: "{ACCOUNT}" }}',
        f'  staging: {{ suffix: "-staging", account_id: "{ACCOUNT}" }}',
        f'  production: {{ suffix: "", account_id: "{ACCOUNT}", protected: true }}',
        "services:",
    ]
    for n in range(count):
        lines += [
            f"  svc-{n}:",
            "    main: src/index.js",
            f"    vars: {{ SERVICE_NAME: svc-{n}, INDEX: {n} }}",
            f'    d1_databases: {{ DB: {{ database_name: db-{n}, database_id: "00000000-0000-4000-8000-{n:012d}" }} }}',
            f'    kv_namespaces: {{ CACHE: {{ id: "{n:032x}" }} }}',
        ]
        if n:
            lines.append(f"    services: {{ PREV: svc-{n - 1} }}")
        lines.append("    environments:")
        for e, env in enumerate(ENVIRONMENTS[:2], 1):
            lines += [
                f"      {env}:",
                f'        d1_databases: {{ DB: {{ database_name: db-{n}-{env}, database_id: "00000000-0000-4000-{e}000-{n:012d}" }} }}',
                f'        kv_namespaces: {{ CACHE: {{ id: "{e:x}{n:031x}" }} }}',
            ]
    return "\n".join(lines) + "\n"


def timed(label: str, func, budget_ms: float | None = None, runs: int = 1) -> object:
    """Print the median milliseconds of ``runs`` calls of ``func`` (after one warm-up call
    when ``runs`` > 1); return what the last call returned."""
    value = func() if runs > 1 else None
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        value = func()
        samples.append((time.perf_counter() - started) * 1000)
    elapsed = statistics.median(samples)
    ratio = f"  {elapsed / budget_ms:5.2f}x of the {budget_ms:.0f} ms goal" if budget_ms else ""
    spread = f"  ({min(samples):.1f}-{max(samples):.1f}, {runs} runs)" if runs > 1 else ""
    print(f"  {label:<36} {elapsed:8.1f} ms{ratio}{spread}")
    return value


def main() -> None:
    runs = runs_argument(5)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dome.yaml"
        path.write_text(manifest_text(SERVICES))
        for n in range(SERVICES):  # loading checks that every service's main file exists
            main = Path(tmp) / f"services/svc-{n}/src/index.js"
            main.parent.mkdir(parents=True)
            main.write_text("export default {};\n")
        print(f"{SERVICES} services x {len(ENVIRONMENTS)} environments")
        manifest = timed("load + validate + resolve", lambda: load(path), runs=runs)

        def render_all_in_memory():
            out = []
            for env in ENVIRONMENTS:
                for service in manifest.services:
                    target = config_path(manifest.root, env, service)
                    text = render_config(manifest.resolve(service, env), manifest_path=path, out_path=target)
                    out.append((text, target))
            return out

        rendered = timed("render 600 configs (in memory)", render_all_in_memory, 1000, runs)
        timed("write 600 files (atomic, fsync each)", lambda: [write_config(t, p) for t, p in rendered])
        timed("write again (unchanged: no writes)",
              lambda: [write_config(t, p) for t, p in rendered], runs=runs)


if __name__ == "__main__":
    main()
