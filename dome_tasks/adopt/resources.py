"""Which stateful resources an environment's workers need, what exists, and what to create.

Pure: :func:`needs` reads the resolved manifest; :func:`decide` compares needs with an
:class:`Inventory` (what the account holds, read with wrangler's list commands by
:mod:`dome_tasks.adopt.provision`) and returns what to create and what is wrong.

Ids are looked up by name: a resource the manifest names without an id is found (or created)
by that name, and its id recorded in ``.dome/resources.json`` (:class:`ResourceLock`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dome_tasks.adopt.intent import KV_NAME_KEY
from dome_tasks.manifest.resource_ids import LOCK_PATH, ResourceLock

if TYPE_CHECKING:
    from dome_tasks.manifest.loader import Manifest
    from dome_tasks.manifest.model import WorkerConfig

__all__ = [
    "KINDS",
    "LOCK_PATH",
    "Decision",
    "Inventory",
    "Need",
    "ResourceLock",
    "decide",
    "needs",
    "with_ids",
]

#: Resource kinds, in the order they are created, with a label for people.
KINDS = {"d1": "D1 database", "kv": "KV namespace", "r2": "R2 bucket", "queue": "queue",
         "vectorize": "Vectorize index"}


@dataclass(frozen=True)
class Need:
    """One resource some workers of the environment bind to."""

    kind: str  # a key of KINDS
    name: str | None  # database / namespace title / bucket / queue / index name
    id: str | None  # the id the manifest gives (D1, KV), if any
    account: str | None
    users: tuple[str, ...]  # "service.BINDING" (or "service.queue consumer")

    @property
    def label(self) -> str:
        return self.name or self.id or "?"


@dataclass
class Inventory:
    """What one account holds: per kind, name -> id (buckets and indexes: name -> name)."""

    items: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    vectorize_configs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def id_of(self, kind: str, name: str) -> str | None:
        return self.items.get(kind, {}).get(name)

    def has_id(self, kind: str, resource_id: str) -> str | None:
        """The name of the resource with this id (ids compared case-insensitively)."""
        wanted = resource_id.lower()
        for name, found in self.items.get(kind, {}).items():
            if found.lower() == wanted:
                return name
        return None


@dataclass(frozen=True)
class Decision:
    need: Need
    action: str  # exists | create | problem
    id: str | None = None
    problem: str | None = None


def _kv_title(namespace: Any) -> str | None:
    """The title a KV binding is looked up by (manifest key ``title``), if the model has one."""
    value = getattr(namespace, KV_NAME_KEY, None) or getattr(namespace, "name", None)
    return value if isinstance(value, str) and value else None


def _worker_needs(config: WorkerConfig) -> Iterable[tuple[str, str | None, str | None, str]]:
    service = config.service
    for d in config.d1_databases:
        yield "d1", d.database_name or None, d.database_id or None, f"{service}.{d.binding}"
    for k in config.kv_namespaces:
        yield "kv", _kv_title(k), getattr(k, "id", None) or None, f"{service}.{k.binding}"
    for r in config.r2_buckets:
        yield "r2", r.bucket_name or None, None, f"{service}.{r.binding}"
    for q in config.queue_producers:
        yield "queue", q.queue, None, f"{service}.{q.binding}"
    for c in config.queue_consumers:
        yield "queue", c.queue, None, f"{service} (consumer)"
        if c.dead_letter_queue:
            yield "queue", c.dead_letter_queue, None, f"{service} (dead letters)"
    for v in config.vectorize:
        yield "vectorize", v.index_name or None, None, f"{service}.{v.binding}"


def needs(manifest: Manifest, environment: str) -> list[Need]:
    """Every resource the environment's workers bind to, once each, in creation order."""
    env = manifest.environment(environment).name
    found: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for service in manifest.deploy_order(manifest.services_in(env)):
        config = manifest.declared(service, env)
        for kind, name, resource_id, user in _worker_needs(config):
            key = (kind, name or f"id:{resource_id}", config.account_id)
            entry = found.setdefault(key, {"kind": kind, "name": name, "id": None,
                                           "account": config.account_id, "users": []})
            entry["id"] = entry["id"] or resource_id
            if user not in entry["users"]:
                entry["users"].append(user)
    out = [Need(e["kind"], e["name"], e["id"], e["account"], tuple(e["users"]))
           for e in found.values()]
    order = list(KINDS)
    return sorted(out, key=lambda n: (n.account or "", order.index(n.kind), n.label))


def decide(need: Need, inventory: Inventory) -> Decision:
    """Exists (with its id), create, or a problem the user must fix (nothing is created)."""
    noun = KINDS[need.kind]
    if need.name is None:
        if need.id is None:
            return Decision(need, "problem", problem=f"a {noun} with neither name nor id")
        name = inventory.has_id(need.kind, need.id)
        if name is not None:
            return Decision(need, "exists", need.id)
        what = "title" if need.kind == "kv" else "name"
        return Decision(need, "problem", problem=(
            f"{noun} id {need.id} ({', '.join(need.users)}) does not exist in the account; "
            f"give the binding a {what} (and no id) to have it created"))
    found = inventory.id_of(need.kind, need.name)
    if found is not None:
        if need.id and found.lower() != need.id.lower():
            return Decision(need, "problem", found, problem=(
                f"{noun} '{need.name}' has id {found}, but the manifest says {need.id} "
                f"({', '.join(need.users)}); fix the id or leave it out to look it up by name"))
        return Decision(need, "exists", found)
    if need.id:
        other = inventory.has_id(need.kind, need.id)
        if other is not None:
            return Decision(need, "problem", need.id, problem=(
                f"the manifest's id {need.id} for {noun} '{need.name}' belongs to '{other}'"))
        return Decision(need, "problem", problem=(
            f"{noun} '{need.name}' (id {need.id} in the manifest) does not exist; leave the id "
            "out to have it created (its id is then looked up by name)"))
    return Decision(need, "create")


# --------------------------------------------------------------------------- the lock file


def lock_ids(lock: ResourceLock, decisions: Iterable[Decision]) -> None:
    for decision in decisions:
        need = decision.need
        if decision.action == "exists" and decision.id and need.name:
            lock.record(need.account, need.kind, need.name, decision.id)


def summary(decisions: Iterable[Decision]) -> Mapping[str, int]:
    counts: dict[str, int] = {}
    for decision in decisions:
        counts[decision.action] = counts.get(decision.action, 0) + 1
    return counts


def with_ids(config: WorkerConfig, lock: ResourceLock) -> WorkerConfig:
    """``config`` with the D1 and KV ids it leaves to a lookup by name filled in from ``lock``
    (what ``invoke provision`` recorded). wrangler needs them: without an id it creates a new
    KV namespace on deploy, and ``d1 migrations apply`` refuses a database without one."""
    from dome_tasks.manifest.bindings import with_ids as fill

    return fill(config, lock.ids_for(config.account_id))
