"""Fixtures the integration tests share: the sample workspace with the pinned wrangler, and
the proxy tripwire that catches anything trying to leave 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dome_tasks.testing.emulator.netguard import Tripwire
from tests.helpers import ROOT


@pytest.fixture
def project(workspace: Path) -> Path:
    """The sample workspace with the pinned wrangler linked where dome-tasks looks first."""
    (workspace / "node_modules").symlink_to(ROOT / "node_modules")
    return workspace


@pytest.fixture
def tripwire() -> Iterator[Tripwire]:
    wire = Tripwire()
    yield wire
    wire.close()
