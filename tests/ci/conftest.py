"""Fixtures for the CI tests (helpers live in ci_helpers.py and adopter.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from adopter import WHEELHOUSE, Dist, build_dist
from ci_helpers import repo  # noqa: F401  (the fixture)


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """dome-tasks built the standard way (sdist, then the wheel from it), once per session."""
    if not (WHEELHOUSE / ".complete").exists():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: run scripts/setup (it downloads it once)")
    return build_dist(tmp_path_factory.mktemp("build"))


@pytest.fixture
def wheels(dist: Dist) -> str:
    """PIP_FIND_LINKS for installing the built wheel: the wheelhouse and the build's dist/."""
    return f"{WHEELHOUSE} {Path(dist.wheel).parent}"
