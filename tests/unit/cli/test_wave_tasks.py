"""Task level (MockContext: nothing may run): dry runs show the waves; --jobs is checked."""

from __future__ import annotations

import pytest
from invoke import Config, MockContext
from invoke.exceptions import Exit

from dome_tasks.cli import deploy as deploy_tasks
from tests.helpers import SAMPLE


def mock(tmp_path) -> MockContext:
    return MockContext(config=Config(overrides={"dome": {
        "manifest": str(SAMPLE / "dome.yaml"), "ledger": str(tmp_path / "ledger.jsonl")}}))


def test_a_dry_run_shows_the_waves(tmp_path, capsys):
    deploy_tasks.deploy_env(mock(tmp_path), "all", "staging", dry_run=True, no_build=True)
    lines = capsys.readouterr().out.splitlines()
    waves = [line for line in lines if line.startswith("wave ")]
    assert waves == ["wave 1/3: silo", "wave 2/3: constellation", "wave 3/3: dome-api"]
    # each wave's steps come after its line
    assert lines.index("wave 2/3: constellation") < lines.index("→ deploy constellation-staging (staging)")
    assert lines.index("→ deploy silo-staging (staging)") < lines.index("wave 2/3: constellation")


def test_migrations_dry_run_runs_nothing(tmp_path, capsys):
    deploy_tasks.db_migrate_staging(mock(tmp_path), dry_run=True)
    out = capsys.readouterr().out
    assert "→ apply D1 migrations of silo-db-staging (staging)" in out


@pytest.mark.parametrize("jobs", ["many", "-1"])
def test_bad_jobs_is_one_clear_error(tmp_path, jobs):
    with pytest.raises(Exit) as info:
        deploy_tasks.deploy_env(mock(tmp_path), "all", "staging", dry_run=True, jobs=jobs)
    assert "--jobs" in info.value.message and "whole number" in info.value.message
