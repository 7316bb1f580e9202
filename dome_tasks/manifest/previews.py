"""The manifest's ``previews:`` key: what a pull request's preview adds to its template.

``previews: {seed: {SERVICE: {D1 BINDING: path.sql}}}`` names a SQL file run once against the
preview's own copy of that database, right after ``invoke preview-up`` created and migrated it.
Paths are relative to the manifest's folder and stay inside it; the service and the binding must
exist (a D1 binding of that service in some environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from dome_tasks.errors import did_you_mean
from dome_tasks.manifest._problems import Problems
from dome_tasks.manifest.files import contained, outside
from dome_tasks.manifest.model import WorkerConfig

__all__ = ["Seeds", "seeds"]

#: service -> D1 binding -> the SQL file (absolute)
Seeds = Mapping[str, Mapping[str, Path]]


def seeds(
    data: Mapping[str, Any],
    workers: Mapping[tuple[str, str], WorkerConfig],
    root: Path,
    problems: Problems,
    *,
    check_files: bool = True,
) -> Seeds:
    """The valid seed files of ``previews.seed``; every problem reported at its line."""
    written = (data.get("previews") or {}).get("seed") or {}
    services = {service for service, _ in workers}
    found: dict[str, dict[str, Path]] = {}
    for service, bindings in written.items():
        where = ("previews", "seed", service)
        if service not in services:
            hint = did_you_mean(service, services)
            problems.add(where, f"unknown service '{service}'" + (f"; {hint}" if hint else ""))
            continue
        d1 = {db.binding for (name, _), worker in workers.items() if name == service
              for db in worker.d1_databases}
        for binding, path in bindings.items():
            at = (*where, binding)
            if binding not in d1:
                hint = did_you_mean(binding, d1)
                known = ", ".join(sorted(d1)) or "none"
                problems.add(at, f"'{binding}' is not a D1 binding of {service} (its D1 bindings: "
                                 f"{known})" + (f"; {hint}" if hint else ""))
                continue
            problem = outside(root, root, path)
            target = contained(root, root, path)
            if problem is None and check_files and (target is None or not target.is_file()):
                problem = f"seed file '{path}' not found (relative to {root.name}/)"
            if problem:
                problems.add(at, problem)
                continue
            found.setdefault(service, {})[binding] = root / path
    return MappingProxyType({s: MappingProxyType(b) for s, b in found.items()})
