"""Fixtures for the local environment's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_helpers import WRANGLER


@pytest.fixture(scope="session")
def wrangler() -> Path:
    assert WRANGLER.exists(), "the pinned wrangler is not installed: run scripts/setup (npm ci)"
    return WRANGLER
