"""Ids found by name: ``.dome/resources.json``, written by ``invoke provision``.

A manifest may name a D1 database or KV namespace without its id; provision finds (or
creates) it by that name and records the id here, per account. :meth:`Manifest.resolve`
fills the ids in from this file, so every rendered config (deploy, migrations, render,
diff) binds the resource provision made instead of letting wrangler create another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from dome_tasks._atomic import write_atomic

__all__ = ["LOCK_PATH", "ResourceLock"]

LOCK_PATH = Path(".dome") / "resources.json"

#: The lock's kind keys and the WorkerConfig attribute each fills.
_ATTRS = {"d1": "d1_databases", "kv": "kv_namespaces"}


@dataclass
class ResourceLock:
    """Ids looked up by name, per account (a cache: safe to delete; provision rewrites it)."""

    path: Path
    accounts: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path) -> ResourceLock:
        path = Path(root) / LOCK_PATH
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(path)
        accounts = data.get("accounts") if isinstance(data, dict) else None
        return cls(path, accounts if isinstance(accounts, dict) else {})

    def id_of(self, account: str | None, kind: str, name: str) -> str | None:
        return self.accounts.get(account or "default", {}).get(kind, {}).get(name)

    def ids_for(self, account: str | None) -> dict[tuple[str, str], str]:
        """``{(WorkerConfig attribute, name): id}`` for one account (what ``with_ids`` takes)."""
        kinds = self.accounts.get(account or "default", {})
        return {
            (attr, name): found
            for kind, attr in _ATTRS.items()
            for name, found in (kinds.get(kind) or {}).items()
            if isinstance(found, str) and found
        }

    def record(self, account: str | None, kind: str, name: str, resource_id: str) -> None:
        self.accounts.setdefault(account or "default", {}).setdefault(kind, {})[name] = resource_id

    def forget(self, account: str | None, names: set[tuple[str, str]]) -> bool:
        """Drop the ids of ``{(kind, name)}`` (resources deleted); whether any was known."""
        kinds = self.accounts.get(account or "default", {})
        gone = [(k, n) for k, n in names if n in (kinds.get(k) or {})]
        for kind, name in gone:
            del kinds[kind][name]
        return bool(gone)

    def save(self) -> None:
        """Write atomically (never through a symlink planted in .dome/)."""
        text = json.dumps({"version": 1, "accounts": self.accounts}, indent=2, sort_keys=True)
        write_atomic(self.path, text + "\n")
