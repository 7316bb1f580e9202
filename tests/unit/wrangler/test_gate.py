"""The gate's decision (dome_tasks/wrangler/gate.py) without a wrangler: it opens when every
future it waits for resolves, and closes as soon as one fails, even while another is pending
(a deploy started early whose step will not run must not wait for a busy lock)."""

from __future__ import annotations

import threading
from concurrent.futures import Future

from dome_tasks.errors import DomeError
from dome_tasks.wrangler.gate import NetGate


def decided(gate: NetGate) -> bytes:
    """What wrangler's end reads once the gate decides: ``go`` or end of file."""
    opener = threading.Thread(target=gate._open, daemon=True)  # noqa: SLF001
    opener.start()
    opener.join(timeout=10)
    assert not opener.is_alive()
    gate._theirs.settimeout(5)  # noqa: SLF001
    return gate._theirs.recv(16)  # noqa: SLF001


def test_the_gate_opens_once_every_future_resolved() -> None:
    held, adopted = Future(), Future()
    held.set_result(None)
    adopted.set_result(None)
    gate = NetGate((held, adopted))
    assert decided(gate) == b"go\n" and gate.refused is None


def test_the_gate_closes_at_once_when_one_fails_while_another_is_pending() -> None:
    pending, refused = Future(), Future()  # e.g. a busy lock still waited for
    refused.set_exception(DomeError("its step did not run"))
    gate = NetGate((pending, refused))
    assert decided(gate) == b""  # end of file: wrangler leaves having sent nothing
    assert str(gate.refused) == "its step did not run"
