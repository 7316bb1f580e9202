"""The Workers resource API (``/workers/workers/{worker}``) and the secret calls of newer wranglers.

wrangler 4.164 reads a worker's workers.dev settings here on every deploy
(``GET …/workers/workers/{name}``: ``subdomain.enabled``, ``previews_enabled``), writes
secrets with ``PATCH …/workers/scripts/{name}/secrets-bulk`` (``secret bulk``), and
``versions secret put|bulk|delete`` patch the latest version
(``PATCH …/workers/workers/{name}/versions/latest``: a new version, not deployed). The worker
object is the same :class:`~dome_tasks.testing.emulator.state.Worker` the script API serves.
"""

from __future__ import annotations

from typing import Any

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok, paged
from dome_tasks.testing.emulator.routes_secrets import SECRET_TYPES, redeploy_for_secrets
from dome_tasks.testing.emulator.routes_workers import SCRIPTS
from dome_tasks.testing.emulator.state import EmulatorState, Worker, now_iso

__all__ = ["router", "worker_object"]

router = Router()
WORKERS = "/accounts/{account}/workers/workers"
WORKER = WORKERS + "/{worker}"
NO_VERSIONS = 10222  # wrangler's NO_VERSIONS_ERR_CODE


def _find(state: EmulatorState, key: str) -> Worker:
    """A worker by name or by its id (the API takes either); 404 code 10007 otherwise."""
    worker = state.workers.get(key) or next(
        (w for w in state.workers.values() if w.tag == key), None)
    if worker is None:
        raise ApiError(404, 10007, f"Worker {key} not found")
    return worker


def worker_object(worker: Worker) -> dict[str, Any]:
    """The resource API's view of a worker."""
    updated = worker.versions[-1].created_on if worker.versions else worker.created_on
    return {
        "id": worker.tag,
        "name": worker.name,
        "created_on": worker.created_on,
        "updated_on": updated,
        "logpush": bool(worker.settings.get("logpush", False)),
        "observability": worker.settings.get("observability") or {"enabled": False},
        "subdomain": {"enabled": worker.subdomain_enabled,
                      "previews_enabled": worker.previews_enabled},
        "tags": list(worker.tags),
        "tail_consumers": worker.settings.get("tail_consumers") or [],
        "previews_base_config": worker.settings.get("previews_base_config") or {},
        "deployed_on": worker.latest_deployment.created_on if worker.latest_deployment else None,
    }


def _apply(worker: Worker, body: dict[str, Any]) -> None:
    """A merge-patch of the settings the resource API owns."""
    subdomain = body.get("subdomain")
    if isinstance(subdomain, dict):
        if "enabled" in subdomain:
            worker.subdomain_enabled = bool(subdomain["enabled"])
        if "previews_enabled" in subdomain:
            worker.previews_enabled = bool(subdomain["previews_enabled"])
    if "tags" in body:
        worker.tags = list(body["tags"] or [])
    for key in ("logpush", "observability", "tail_consumers", "previews_base_config"):
        if key in body:
            worker.settings[key] = body[key]


@router.route("GET", WORKERS)
def list_workers(state: EmulatorState, req: Request) -> Response:
    return paged([worker_object(w) for w in state.workers.values()])


@router.route("POST", WORKERS)
def create_worker(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    name = body.get("name")
    if not name:
        raise ApiError(400, 10021, "a worker needs a name")
    with state.lock:
        if name in state.workers:
            raise ApiError(409, 10030, f"a worker named {name} already exists")
        worker = state.workers[name] = Worker(name=name)
        _apply(worker, body)
    return ok(worker_object(worker))


@router.route("GET", WORKER)
def get_worker(state: EmulatorState, req: Request) -> Response:
    return ok(worker_object(_find(state, req.params["worker"])))


@router.route("PATCH", WORKER)
def edit_worker(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        worker = _find(state, req.params["worker"])
        _apply(worker, req.json() or {})
    return ok(worker_object(worker))


@router.route("PUT", WORKER)
def replace_worker(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    with state.lock:
        worker = _find(state, req.params["worker"])
        worker.tags, worker.subdomain_enabled, worker.previews_enabled = [], False, False
        for key in ("logpush", "observability", "tail_consumers", "previews_base_config"):
            worker.settings.pop(key, None)
        _apply(worker, body)
    return ok(worker_object(worker))


@router.route("DELETE", WORKER)
def delete_worker(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        worker = _find(state, req.params["worker"])
        del state.workers[worker.name]
    return ok(None)


@router.route("PATCH", WORKER + "/versions/latest")
def patch_latest_version(state: EmulatorState, req: Request) -> Response:
    """``versions secret put|bulk|delete``: a new version from the latest one with the secrets
    changed, uploaded but not deployed (as the real API does)."""
    body = req.json() or {}
    env = body.get("env") or {}
    with state.lock:
        worker = _find(state, req.params["worker"])
        if not worker.versions:
            raise ApiError(400, 10222, "There are currently no uploaded versions of this Worker.")
        latest = worker.versions[-1]
        metadata = {k: v for k, v in latest.metadata.items() if k != "annotations"}
        bindings = {b["name"]: b for b in metadata.get("bindings", [])}
        for name, value in env.items():
            if value is None:
                bindings.pop(name, None)
                worker.secrets.pop(name, None)
            elif value.get("type") in SECRET_TYPES:
                worker.secrets[name] = value.get("text", "")
                bindings.pop(name, None)
            else:
                bindings[name] = {"name": name, **value}
        metadata["bindings"] = list(bindings.values())
        metadata["annotations"] = body.get("annotations") or {}
        version = worker.add_version(metadata, dict(latest.modules), triggered_by="secret")
    return ok(version.to_api())


@router.route("PATCH", SCRIPTS + "/secrets-bulk")
def patch_secrets_bulk(state: EmulatorState, req: Request) -> Response:
    """``secret bulk`` (wrangler >= 4.1xx): set or (null) delete secrets, one new deployed version."""
    secrets = (req.json() or {}).get("secrets") or {}
    with state.lock:
        worker = _find(state, req.params["script"])
        for name, value in secrets.items():
            if value is None:
                worker.secrets.pop(name, None)
            else:
                worker.secrets[name] = value.get("text", "")
        redeploy_for_secrets(worker)
    return ok({"secrets": [{"name": n, "type": "secret_text"} for n in worker.secrets],
               "modified_on": now_iso()})
