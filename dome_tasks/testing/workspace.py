"""A generated Workers monorepo for tests and benchmarks: N tiny services in W dependency waves.

Service ``s<i>`` of wave ``k`` (``k > 0``) binds to one service of wave ``k - 1``, so the planner
orders them into exactly W waves. Each service is a plain-JavaScript worker with a health route.
``build`` (an argv, ``{service}`` replaced) gives every service a build command; ``builds`` gives
single services their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

__all__ = ["ACCOUNT", "generate_workspace", "wave_names"]

ACCOUNT = "0123456789abcdef0123456789abcdef"

_WORKER = """export default {{
  async fetch(request) {{
    const url = new URL(request.url);
    if (url.pathname === "/health") return new Response("ok");
    return new Response("{service}");
  }},
}};
"""


def wave_names(services: int, waves: int) -> list[list[str]]:
    """The services ``s01``… spread over *waves* waves as evenly as possible, in order."""
    if services < waves or waves < 1:
        raise ValueError("need at least one service per wave")
    names = [f"s{i:02d}" for i in range(1, services + 1)]
    size, extra = divmod(services, waves)
    out, start = [], 0
    for number in range(waves):
        count = size + (1 if number < extra else 0)
        out.append(names[start : start + count])
        start += count
    return out


def generate_workspace(
    root: Path,
    *,
    services: int = 30,
    waves: int = 4,
    build: Sequence[str] | None = None,
    builds: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write ``dome.yaml`` and ``services/*`` below *root*; return the manifest's path."""
    groups = wave_names(services, waves)
    entries: dict[str, dict] = {}
    for number, group in enumerate(groups):
        for index, name in enumerate(group):
            folder = root / "services" / name / "src"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "index.js").write_text(_WORKER.format(service=name))
            entry: dict = {"path": f"services/{name}", "main": "src/index.js",
                           "vars": {"SERVICE_NAME": name}}
            if number > 0:
                before = groups[number - 1]
                entry["services"] = {"UPSTREAM": before[index % len(before)]}
            argv = (builds or {}).get(name) or build
            if argv:
                entry["build"] = [arg.replace("{service}", name) for arg in argv]
            entries[name] = entry
    manifest = {
        "version": 1,
        "defaults": {"compatibility_date": "2025-01-01", "health_path": "/health"},
        "environments": {
            "staging": {"suffix": "-staging", "account_id": ACCOUNT, "workers_dev": True},
            "production": {"suffix": "", "account_id": ACCOUNT, "workers_dev": True,
                           "protected": True},
        },
        "services": entries,
    }
    path = root / "dome.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path
