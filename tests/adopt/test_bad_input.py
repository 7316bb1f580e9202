"""Bad words on the command line: one clear message, exit 2, no traceback, no wrangler call."""

from __future__ import annotations

from pathlib import Path

import pytest

from dome_tasks.testing.emulator import Emulator
from tests.adopt.adopt_helpers import invoke

pytestmark = pytest.mark.integration


@pytest.fixture
def imported(redeclared: Path) -> Path:
    assert invoke(redeclared, "import").returncode == 0
    return redeclared


@pytest.mark.parametrize(("args", "message"), [
    (("diff", "sillo", "staging"), "unknown service 'sillo'; did you mean 'silo'?"),
    (("diff", "silo", "stagin"), "unknown environment 'stagin'; did you mean 'staging'?"),
    (("provision", "prodd"), "unknown environment 'prodd'; did you mean 'prod'?"),
    (("diff", "silo", "staging", "--against", "nowhere/wrangler.toml"), "cannot read"),
    (("diff", "silo", "local"), "local runs on this machine: there is nothing live to compare"),
])
def test_one_clear_message_and_nothing_called(imported, emulator: Emulator, args, message) -> None:
    done = invoke(imported, *args, emulator=emulator)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert emulator.requests == []


def test_import_of_a_folder_without_configs(tmp_path: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "__init__.py").write_text(
        'from dome_tasks.collection import namespace\nns = namespace(manifest="dome.yaml")\n')
    done = invoke(tmp_path, "import")
    assert done.returncode == 2
    assert "no wrangler config (wrangler.toml, wrangler.json, wrangler.jsonc) under" in done.stderr
    assert "run `invoke import` at the root of the monorepo" in done.stderr
    assert not (tmp_path / "dome.yaml").exists()
