"""Helpers for the adoption tests: the fixture corpus and the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dome_tasks.adopt.intent import compute
from dome_tasks.adopt.judge import WranglerReader, judge
from dome_tasks.adopt.read import find_configs, read
from dome_tasks.manifest.wrangler_schema import load_schema
from dome_tasks.testing.emulator import Emulator
from tests.helpers import ROOT, VENV_BIN, run_env

FIXTURES = Path(__file__).parent / "fixtures"
ACCOUNT = "0123456789abcdef0123456789abcdef"  # every fixture config's account_id
TASKS = 'from dome_tasks.collection import namespace\nns = namespace(manifest="dome.yaml")\n'


def copy_fixture(name: str, target: Path, *, source: Path = FIXTURES) -> Path:
    """A copy of ``<source>/<name>`` (the fixtures, or the corpus) with tasks/ and the pinned
    wrangler linked."""
    shutil.copytree(source / name, target)
    (target / "tasks").mkdir()
    (target / "tasks" / "__init__.py").write_text(TASKS, encoding="utf-8")
    bin_dir = target / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "wrangler").symlink_to(ROOT / "node_modules" / ".bin" / "wrangler")
    return target


def invoke(project: Path, *args: str, emulator: Emulator | None = None,
           guard: dict[str, str] | None = None, timeout: float = 300
           ) -> subprocess.CompletedProcess[str]:
    """Run ``invoke ARGS`` in ``project`` as a user would (against the emulator if given)."""
    extra = dict(guard or {})
    if emulator is not None:
        extra.update(emulator.env())
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=project, env=run_env(**extra),
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )


def rendered_equals_intent(project: Path) -> int:
    """Render every config with `invoke render` (on disk) and let wrangler judge each file
    against the original with --env (the contract); returns how many were judged."""
    done = invoke(project, "render")
    assert done.returncode == 0, done.stdout + done.stderr
    adoption = compute([read(p) for p in find_configs(project)], project)
    pairs, keys = [], []
    for service, env in adoption.intents:
        source = adoption.service(service)
        if env not in source.blocks:
            continue
        path = project / ".dome" / "build" / env / service / "wrangler.toml"
        pairs += [(source.file.path, source.blocks[env]), (source.file.path, None), (path, None)]
        keys.append((service, env))
    readings = WranglerReader.for_project(project).read(pairs)
    schema = load_schema(project)
    for i, (service, env) in enumerate(keys):
        original, top, rendered = readings[3 * i: 3 * i + 3]
        verdict = judge(original, rendered, top, schema=schema,
                        production=adoption.environment(env).protected)
        assert verdict.ok, f"{service} in {env}: " + "; ".join(map(str, verdict.violations))
    return len(keys)
