"""Run one function on a daemon thread while the caller goes on (reads beside a command)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

__all__ = ["in_background"]


def in_background(func: Callable[..., Any], *args: Any, name: str = "dome-background") -> Future[Any]:
    """Run ``func(*args)`` on a daemon thread; its result (or exception) arrives in the future."""
    future: Future[Any] = Future()

    def work() -> None:
        try:
            future.set_result(func(*args))
        except BaseException as error:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(error)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future
