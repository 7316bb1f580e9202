"""A Cloudflare API emulator on 127.0.0.1 that the real, pinned wrangler deploys to.

`Emulator` is the entry point; `serve()` runs one in the foreground; the pytest plugin
(`dome_tasks.testing.pytest_plugin`) provides the `cloudflare_emulator` fixture.

Opt-in, `Emulator(serve_workers=True)` (`--serve-workers`) also runs each deployed worker's
current version under workerd (`serving.WorkerHost`): `emulator.worker_url(name)` is its own
127.0.0.1 port, and the emulator's origin answers requests whose `Host` is
`<name>.<subdomain>.workers.dev` by proxying them there, so `INVOKE_DOME_HEALTH_BASE_URL=<origin>`
makes dome-tasks' post-deploy verification reach it. Vectorize indexes can be listed,
created, read and deleted (configuration only).
"""

from __future__ import annotations

from dome_tasks.testing.emulator.d1 import D1Database
from dome_tasks.testing.emulator.emulator import DEFAULT_ACCOUNT_ID, DEFAULT_TOKEN, Emulator
from dome_tasks.testing.emulator.faults import Fault, FaultSet
from dome_tasks.testing.emulator.serve import serve
from dome_tasks.testing.emulator.server import RequestRecord
from dome_tasks.testing.emulator.serving import ServedWorker, ServeError, WorkerHost
from dome_tasks.testing.emulator.state import (
    Deployment,
    EmulatorState,
    Module,
    VectorizeIndex,
    Version,
    Worker,
)

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_TOKEN",
    "D1Database",
    "Deployment",
    "Emulator",
    "EmulatorState",
    "Fault",
    "FaultSet",
    "Module",
    "RequestRecord",
    "ServeError",
    "ServedWorker",
    "VectorizeIndex",
    "Version",
    "Worker",
    "WorkerHost",
    "serve",
]
