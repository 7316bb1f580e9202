"""D1: database list/get/create/delete, `/query` + `/raw` and `/import` (what
`wrangler d1 execute --file --remote` uses), really executed in sqlite3."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok, paged
from dome_tasks.testing.emulator.d1 import D1Database, D1Error
from dome_tasks.testing.emulator.state import EmulatorState

__all__ = ["UPLOAD_PREFIX", "receive_upload", "router"]

router = Router()
DB = "/accounts/{account}/d1/database"
#: Where `d1 execute --file` uploads its SQL: outside the API (the real one is a signed R2 URL
#: that takes no Cloudflare credentials).
UPLOAD_PREFIX = "/d1-import-upload/"


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
    with state.lock:
        dbs = [db.to_api() for db in state.d1.values() if name is None or db.name == name]
    return paged(dbs)


@router.route("POST", DB)
def create_database(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    name = body.get("name")
    if not name:
        raise ApiError(400, 7400, "a database needs a name")
    with state.lock:  # one check-and-create: names are unique, as in the real API
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
    batch = body.get("batch") if isinstance(body, dict) else None
    queries = batch if isinstance(batch, list) and batch else [body]
    statements = []
    for item in queries:  # {"sql", "params"}, or {"batch": [{"sql", "params"}, …]}: one transaction
        sql = item.get("sql") if isinstance(item, dict) else None
        if not isinstance(sql, str) or not sql.strip():
            raise ApiError(400, 7400, "A query needs a non-empty sql string")
        statements.append((sql, item.get("params")))
    database = _database(state, req.params["db"])
    try:
        if len(statements) == 1:
            return database.query(*statements[0])
        return database.batch([(sql, list(params or [])) for sql, params in statements])
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


# --- `d1 execute --file --remote`: init -> PUT the file -> ingest -> poll ------------------------


@router.route("POST", DB + "/{db}/import")
def import_sql(state: EmulatorState, req: Request) -> Response:
    """The import flow of `d1 execute --file`: ``init`` hands out an upload URL, ``ingest``
    runs the uploaded file (atomically, as the real one), ``poll`` reports the outcome."""
    body = req.json() or {}
    action = body.get("action")
    db = _database(state, req.params["db"])
    if action == "init":
        etag = str(body.get("etag") or "")
        name = f"{etag or 'import'}-{secrets.token_hex(4)}.sql"
        with state.lock:
            state.d1_uploads[name] = None
        host = req.headers.get("host", "127.0.0.1")
        return ok({"success": True, "filename": name,
                   "upload_url": f"http://{host}{UPLOAD_PREFIX}{name}"})
    if action == "ingest":
        with state.lock:
            sql = state.d1_uploads.pop(str(body.get("filename")), None)
        if sql is None:
            raise ApiError(400, 7400, "nothing was uploaded under that filename")
        outcome = _ingest(db, sql.decode("utf-8", "replace"))
        with state.lock:
            state.d1_imports[db.uuid] = outcome
        return ok(outcome)
    if action == "poll":
        with state.lock:
            outcome = state.d1_imports.get(db.uuid)
        if outcome is None:
            raise ApiError(400, 7400, "no import is running on this database")
        return ok(outcome)
    raise ApiError(400, 7400, f"unknown import action {action!r}")


def _ingest(db: D1Database, sql: str) -> dict[str, Any]:
    try:
        results = db.query(sql)
    except D1Error as exc:
        return {"success": True, "status": "error", "errors": [str(exc)], "messages": []}
    bookmark = secrets.token_hex(8)
    meta = {"duration": sum(r["meta"]["duration"] for r in results),
            "rows_read": sum(r["meta"]["rows_read"] for r in results),
            "rows_written": sum(r["meta"]["rows_written"] for r in results), "size_after": 0}
    return {"success": True, "status": "complete", "at_bookmark": bookmark, "messages": [],
            "result": {"num_queries": len(results), "final_bookmark": bookmark, "meta": meta}}


def receive_upload(state: EmulatorState, name: str, body: bytes) -> Response:
    """The PUT to an upload URL ``init`` handed out: 200 with the MD5 of the file as its ETag."""
    with state.lock:
        if name not in state.d1_uploads:
            return Response(404, b"no such upload", {"Content-Type": "text/plain"})
        state.d1_uploads[name] = body
    etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return Response(200, b"", {"ETag": f'"{etag}"'})
