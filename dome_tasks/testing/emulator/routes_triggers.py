"""Zones, routes, custom domains and cron schedules: what `wrangler deploy` calls for a config
with `routes` or `[triggers]`, and what `invoke diff` reads back.

Zones: `GET /zones?name=` finds zones added with `state.triggers.add_zone()`; with
`auto_create`, every two-label name (`example.com`) is a zone (wrangler asks for
`app.example.com` first, then `example.com`).
"""

from __future__ import annotations

import uuid
from typing import Any

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok, paged
from dome_tasks.testing.emulator.routes_workers import existing_worker
from dome_tasks.testing.emulator.state import EmulatorState, now_iso

__all__ = ["router"]

router = Router()
SCRIPTS = "/accounts/{account}/workers/scripts/{script}"


def _zone(state: EmulatorState, name: str) -> str | None:
    triggers = state.triggers
    if name in triggers.zones:
        return triggers.zones[name]
    if state.auto_create and name.count(".") == 1:
        return triggers.add_zone(name)
    return None


def _zone_name(state: EmulatorState, zone_id: str) -> str:
    for name, found in state.triggers.zones.items():
        if found == zone_id:
            return name
    raise ApiError(404, 7003, f"Could not route to /zones/{zone_id}: no such zone")


def _host(pattern: str) -> str:
    text = pattern.split("://", 1)[-1]
    return text.split("/", 1)[0].lstrip("*.")


def _zone_for(state: EmulatorState, route: dict[str, Any]) -> tuple[str, str]:
    if route.get("zone_id"):
        return route["zone_id"], _zone_name(state, route["zone_id"])
    pieces = (route.get("zone_name") or _host(str(route.get("pattern", "")))).split(".")
    while len(pieces) > 1:
        name = ".".join(pieces)
        zone_id = _zone(state, name)
        if zone_id:
            return zone_id, name
        pieces.pop(0)
    raise ApiError(400, 10022, f"no zone for route {route.get('pattern')!r}")


@router.route("GET", "/zones")
def list_zones(state: EmulatorState, req: Request) -> Response:
    name = req.arg("name")
    if name is not None:
        zone_id = _zone(state, name)
        zones = [(name, zone_id)] if zone_id else []
    else:
        zones = list(state.triggers.zones.items())
    return paged([{"id": z, "name": n, "status": "active",
                   "account": {"id": state.account_id}} for n, z in zones], req)


@router.route("GET", "/zones/{zone}/workers/routes")
def zone_routes(state: EmulatorState, req: Request) -> Response:
    zone = req.params["zone"]
    found = [r for routes in state.triggers.routes.values() for r in routes
             if r.get("zone_id") == zone]
    return ok([{"id": r["id"], "pattern": r["pattern"], "script": r["script"]} for r in found])


@router.route("POST", "/zones/{zone}/workers/routes")
def add_zone_route(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    zone = req.params["zone"]
    name = _zone_name(state, zone)
    route = {"id": uuid.uuid4().hex, "pattern": body.get("pattern"), "script": body.get("script"),
             "zone_id": zone, "zone_name": name}
    with state.lock:
        state.triggers.routes.setdefault(str(body.get("script")), []).append(route)
    return ok({"id": route["id"], "pattern": route["pattern"], "script": route["script"]})


@router.route("PUT", SCRIPTS + "/routes")
def put_script_routes(state: EmulatorState, req: Request) -> Response:
    """Replace the worker's routes (wrangler's "PUT will delete previous routes")."""
    body = req.json() or []
    if not isinstance(body, list):
        raise ApiError(400, 10026, "expected a list of routes")
    name = req.params["script"]
    with state.lock:
        existing_worker(state, name)
        routes = []
        for item in body:
            zone_id, zone_name = _zone_for(state, item)
            routes.append({"id": uuid.uuid4().hex, "pattern": item.get("pattern"),
                           "script": name, "zone_id": zone_id, "zone_name": zone_name})
        state.triggers.routes[name] = routes
    return ok([{"id": r["id"], "pattern": r["pattern"], "zone_name": r["zone_name"]}
               for r in routes])


@router.route("GET", SCRIPTS + "/routes")
def get_script_routes(state: EmulatorState, req: Request) -> Response:
    existing_worker(state, req.params["script"])
    routes = state.triggers.routes.get(req.params["script"], [])
    return ok([{"id": r["id"], "pattern": r["pattern"], "zone_name": r["zone_name"]}
               for r in routes])


@router.route("GET", "/accounts/{account}/workers/services/{script}/environments/{env}/routes")
def service_routes(state: EmulatorState, req: Request) -> Response:
    """What `wrangler init --from-dash` reads: the worker's routes with their zone names."""
    existing_worker(state, req.params["script"])
    routes = state.triggers.routes.get(req.params["script"], [])
    return ok([{"id": r["id"], "pattern": r["pattern"], "zone_name": r["zone_name"],
                "script": r["script"]} for r in routes])


@router.route("PUT", SCRIPTS + "/domains/records")
def put_custom_domains(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    name = req.params["script"]
    with state.lock:
        existing_worker(state, name)
        domains = []
        for origin in body.get("origins") or []:
            hostname = origin.get("hostname")
            zone_id, zone_name = _zone_for(state, {"pattern": hostname, **{
                k: v for k, v in origin.items() if k in ("zone_id", "zone_name") and v}})
            domains.append({"id": uuid.uuid4().hex, "hostname": hostname, "service": name,
                            "environment": "production", "zone_id": zone_id,
                            "zone_name": zone_name, "created_on": now_iso()})
        state.triggers.domains[name] = domains
    return ok(domains)


@router.route("GET", "/accounts/{account}/workers/domains")
def list_custom_domains(state: EmulatorState, req: Request) -> Response:
    service = req.arg("service")
    found = [d for worker, domains in state.triggers.domains.items() for d in domains
             if service is None or worker == service]
    return ok(found)


@router.route("PUT", SCRIPTS + "/schedules")
def put_schedules(state: EmulatorState, req: Request) -> Response:
    body = req.json() or []
    if not isinstance(body, list):
        raise ApiError(400, 10026, "expected a list of {cron}")
    name = req.params["script"]
    with state.lock:
        existing_worker(state, name)
        schedules = [{"cron": item.get("cron"), "created_on": now_iso(),
                      "modified_on": now_iso()} for item in body]
        state.triggers.schedules[name] = schedules
    return ok({"schedules": schedules})


@router.route("GET", SCRIPTS + "/schedules")
def get_schedules(state: EmulatorState, req: Request) -> Response:
    existing_worker(state, req.params["script"])
    return ok({"schedules": list(state.triggers.schedules.get(req.params["script"], []))})
