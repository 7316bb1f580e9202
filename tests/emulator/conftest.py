"""Fixtures: an emulator, a network guard on every wrangler run, a wrangler runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from emulator_helpers import WRANGLER, Wrangler, write_project

from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.netguard import Tripwire, guard_env, violations


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def network_guard(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Guard env for every wrangler run of the test; fails the test on any outside contact."""
    tripwire = Tripwire()
    workdir = tmp_path / "netguard"
    env = guard_env(workdir, tripwire=tripwire)
    yield env
    tripwire.close()
    assert violations(workdir) == [], "wrangler tried to reach a host other than loopback"
    assert tripwire.hits == [], "wrangler sent a request through the (tripwire) proxy"


@pytest.fixture
def make_wrangler(emulator: Emulator, tmp_path: Path, network_guard: dict[str, str]):  # type: ignore[no-untyped-def]
    assert WRANGLER.exists(), "the pinned wrangler is not installed: run scripts/setup (npm ci)"

    def make(toml: str = "", *, name: str = "silo", subdir: str = "project",
             binary: Path = WRANGLER) -> Wrangler:
        project = write_project(tmp_path / subdir, toml, name=name)
        # wrangler 4.20 sends even loopback calls through a configured proxy (it ignores
        # NO_PROXY), so the proxy tripwire cannot watch it: it runs unguarded
        guard = network_guard if binary == WRANGLER else {}
        return Wrangler(emulator, project, tmp_path / "wrangler-state", guard, binary)

    return make
