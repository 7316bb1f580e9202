"""Resource ids that are still placeholders (``PLACEHOLDER``, ``<kv id>``, ``xxx``…): one warning
where each is written, naming every environment that would deploy with it.

wrangler reads such an id, so the manifest loads; a deploy with it fails until it is replaced.
A placeholder in a service's own bindings (or in ``defaults``) reaches every environment that does
not override it, so it is said once for all of them rather than once per environment; local
environments are left out (``wrangler dev`` needs no real id). Placeholders are no environment's
resource, so the isolation check does not compare them (:func:`is_placeholder_id`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from dome_tasks.manifest import bindings, naming
from dome_tasks.manifest.model import WorkerConfig

if TYPE_CHECKING:
    from dome_tasks.manifest._problems import KeyPath, Problems
    from dome_tasks.manifest.model import Environment

__all__ = ["ID_CHECKS", "check", "is_placeholder_id"]

#: The manifest checks of binding ids: a placeholder there is worded here, with its environments.
ID_CHECKS = frozenset({"kv_id", "d1_id", "hyperdrive_id"})


class Resolver(Protocol):
    """What this check reads of the resolver (``manifest.resolve.Resolver``)."""

    problems: Problems
    envs: Mapping[str, Environment]

    def origin(self, service: str, env: str, sub: KeyPath) -> KeyPath: ...


def is_placeholder_id(value: Any) -> bool:
    """A written id that stands in for a real one (an empty or missing id is not written)."""
    return bool(value) and naming.placeholder(value)


def check(resolver: Resolver, workers: Mapping[tuple[str, str], WorkerConfig]) -> None:
    """Warn once per placeholder id, at the line that writes it, naming who would deploy it."""
    found: dict[tuple[KeyPath, str, str], tuple[list[str], list[str]]] = {}
    for (service, env), worker in workers.items():
        if resolver.envs[env].is_local:
            continue
        for sub, value, noun in _ids(worker):
            if is_placeholder_id(value):
                key = (resolver.origin(service, env, sub), value, noun)
                envs, services = found.setdefault(key, ([], []))
                envs.extend([env] if env not in envs else [])
                services.extend([service] if service not in services else [])
    for (origin, value, noun), (envs, services) in found.items():
        who = f" ({_listed(services)})" if len(services) > 1 else ""
        resolver.problems.warn(origin, (
            f"{value!r} is a placeholder {noun} id: {_listed(envs)}{who} would deploy with it, "
            "and a deploy with it fails; replace it with the real id"))


def _ids(worker: WorkerConfig) -> list[tuple[KeyPath, Any, str]]:
    """(sub-path, value, noun) of every binding id of ``worker``."""
    found = []
    for kind in bindings.KINDS:
        for index, obj in enumerate(getattr(worker, kind.attr)):
            where = (*kind.key, index) if kind.form == "list" else (*kind.key, obj.binding)
            for name, attr in kind.fields.items():
                if attr.role == bindings.ID:
                    found.append(((*where, name), getattr(obj, kind.model_attr(name)),
                                  attr.resource or "resource"))
    return found


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
