"""Helpers for the local environment's tests: hand-written local configs for the sample
workers (the shape the core's renderer produces), a real wrangler, a tiny HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from dome_tasks.local import LocalEnv, LocalService, PortRange

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "sample" / "services"
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"

CONFIGS = {
    "silo": """\
name = "silo-local"
main = "{sample}/silo/src/index.js"
compatibility_date = "2025-01-01"

[vars]
SERVICE_NAME = "silo"
LOG_LEVEL = "info"

[[d1_databases]]
binding = "DB"
database_name = "silo-db"
database_id = "00000000-0000-4000-8000-000000000001"
migrations_dir = "{sample}/silo/migrations"

[[r2_buckets]]
binding = "BUCKET"
bucket_name = "silo-objects"

[[queues.producers]]
binding = "EVENTS"
queue = "silo-events"
""",
    "constellation": """\
name = "constellation-local"
main = "{sample}/constellation/src/index.js"
compatibility_date = "2025-01-01"

[vars]
SERVICE_NAME = "constellation"

[[services]]
binding = "SILO"
service = "silo-local"

[[queues.consumers]]
queue = "silo-events"
max_batch_size = 10
""",
    "dome-api": """\
name = "dome-api-local"
main = "{sample}/dome-api/src/index.js"
compatibility_date = "2025-01-01"

[vars]
SERVICE_NAME = "dome-api"

[[services]]
binding = "CONSTELLATION"
service = "constellation-local"

[[services]]
binding = "SILO"
service = "silo-local"

[[kv_namespaces]]
binding = "CACHE"
id = "0000000000000000000000000000c0de"
""",
}

def write_sample_configs(folder: Path) -> list[LocalService]:
    """The three sample services' local configs, in dependency order."""
    folder.mkdir(parents=True, exist_ok=True)
    services = []
    for name, text in CONFIGS.items():
        path = folder / f"{name}.toml"
        path.write_text(text.format(sample=SAMPLE))
        services.append(LocalService(name, f"{name}-local", path))
    return services

def write_worker(folder: Path, name: str, source: str) -> LocalService:
    """A one-file worker and its config, for fault tests."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.js").write_text(source)
    config = folder / f"{name}.toml"
    config.write_text(f'name = "{name}-local"\nmain = "{name}.js"\ncompatibility_date = "2025-01-01"\n')
    return LocalService(name, f"{name}-local", config)

def make_env(state: Path, ports: str, **kwargs) -> LocalEnv:
    return LocalEnv(state_dir=state.resolve(), wrangler=WRANGLER, ports=PortRange.parse(ports), **kwargs)

def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
