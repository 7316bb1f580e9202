"""What secrets each worker has, as the Cloudflare API reports them, against what its service
declares (``secrets:`` in dome.yaml, merged per environment).

:func:`compare` is pure; :func:`observe` reads each worker's secret names (never values) with
one API call per worker (``GET …/workers/scripts/<worker>/secrets``), side by side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi, path_segment

if TYPE_CHECKING:
    from dome_tasks.plan.target import Target

__all__ = ["SecretStatus", "compare", "live_secrets", "observe"]

_MISSING_WORKER = (10007, 10090)


@dataclass(frozen=True)
class SecretStatus:
    """One worker's secrets: declared by its service, set on Cloudflare (None: no such worker)."""

    service: str
    worker: str
    declared: tuple[str, ...]
    live: tuple[str, ...] | None

    @property
    def deployed(self) -> bool:
        return self.live is not None

    @property
    def missing(self) -> tuple[str, ...]:
        have = set(self.live or ())
        return tuple(name for name in self.declared if name not in have)

    @property
    def undeclared(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.live or ()) - set(self.declared)))

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "worker": self.worker, "deployed": self.deployed,
                "declared": list(self.declared), "set": sorted(self.live or ()),
                "missing": list(self.missing), "undeclared": list(self.undeclared)}


def compare(target: Target, live: Iterable[str] | None) -> SecretStatus:
    """The declared secrets of ``target`` against the names Cloudflare has (None: no worker)."""
    names = None if live is None else tuple(sorted(set(live)))
    return SecretStatus(target.service, target.worker, target.config.secrets, names)


def live_secrets(api: CloudflareApi, worker: str) -> tuple[str, ...] | None:
    """The secret names set on ``worker`` (None when the worker does not exist)."""
    try:
        listed = api.call("GET", f"/workers/scripts/{path_segment(worker)}/secrets") or []
    except ApiFailure as error:
        if error.code in _MISSING_WORKER:
            return None
        raise
    return tuple(str(item["name"]) for item in listed if isinstance(item, dict) and "name" in item)


def observe(api: CloudflareApi, targets: Sequence[Target]) -> list[SecretStatus]:
    """Each target's :class:`SecretStatus`, read side by side (in the targets' order)."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        found = list(pool.map(lambda t: live_secrets(api, t.worker), targets))
    return [compare(t, live) for t, live in zip(targets, found)]
