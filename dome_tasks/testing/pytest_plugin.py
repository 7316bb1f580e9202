"""pytest plugin (entry point `dome_emulator`): the `cloudflare_emulator` fixture.

Loaded into every pytest run of an environment where dome-tasks is installed, so it imports
nothing heavy: the emulator is imported inside the fixture, only by tests that use it.

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
