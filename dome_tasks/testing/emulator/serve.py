"""Run the emulator in the foreground for a human (`python -m dome_tasks.testing.emulator`)."""

from __future__ import annotations

import shlex
import signal
import sys
import threading
from typing import TextIO

from dome_tasks.testing.emulator.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN, Emulator

__all__ = ["serve"]


def serve(
    host: str = "127.0.0.1",
    port: int = 8788,
    token: str = DEFAULT_TOKEN,
    account_id: str = DEFAULT_ACCOUNT_ID,
    *,
    verbose: bool = True,
    out: TextIO | None = None,
    stop: threading.Event | None = None,
    serve_workers: bool = False,
    latency: float = 0.0,
) -> None:
    """Serve until Ctrl-C (or until `stop` is set), after printing the env vars to export.

    `serve_workers`: also run deployed workers under workerd and proxy
    `<worker>.<subdomain>.workers.dev` requests to them (see `Emulator`)."""
    out = out or sys.stdout
    emulator = Emulator(
        token=token,
        account_id=account_id,
        host=host,
        port=port,
        verbose=verbose,
        serve_workers=serve_workers,
        latency=latency,
    )
    with emulator:
        print(f"Cloudflare API emulator listening on {emulator.url}", file=out)
        print("Point wrangler at it with:", file=out)
        for key, value in emulator.env().items():
            print(f"  export {key}={shlex.quote(value)}", file=out)
        if serve_workers:
            sample = emulator.workers_dev_host("<worker>")
            print(
                f"Deployed workers are served: curl -H 'Host: {sample}' {emulator.origin}/",
                file=out,
            )
        previous = None
        if threading.current_thread() is threading.main_thread():
            # SIGTERM stops like Ctrl-C, so served workers' process groups are stopped too.
            previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            # Printed inside the try: a signal sent as soon as this line is read must stop cleanly.
            print("Press Ctrl-C to stop.", file=out, flush=True)
            (stop or threading.Event()).wait()
        except KeyboardInterrupt:
            pass
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    print("emulator stopped", file=out)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
