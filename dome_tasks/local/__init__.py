"""The ``local`` environment: workers under ``wrangler dev`` (workerd) on 127.0.0.1.

The core renders one top-level wrangler.toml per service (``silo-local`` …) and calls::

    from dome_tasks.local import LocalEnv, LocalService, PortRange, deploy, start_stack, stop, status

    env = LocalEnv(state_dir=root / ".dome/local", wrangler=root / "node_modules/.bin/wrangler",
                   ports=PortRange.parse("8787-8799"))
    silo = LocalService("silo", "silo-local", rendered / "silo.toml", health_path="/health")
    migrations, record = deploy(env, silo)      # deploy-env silo local
    records = start_stack(env, [[silo], [constellation, other], [dome_api]], jobs=2)  # all local
    migrate_all(env, services)                  # db-migrate-local (MigrationResult.describe())
    stop(env, ["silo"]) / stop(env)             # stop [SERVICE] local
    print(format_status(status(env)))           # status local

One ``wrangler dev`` per service, each in its own session (process group), all persisting to
the same ``state_dir`` and finding each other through wrangler's dev registry kept in
``state_dir/registry`` (``WRANGLER_REGISTRY_PATH``). Processes are handled through psutil, so
this runs on Linux and macOS alike. See docs/local-environment.md for why; queue messages
cross processes through the same registry (wrangler >= 4.107.1).

Modules: ``model`` (values, errors), ``procs`` (processes and ports), ``wrangler`` (argv, env),
``migrations`` (D1), ``runtime`` (one service), ``stack`` (waves of services), ``logs``.

Errors: :class:`LocalError` (a :class:`dome_tasks.errors.DomeError`), with subclasses
:class:`PortInUse` (``.port``), :class:`StartupFailed` (``.log_tail``) and
:class:`StackFailed` (``.failures``, ``.not_started``); a failing migration raises
:class:`dome_tasks.errors.CommandFailed`.
"""

from __future__ import annotations

from dome_tasks.local.migrations import migrate, migrate_all
from dome_tasks.local.model import (
    LocalEnv,
    LocalError,
    LocalService,
    MigrationResult,
    Outcome,
    PortInUse,
    PortRange,
    ProcessRecord,
    ServiceStatus,
    StackFailed,
    StartupFailed,
)
from dome_tasks.local.runtime import deploy, format_status, start, status, stop
from dome_tasks.local.stack import start_stack, start_wave

__all__ = [
    "LocalEnv",
    "LocalError",
    "LocalService",
    "MigrationResult",
    "Outcome",
    "PortInUse",
    "PortRange",
    "ProcessRecord",
    "ServiceStatus",
    "StackFailed",
    "StartupFailed",
    "deploy",
    "format_status",
    "migrate",
    "migrate_all",
    "start",
    "start_stack",
    "start_wave",
    "status",
    "stop",
]
