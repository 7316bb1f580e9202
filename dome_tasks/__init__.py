"""dome-tasks: deploy a Cloudflare Workers monorepo from one manifest, with invoke and just.

The public face. Everything a user imports is here; every other module is internal and may
change between releases (modules and packages whose names start with ``_`` always are)::

    from dome_tasks import namespace          # tasks/__init__.py: ns = namespace(...)
    from dome_tasks import load_manifest      # dome.yaml -> Manifest (validated, immutable)
    from dome_tasks import deploy_plan, Runner, DomeError

Stages, in the order data flows: ``manifest`` -> ``render`` -> ``plan`` -> ``runner`` (with
``wrangler``) -> ``lifecycle``; beside them ``local``, ``just``, ``ci``, the task layer ``cli``
and ``testing`` (the Cloudflare API emulator and its pytest fixture). See docs/architecture.md.

Names are imported lazily on first use, so ``invoke --list`` pays only for what it touches.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "DomeError",
    "Manifest",
    "ManifestError",
    "Runner",
    "Step",
    "Tools",
    "UsageError",
    "deploy_plan",
    "discover_tools",
    "load_manifest",
    "migrate_plan",
    "namespace",
]

_WHERE = {
    "namespace": ("dome_tasks.collection", "namespace"),
    "load_manifest": ("dome_tasks.manifest.loader", "load"),
    "Manifest": ("dome_tasks.manifest.loader", "Manifest"),
    "deploy_plan": ("dome_tasks.plan.deploy", "deploy_plan"),
    "migrate_plan": ("dome_tasks.plan.deploy", "migrate_plan"),
    "Step": ("dome_tasks.plan.steps", "Step"),
    "Runner": ("dome_tasks.runner", "Runner"),
    "Tools": ("dome_tasks.tools", "Tools"),
    "discover_tools": ("dome_tasks.tools", "discover_tools"),
    "DomeError": ("dome_tasks.errors", "DomeError"),
    "ManifestError": ("dome_tasks.errors", "ManifestError"),
    "UsageError": ("dome_tasks.errors", "UsageError"),
}

if TYPE_CHECKING:
    from dome_tasks.collection import namespace
    from dome_tasks.errors import DomeError, ManifestError, UsageError
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.manifest.loader import load as load_manifest
    from dome_tasks.plan.deploy import deploy_plan, migrate_plan
    from dome_tasks.plan.steps import Step
    from dome_tasks.runner import Runner
    from dome_tasks.tools import Tools, discover_tools


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'dome_tasks' has no attribute {name!r}") from None
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
