"""D1: database list/get/create and `/query` + `/raw`, really executed in sqlite3."""

from __future__ import annotations

from typing import Any

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok, paged
from dome_tasks.testing.emulator.d1 import D1Database, D1Error
from dome_tasks.testing.emulator.state import EmulatorState

__all__ = ["router"]

router = Router()
DB = "/accounts/{account}/d1/database"


def _database(state: EmulatorState, database_id: str) -> D1Database:
    """The database; unknown ids are created on first use unless the emulator is strict."""
    with state.lock:
        db = state.d1.get(database_id)
        if db is None:
            for candidate in state.d1.values():
                if candidate.name == database_id:
                    return candidate
            if not state.auto_create:
                raise ApiError(404, 7404, f"The database {database_id} could not be found")
            db = state.add_d1(name=database_id, database_id=database_id)
        return db


@router.route("GET", DB)
def list_databases(state: EmulatorState, req: Request) -> Response:
    name = req.arg("name")
    dbs = [db.to_api() for db in state.d1.values() if name is None or db.name == name]
    return paged(dbs)


@router.route("POST", DB)
def create_database(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    name = body.get("name")
    if not name:
        raise ApiError(400, 7400, "a database needs a name")
    if any(db.name == name for db in state.d1.values()):
        raise ApiError(400, 7502, f"A database with name '{name}' already exists")
    return ok(state.add_d1(name).to_api())


@router.route("GET", DB + "/{db}")
def get_database(state: EmulatorState, req: Request) -> Response:
    return ok(_database(state, req.params["db"]).to_api())


@router.route("DELETE", DB + "/{db}")
def delete_database(state: EmulatorState, req: Request) -> Response:
    db = _database(state, req.params["db"])
    with state.lock:
        state.d1.pop(db.uuid, None)
    db.close()
    return ok(None)


def _run(state: EmulatorState, req: Request) -> list[dict[str, Any]]:
    body = req.json() or {}
    sql = body.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise ApiError(400, 7400, "A query needs a non-empty sql string")
    try:
        return _database(state, req.params["db"]).query(sql, body.get("params"))
    except D1Error as exc:
        raise ApiError(400, 7500, str(exc)) from None


@router.route("POST", DB + "/{db}/query")
def query(state: EmulatorState, req: Request) -> Response:
    return ok([{k: v for k, v in item.items() if k != "columns"} for item in _run(state, req)])


@router.route("POST", DB + "/{db}/raw")
def raw(state: EmulatorState, req: Request) -> Response:
    """The rows as arrays, with the statement's columns even when it returned no row."""
    out = []
    for item in _run(state, req):
        columns = item.pop("columns")
        table = {"columns": columns, "rows": [[row[c] for c in columns] for row in item["results"]]}
        out.append({**item, "results": table})
    return ok(out)
