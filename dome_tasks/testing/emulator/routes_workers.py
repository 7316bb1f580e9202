"""Worker scripts: both deploy paths, versions, deployments, settings, subdomains."""

from __future__ import annotations

import json
from typing import Any

from dome_tasks.testing.emulator.api import (
    ApiError,
    Request,
    Response,
    Router,
    not_found_script,
    ok,
    paged,
)
from dome_tasks.testing.emulator.state import EmulatorState, Module, Version, Worker

__all__ = ["existing_worker", "parse_upload", "router"]

router = Router()
SCRIPTS = "/accounts/{account}/workers/scripts/{script}"


def existing_worker(state: EmulatorState, name: str) -> Worker:
    """The worker, or the API's 404 code 10007."""
    worker = state.workers.get(name)
    if worker is None:
        raise not_found_script(name)
    return worker


def parse_upload(req: Request) -> tuple[dict[str, Any], dict[str, Module]]:
    """The `metadata` part and the module parts of a script upload."""
    metadata: dict[str, Any] | None = None
    modules: dict[str, Module] = {}
    for part in req.parts():
        if part.name == "metadata":
            metadata = json.loads(part.body)
        else:
            name = part.filename or part.name
            modules[name] = Module(name=name, content_type=part.content_type, body=part.body)
    if metadata is None:
        raise ApiError(400, 10021, "multipart upload has no metadata part")
    main = metadata.get("main_module") or metadata.get("body_part")
    if main and main not in modules:
        raise ApiError(400, 10021, f"main module {main!r} is not among the uploaded parts")
    return metadata, modules


def _script_summary(worker: Worker, version: Version | None = None) -> dict[str, Any]:
    return {
        "id": worker.name,
        "tag": worker.tag,
        "tags": list(worker.tags),
        "etag": (version.id if version else worker.tag).replace("-", ""),
        "handlers": ["fetch"],
        "created_on": worker.created_on,
        "modified_on": version.created_on if version else worker.created_on,
        "usage_model": "standard",
        "has_modules": True,
        "last_deployed_from": "wrangler",
    }


@router.route("GET", "/accounts/{account}/workers/services/{script}")
def get_service(state: EmulatorState, req: Request) -> Response:
    worker = state.workers.get(req.params["script"])
    if worker is None:
        raise ApiError(404, 10090, "workers.api.error.service_not_found")
    return ok(
        {
            "id": worker.name,
            "created_on": worker.created_on,
            "modified_on": worker.created_on,
            "default_environment": {
                "environment": "production",
                "created_on": worker.created_on,
                "modified_on": worker.created_on,
                "script": _script_summary(worker),
            },
        }
    )


@router.route("DELETE", "/accounts/{account}/workers/services/{script}")
def delete_service(state: EmulatorState, req: Request) -> Response:
    """`wrangler delete`: the worker, its versions, deployments and secrets."""
    with state.lock:
        if state.workers.pop(req.params["script"], None) is None:
            raise ApiError(404, 10090, "workers.api.error.service_not_found")
    return ok(None)


@router.route("GET", "/accounts/{account}/workers/scripts")
def list_scripts(state: EmulatorState, req: Request) -> Response:
    return paged([_script_summary(w) for w in state.workers.values()])


@router.route("PUT", SCRIPTS)
def put_script(state: EmulatorState, req: Request) -> Response:
    """The new-worker deploy path: upload and deploy at 100% in one call."""
    metadata, modules = parse_upload(req)
    name = req.params["script"]
    with state.lock:
        worker = state.workers.setdefault(name, Worker(name=name))
        version = worker.add_version(metadata, modules)
        worker.deploy([{"version_id": version.id, "percentage": 100}])
        for tag in metadata.get("tags") or []:
            if tag not in worker.tags:
                worker.tags.append(tag)
    result = _script_summary(worker, version)
    result.update(
        {
            "deployment_id": version.id,
            "startup_time_ms": 1,
            "compatibility_date": version.compatibility_date,
            "compatibility_flags": version.compatibility_flags,
        }
    )
    return ok(result)


@router.route("DELETE", SCRIPTS)
def delete_script(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        existing_worker(state, req.params["script"])
        del state.workers[req.params["script"]]
    return ok(None)


@router.route("GET", SCRIPTS + "/deployments")
def list_deployments(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    return ok({"deployments": [d.to_api() for d in worker.deployments]})


@router.route("POST", SCRIPTS + "/deployments")
def create_deployment(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    versions = body.get("versions") or []
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        if not versions or body.get("strategy", "percentage") != "percentage":
            raise ApiError(400, 10155, "A deployment needs a percentage strategy and versions")
        for item in versions:
            try:
                worker.version(item["version_id"])
            except KeyError:
                raise ApiError(
                    404, 10215, f"Version {item['version_id']} does not exist on {worker.name}"
                ) from None
        if abs(sum(float(v["percentage"]) for v in versions) - 100) > 1e-6:
            raise ApiError(400, 10153, "Deployment percentages must add up to 100")
        dep = worker.deploy(versions, body.get("annotations"))
    return ok(dep.to_api())


@router.route("POST", SCRIPTS + "/versions")
def upload_version(state: EmulatorState, req: Request) -> Response:
    """The existing-worker path: a version that is not deployed yet."""
    metadata, modules = parse_upload(req)
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        version = worker.add_version(metadata, modules)
    result = version.to_api()
    result["metadata"]["has_preview"] = worker.previews_enabled
    result["startup_time_ms"] = 1
    return ok(result)


@router.route("GET", SCRIPTS + "/versions")
def list_versions(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    items = [v.to_api() for v in reversed(worker.versions)]
    return ok({"items": items}, result_info={"page": 1, "per_page": 100, "total_count": len(items)})


@router.route("GET", SCRIPTS + "/versions/{version}")
def get_version(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    try:
        return ok(worker.version(req.params["version"]).to_api())
    except KeyError:
        raise ApiError(404, 10215, f"Version {req.params['version']} not found") from None


@router.route("GET", SCRIPTS + "/settings")
def get_settings(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    try:
        current = worker.current_version()
        compat = {
            "compatibility_date": current.compatibility_date,
            "compatibility_flags": current.compatibility_flags,
        }
    except LookupError:
        compat = {}
    return ok(
        {
            "bindings": worker.bindings_for_settings(),
            "logpush": False,
            "placement": {},
            "tail_consumers": [],
            "usage_model": "standard",
            "tags": list(worker.tags),
            **compat,
            **worker.settings,
        }
    )


@router.route("GET", SCRIPTS + "/script-settings")
def get_script_settings(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    return ok({"tags": list(worker.tags), **worker.settings})


@router.route("PATCH", SCRIPTS + "/script-settings")
def patch_script_settings(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        if "tags" in body:
            worker.tags = list(body["tags"] or [])
        worker.settings.update({k: v for k, v in body.items() if k != "tags"})
    return ok({"tags": list(worker.tags), **worker.settings})


@router.route("GET", SCRIPTS + "/subdomain")
def get_script_subdomain(state: EmulatorState, req: Request) -> Response:
    worker = existing_worker(state, req.params["script"])
    return ok({"enabled": worker.subdomain_enabled, "previews_enabled": worker.previews_enabled})


@router.route("POST", SCRIPTS + "/subdomain")
def set_script_subdomain(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    with state.lock:
        worker = existing_worker(state, req.params["script"])
        worker.subdomain_enabled = bool(body.get("enabled", worker.subdomain_enabled))
        worker.previews_enabled = bool(body.get("previews_enabled", worker.subdomain_enabled))
    return ok({"enabled": worker.subdomain_enabled, "previews_enabled": worker.previews_enabled})


@router.route("GET", SCRIPTS + "/content/v2")
def get_content(state: EmulatorState, req: Request) -> Response:
    """A version's modules as multipart, the main one named in ``cf-entrypoint`` (wrangler 4.20's
    ``versions secret put`` re-uploads them with the new secret)."""
    worker = existing_worker(state, req.params["script"])
    wanted = req.arg("version")
    try:
        version = worker.version(wanted) if wanted else worker.current_version()
    except (KeyError, LookupError):
        raise ApiError(404, 10215, f"Version {wanted} not found") from None
    boundary = "emulator-" + version.id
    chunks = []
    for module in version.modules.values():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{module.name}"; '
            f'filename="{module.name}"\r\nContent-Type: {module.content_type}\r\n\r\n'.encode()
            + module.body + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    main = version.metadata.get("main_module") or version.metadata.get("body_part") or ""
    return Response(200, body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                "cf-entrypoint": main})


@router.route("GET", "/accounts/{account}/workers/durable_objects/namespaces")
def list_durable_object_namespaces(state: EmulatorState, req: Request) -> Response:
    """The Durable Object namespaces the workers' current versions define (``wrangler delete``
    reads them to warn about the objects a delete removes)."""
    spaces = []
    for worker in state.workers.values():
        try:
            bindings = worker.current_version().bindings
        except LookupError:
            continue
        spaces += [{"id": f"{worker.name}-{b.get('class_name')}", "name": b.get("name"),
                    "script": worker.name, "class": b.get("class_name")}
                   for b in bindings if b.get("type") == "durable_object_namespace"
                   and not b.get("script_name")]
    return paged(spaces, req)
