"""Pure: the steps that set and remove a worker's secrets. Values travel on wrangler's stdin
(``wrangler secret bulk`` reads JSON there): never in argv, the dry run, logs or records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING

from dome_tasks.errors import UsageError
from dome_tasks.plan.steps import Step

if TYPE_CHECKING:
    from dome_tasks.plan.target import Target

__all__ = ["secret_bulk_step", "secret_delete_step"]


def secret_bulk_step(target: Target, values: Mapping[str, str]) -> Step:
    """``wrangler secret bulk`` with ``{name: value}`` as JSON on stdin (one request for all;
    wrangler creates the worker as a draft when it does not exist yet)."""
    if not values:
        raise UsageError(f"no secret to set on {target.worker}")
    names = ", ".join(sorted(values))
    command = target.command("secret", "bulk", stdin=json.dumps(dict(values)))
    return target.step("secret", f"set secret(s) {names} on {target.worker}", command)


def secret_delete_step(target: Target, name: str) -> Step:
    """``wrangler secret delete NAME``: a secret the service does not declare."""
    return target.step("secret", f"remove undeclared secret {name} from {target.worker}",
                       target.command("secret", "delete", name))
