"""README "Adopting it", followed literally in a fresh monorepo against the emulator.

The commands are read from the README's own code blocks (so the README cannot drift from what
works): `tasks/__init__.py` from its Python block, then every `invoke …` line of its bash
blocks, in order, run as a user runs them. `pip install dome-tasks` is this test's venv. The
emulator runs no workers and the imported manifest checks no health URL (`health_path: null`,
as `wrangler deploy` checks none), so the README's deploy runs exactly as written.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest

from dome_tasks.manifest.loader import load
from dome_tasks.testing.emulator import Emulator
from tests.adopt.adopt_helpers import copy_fixture, invoke
from tests.helpers import ROOT

pytestmark = pytest.mark.integration

#: Resources the monorepo already has before adopting (declared in its configs).
EXISTING = {
    "redeclared": lambda s: (s.add_d1("silo-db-staging", "00000000-0000-4000-8000-000000000003"),
                             s.add_kv("silo-cache-staging", "0123456789abcdef0123456789abcd03"),
                             s.add_vectorize("api-index", 32, "cosine")),
    "monorepo": lambda s: (s.add_d1("silo-db-staging", "00000000-0000-4000-8000-000000000003"),
                           s.add_vectorize("constellation-index", 768, "cosine")),
}


def readme_steps() -> tuple[str, list[list[str]]]:
    """The Python of tasks/__init__.py and the invoke command lines of "Adopting it"."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Adopting it", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    python = next(body for lang, body in blocks if lang == "python")
    commands = []
    for lang, body in blocks:
        if lang != "bash":
            continue
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "invoke":
                commands.append(words[1:])
    return python, commands


def test_the_readme_names_the_steps_in_order() -> None:
    _, commands = readme_steps()
    assert [c[0] for c in commands] == ["import", "provision", "provision", "diff", "diff",
                                       "deploy-env"]


@pytest.mark.parametrize(
    "fixture", ["redeclared", "monorepo"])
def test_a_new_user_follows_the_readme_to_a_first_staging_deploy(
    fixture: str, tmp_path: Path, emulator: Emulator, guard: dict[str, str],
) -> None:
    project = copy_fixture(fixture, tmp_path / fixture)
    python, commands = readme_steps()
    (project / "tasks" / "__init__.py").write_text(textwrap.dedent(python), encoding="utf-8")
    EXISTING[fixture](emulator.state)
    for words in commands:
        done = invoke(project, *words, emulator=emulator, guard=guard)
        wanted = (1,) if words[0] == "diff" else (0,)  # diff: 1 = there are changes
        assert done.returncode in wanted, f"invoke {shlex.join(words)}:\n{done.stdout}{done.stderr}"
        if words[0] == "import":
            assert "configs adopt true, judged by wrangler" in done.stdout
    manifest = load(project / "dome.yaml")
    for service in manifest.services_in("staging"):
        worker = manifest.resolve(service, "staging")
        live = emulator.state.worker(worker.name).current_version()
        assert {b["name"] for b in live.bindings} >= {s.binding for s in worker.services}
    silo = emulator.state.worker("silo-staging").current_version()
    assert silo.binding("DB")["id"] == "00000000-0000-4000-8000-000000000003"
    assert silo.binding("BUCKET")["bucket_name"] == "silo-objects-staging"
    # the namespace provision made (or found) is the one bound: wrangler created no other
    (cache,) = [ns for ns in emulator.state.kv.values() if ns.title == "silo-cache-staging"]
    assert silo.binding("CACHE")["namespace_id"] == cache.id
    # no other namespace: the shared history and the locks are in D1 (dome-state)
    assert sorted(ns.title for ns in emulator.state.kv.values()) == ["silo-cache-staging"]
    assert not emulator.state.workers.keys() - {
        manifest.resolve(s, "staging").name for s in manifest.services_in("staging")
    }  # staging only, and only what the repository deploys to staging today
