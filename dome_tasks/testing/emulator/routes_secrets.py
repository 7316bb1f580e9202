"""Worker secrets: put / list / delete and `secret bulk` (PATCH settings).

Like the real API, changing secrets of a deployed worker creates a new version
(annotated `workers/triggered_by: secret`) and deploys it at 100%.
"""

from __future__ import annotations

import json
from typing import Any

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok
from dome_tasks.testing.emulator.routes_workers import SCRIPTS, existing_worker
from dome_tasks.testing.emulator.state import EmulatorState, Worker

__all__ = ["router"]

router = Router()
SECRET_TYPES = ("secret_text", "secret_key")


def redeploy_for_secrets(worker: Worker, bindings: list[dict[str, Any]] | None = None) -> None:
    """Record the secret change as a new version, if one version holds all traffic."""
    traffic = worker.traffic()
    if len(traffic) != 1:
        return
    current = worker.current_version()
    metadata = dict(current.metadata)
    metadata.pop("annotations", None)
    if bindings is not None:
        metadata["bindings"] = bindings
    version = worker.add_version(metadata, dict(current.modules), triggered_by="secret")
    worker.deploy(
        [{"version_id": version.id, "percentage": 100}], {"workers/triggered_by": "secret"}
    )


@router.route("PUT", SCRIPTS + "/secrets")
def put_secret(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    name, text = body.get("name"), body.get("text")
    if not name or text is None:
        raise ApiError(400, 10021, "a secret needs a name and a text")
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        worker.secrets[name] = text
        redeploy_for_secrets(worker)
    return ok({"name": name, "type": body.get("type", "secret_text")})


@router.route("GET", SCRIPTS + "/secrets")
def list_secrets(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    return ok([{"name": n, "type": "secret_text"} for n in worker.secrets])


@router.route("GET", SCRIPTS + "/secrets/{secret}")
def get_secret(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    if req.params["secret"] not in worker.secrets:
        raise ApiError(404, 10056, f"Secret {req.params['secret']} not found")
    return ok({"name": req.params["secret"], "type": "secret_text"})


@router.route("DELETE", SCRIPTS + "/secrets/{secret}")
def delete_secret(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        if worker.secrets.pop(req.params["secret"], None) is None:
            raise ApiError(404, 10056, f"Secret {req.params['secret']} not found")
        redeploy_for_secrets(worker)
    return ok(None)


@router.route("PATCH", SCRIPTS + "/settings")
def patch_settings(state: EmulatorState, req: Request) -> Response:
    """`secret bulk`: a full binding list where `{type, name}` alone means keep."""
    parts = {p.name: p for p in req.parts()}
    if "settings" not in parts:
        raise ApiError(400, 10021, "multipart settings part missing")
    listed = json.loads(parts["settings"].body).get("bindings", [])
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        try:
            current = {b["name"]: b for b in worker.current_version().bindings}
        except LookupError:
            current = {}
        secrets: dict[str, str] = {}
        bindings: list[dict[str, Any]] = []
        for item in listed:
            name = item.get("name")
            if item.get("type") in SECRET_TYPES:
                text = item.get("text", worker.secrets.get(name))
                if text is not None:
                    secrets[name] = text
            elif set(item) <= {"type", "name"} and name in current:
                bindings.append(current[name])
            else:
                bindings.append(item)
        worker.secrets = secrets
        redeploy_for_secrets(worker, bindings)
    return ok({"bindings": worker.bindings_for_settings()})
