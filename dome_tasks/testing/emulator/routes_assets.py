"""Static assets (`assets.directory` in a wrangler config): the upload session, the bucketed
upload with the session's JWT, and the completion token the script upload then carries."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok
from dome_tasks.testing.emulator.routes_workers import SCRIPTS
from dome_tasks.testing.emulator.state import EmulatorState

__all__ = ["router", "upload_authorized"]

router = Router()
UPLOAD = "/accounts/{account}/workers/assets/upload"
BUCKET_SIZE = 50


def upload_authorized(state: EmulatorState, path: str, headers: Mapping[str, str]) -> bool:
    """The upload endpoint takes the session's JWT instead of the API token."""
    token = (headers.get("Authorization") or "").removeprefix("Bearer ")
    return path.endswith("/workers/assets/upload") and token in state.assets.sessions


@router.route("POST", SCRIPTS + "/assets-upload-session")
def upload_session(state: EmulatorState, req: Request) -> Response:
    manifest = (req.json() or {}).get("manifest")
    if not isinstance(manifest, dict):
        raise ApiError(400, 10026, "an upload session needs a manifest")
    hashes = {str(entry.get("hash")) for entry in manifest.values() if isinstance(entry, dict)}
    with state.lock:
        missing = sorted(h for h in hashes if h not in state.assets.files)
        token = state.assets.open_session(set(missing))
    buckets = [missing[i:i + BUCKET_SIZE] for i in range(0, len(missing), BUCKET_SIZE)]
    return ok({"jwt": token, "buckets": buckets})


@router.route("POST", UPLOAD)
def upload(state: EmulatorState, req: Request) -> Response:
    token = (req.headers.get("authorization") or "").removeprefix("Bearer ")
    encoded = req.arg("base64") == "true"
    with state.lock:
        wanted = state.assets.sessions.get(token)
        if wanted is None:
            raise ApiError(401, 10000, "Authentication error: no such upload session")
        for part in req.parts():
            state.assets.files[part.name] = base64.b64decode(part.body) if encoded else part.body
            wanted.discard(part.name)
        done = not wanted
    return ok({"jwt": f"{token}-complete"} if done else {}, status=201 if done else 200)
