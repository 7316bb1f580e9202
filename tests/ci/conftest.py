"""Fixtures for the CI tests (helpers live in ci_helpers.py)."""

from __future__ import annotations

from ci_helpers import repo  # noqa: F401  (the fixture)
