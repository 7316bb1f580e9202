"""Helpers for the local environment's tests: the sample workers' rendered local configs, a
real wrangler, a tiny HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from dome_tasks.local import LocalEnv, LocalService, PortRange
from dome_tasks.manifest.loader import load
from dome_tasks.render.config import render_config, write_config

REPO = Path(__file__).resolve().parents[2]
WRANGLER = REPO / "node_modules" / ".bin" / "wrangler"

def write_sample_configs(folder: Path) -> list[LocalService]:
    """The three sample services' local configs, rendered from sample/dome.yaml exactly as
    `invoke deploy-env all local` renders them, in dependency order."""
    manifest = load(REPO / "sample" / "dome.yaml")
    services = []
    for name in manifest.deploy_order():
        config = manifest.resolve(name, "local")
        path = folder / name / "wrangler.toml"
        write_config(render_config(config, manifest_path=manifest.path, out_path=path), path)
        services.append(LocalService(name, config.name, path, config.health_path or "/"))
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
