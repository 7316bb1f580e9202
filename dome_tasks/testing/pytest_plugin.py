"""pytest plugin: the `cloudflare_emulator` fixture.

Opt-in, never loaded into a test run unasked: ``pytest_plugins =
["dome_tasks.testing.pytest_plugin"]`` in a conftest.py (or ``from
dome_tasks.testing.pytest_plugin import cloudflare_emulator`` there), or ``pytest -p
dome_tasks.testing.pytest_plugin``. It imports nothing heavy: the emulator is imported inside the fixture, only by tests that use it.

Example::

    def test_deploy(cloudflare_emulator, tmp_path):
        env = {**os.environ, **cloudflare_emulator.env()}
        subprocess.run(["wrangler", "deploy"], env=env, cwd=tmp_path, check=True)
        assert cloudflare_emulator.state.worker("my-worker").current_version()
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from dome_tasks.testing.emulator import Emulator

__all__ = ["cloudflare_emulator"]


@pytest.fixture
def cloudflare_emulator() -> Iterator[Emulator]:
    """A started, empty Cloudflare API emulator on 127.0.0.1 (stopped after the test)."""
    from dome_tasks.testing.emulator.emulator import Emulator

    with Emulator() as emulator:
        yield emulator
