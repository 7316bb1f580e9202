"""pytest plugin (entry point `dome_emulator`): the `cloudflare_emulator` fixture.

Example::

    def test_deploy(cloudflare_emulator, tmp_path):
        env = {**os.environ, **cloudflare_emulator.env()}
        subprocess.run(["wrangler", "deploy"], env=env, cwd=tmp_path, check=True)
        assert cloudflare_emulator.state.worker("my-worker").current_version()
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dome_tasks.emulator.emulator import Emulator

__all__ = ["cloudflare_emulator"]


@pytest.fixture
def cloudflare_emulator() -> Iterator[Emulator]:
    """A started, empty Cloudflare API emulator on 127.0.0.1 (stopped after the test)."""
    emulator = Emulator()
    with emulator:
        yield emulator
