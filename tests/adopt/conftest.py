"""Fixtures for adopting a monorepo: copies of the corpus, the emulator, a network guard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import Tripwire, guard_env, violations
from tests.adopt.adopt_helpers import ACCOUNT, copy_fixture


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The varied monorepo corpus (5 workers, TOML/JSON/JSONC, every binding kind)."""
    return copy_fixture("monorepo", tmp_path / "monorepo")


@pytest.fixture
def redeclared(tmp_path: Path) -> Path:
    """A small monorepo whose env blocks re-declare every resource with its own id."""
    return copy_fixture("redeclared", tmp_path / "redeclared")


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A strict emulator: unknown databases, queues and zones do not spring into existence."""
    with Emulator(account_id=ACCOUNT, auto_create=False) as emu:
        emu.state.triggers.add_zone("example.com")
        yield emu


@pytest.fixture
def guard(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment for subprocesses that fails the test if anything leaves 127.0.0.1."""
    tripwire = Tripwire()
    folder = tmp_path / "netguard"
    env = guard_env(folder, tripwire=tripwire)
    yield env
    tripwire.close()
    assert violations(folder) == [], "something tried to reach a host other than loopback"
    assert tripwire.hits == [], "something went through the (tripwire) proxy"
