"""Fixtures for the local environment's tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_helpers import WRANGLER


@pytest.fixture(scope="session")
def wrangler() -> Path:
    if not WRANGLER.exists():
        pytest.skip("wrangler is not installed (run npm ci)")
    return WRANGLER
