"""R2 buckets, KV namespaces with their keys, values and metadata (`wrangler kv …`, and the
shared deploy history of :mod:`dome_tasks.lifecycle.history`), queues (the lookups deploys with
those bindings make) and Vectorize indexes (`wrangler vectorize list/create/get/delete`, v2 and
the deprecated v1 paths; configuration only, no vectors)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import quote, unquote

from dome_tasks.testing.emulator.api import ApiError, Request, Response, Router, ok, paged
from dome_tasks.testing.emulator.state import (
    Bucket,
    EmulatorState,
    KVEntry,
    KVNamespace,
    Queue,
    VectorizeIndex,
)

__all__ = ["router"]

router = Router()
R2 = "/accounts/{account}/r2/buckets"
KV = "/accounts/{account}/storage/kv/namespaces"
QUEUES = "/accounts/{account}/queues"
VECTORIZE = ("/accounts/{account}/vectorize/v2/indexes", "/accounts/{account}/vectorize/indexes")
#: What `wrangler vectorize create --preset` configures: (dimensions, metric).
VECTORIZE_PRESETS = {
    "@cf/baai/bge-small-en-v1.5": (384, "cosine"),
    "@cf/baai/bge-base-en-v1.5": (768, "cosine"),
    "@cf/baai/bge-large-en-v1.5": (1024, "cosine"),
    "openai/text-embedding-ada-002": (1536, "cosine"),
    "cohere/embed-multilingual-v2.0": (768, "cosine"),
}
VECTORIZE_METRICS = ("cosine", "euclidean", "dot-product")


def _bucket_api(state: EmulatorState, name: str) -> dict[str, str]:
    bucket = state.buckets[name]
    return {"name": bucket.name, "creation_date": bucket.creation_date, "location": bucket.location}


@router.route("GET", R2)
def list_buckets(state: EmulatorState, req: Request) -> Response:
    return ok({"buckets": [_bucket_api(state, n) for n in state.buckets]})


@router.route("POST", R2)
def create_bucket(state: EmulatorState, req: Request) -> Response:
    name = (req.json() or {}).get("name")
    if not name:
        raise ApiError(400, 10005, "a bucket needs a name")
    if name in state.buckets:
        raise ApiError(409, 10004, "The bucket you tried to create already exists")
    state.add_bucket(name)
    return ok(_bucket_api(state, name))


@router.route("GET", R2 + "/{bucket}")
def get_bucket(state: EmulatorState, req: Request) -> Response:
    if req.params["bucket"] not in state.buckets:
        raise ApiError(404, 10006, "The specified bucket does not exist.")
    return ok(_bucket_api(state, req.params["bucket"]))


@router.route("DELETE", R2 + "/{bucket}")
def delete_bucket(state: EmulatorState, req: Request) -> Response:
    """As the real API: a bucket that still holds objects is not deleted."""
    with state.lock:
        if _bucket(state, req.params["bucket"]).objects:
            raise ApiError(409, 10008, "The bucket you tried to delete is not empty.")
        state.buckets.pop(req.params["bucket"])
    return ok({})


@router.route("GET", R2 + "/{bucket}/objects")
def list_objects(state: EmulatorState, req: Request) -> Response:
    """Keys in order, ``per_page`` at a time after ``cursor`` (the last key of a page)."""
    per_page = int(req.arg("per_page", "1000") or 1000)
    cursor = req.arg("cursor", "") or ""
    with state.lock:
        keys = sorted(k for k in _bucket(state, req.params["bucket"]).objects if k > cursor)
        objects = _bucket(state, req.params["bucket"]).objects
        page = [{"key": k, "size": len(objects[k])} for k in keys[:per_page]]
    truncated = len(keys) > per_page
    info = {"cursor": page[-1]["key"] if truncated else "", "is_truncated": truncated,
            "per_page": per_page}
    return ok(page, result_info=info)


def _bucket(state: EmulatorState, name: str) -> Bucket:
    bucket = state.buckets.get(name)
    if bucket is None:
        raise ApiError(404, 10006, "The specified bucket does not exist.")
    return bucket


@router.route("PUT", R2 + "/{bucket}/objects/{key:path}")
def put_object(state: EmulatorState, req: Request) -> Response:
    """``wrangler r2 object put --remote``: the body is the object."""
    with state.lock:
        _bucket(state, req.params["bucket"]).objects[unquote(req.params["key"])] = req.body
    return ok({"key": unquote(req.params["key"]), "size": len(req.body)})


@router.route("GET", R2 + "/{bucket}/objects/{key:path}")
def get_object(state: EmulatorState, req: Request) -> Response:
    body = _bucket(state, req.params["bucket"]).objects.get(unquote(req.params["key"]))
    if body is None:
        raise ApiError(404, 10007, "The specified key does not exist.")
    return Response(200, body, {"Content-Type": "application/octet-stream"})


@router.route("DELETE", R2 + "/{bucket}/objects/{key:path}")
def delete_object(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        _bucket(state, req.params["bucket"]).objects.pop(unquote(req.params["key"]), None)
    return ok({})


@router.route("GET", KV)
def list_kv(state: EmulatorState, req: Request) -> Response:
    """Paged like the real API (`page`, `per_page` up to 100, `order`=id|title, `direction`)."""
    page = max(1, _int(req.arg("page"), 1))
    per_page = min(100, max(1, _int(req.arg("per_page"), 20)))
    order = req.arg("order") or "id"
    if order not in ("id", "title"):
        raise ApiError(400, 10001, "order must be id or title")
    with state.lock:
        spaces = sorted(state.kv.values(), key=lambda ns: getattr(ns, order),
                        reverse=req.arg("direction") == "desc")
        chunk = spaces[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk),
                "total_count": len(spaces), "total_pages": -(-len(spaces) // per_page)}
        return ok([ns.to_api() for ns in chunk], result_info=info)


@router.route("POST", KV)
def create_kv(state: EmulatorState, req: Request) -> Response:
    title = (req.json() or {}).get("title")
    if not title:
        raise ApiError(400, 10019, "a namespace needs a title")
    with state.lock:
        if any(ns.title == title for ns in state.kv.values()):
            raise ApiError(400, 10014, "A namespace with this account ID and title already exists")
        ns = state.add_kv(title)
    return ok(ns.to_api())


@router.route("GET", KV + "/{ns}")
def get_kv(state: EmulatorState, req: Request) -> Response:
    return ok(_namespace(state, req).to_api())


@router.route("PUT", KV + "/{ns}")
def rename_kv(state: EmulatorState, req: Request) -> Response:
    title = (req.json() or {}).get("title")
    if not title:
        raise ApiError(400, 10019, "a namespace needs a title")
    with state.lock:
        ns = _namespace(state, req)
        ns.title = title
    return ok(ns.to_api())


@router.route("DELETE", KV + "/{ns}")
def delete_kv(state: EmulatorState, req: Request) -> Response:
    if state.kv.pop(req.params["ns"], None) is None:
        raise ApiError(404, 10013, "namespace not found")
    return ok(None)


# --- keys and values -------------------------------------------------------------------------
# Key names travel percent-encoded in the path (`staging%2Fsilo%2F…`); the limits are the real
# ones: names up to 512 bytes, metadata up to 1024 bytes of JSON, lists of 10 to 1000 keys.
KEY_LIMIT = 512
METADATA_LIMIT = 1024


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        raise ApiError(400, 10001, f"{value!r} is not a number") from None


def _namespace(state: EmulatorState, req: Request) -> KVNamespace:
    ns = state.kv.get(req.params["ns"])
    if ns is None:
        raise ApiError(404, 10013, "namespace not found")
    return ns


def _key_name(raw: str) -> str:
    name = unquote(raw)
    if name in ("", ".", ".."):
        raise ApiError(400, 10020, f"invalid key name {name!r}")
    if len(name.encode()) > KEY_LIMIT:
        raise ApiError(414, 10025, f"UTF-8 encoded length of {len(name.encode())} exceeds key "
                       f"length limit of {KEY_LIMIT}.")
    return name


def _metadata(value: Any) -> Any:
    if value is None:
        return None
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > METADATA_LIMIT:
        raise ApiError(413, 10028, f"Metadata length of {size} exceeds limit of {METADATA_LIMIT}.")
    return value


def _expiration(expiration: Any, ttl: Any) -> int | None:
    if ttl not in (None, ""):
        return int(time.time()) + int(ttl)
    return int(expiration) if expiration not in (None, "") else None


def _live(ns: KVNamespace, name: str) -> KVEntry | None:
    entry = ns.entries.get(name)
    if entry is not None and entry.expiration is not None and entry.expiration <= time.time():
        del ns.entries[name]
        return None
    return entry


@router.route("GET", KV + "/{ns}/keys")
def list_keys(state: EmulatorState, req: Request) -> Response:
    """Keys in byte order from the opaque `cursor`, at most `limit` (10-1000), with metadata."""
    limit = _int(req.arg("limit"), 1000)
    if not 10 <= limit <= 1000:
        raise ApiError(400, 10026, "limit must be between 10 and 1000")
    prefix = req.arg("prefix") or ""
    cursor = req.arg("cursor") or ""
    try:
        after = base64.urlsafe_b64decode(cursor.encode()).decode() if cursor else None
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, 10033, "invalid cursor") from None
    with state.lock:
        ns = _namespace(state, req)
        names = [n for n in ns.names(prefix) if _live(ns, n) is not None]
        if after is not None:
            names = [n for n in names if n.encode() > after.encode()]
        page = names[:limit]
        items = [ns.entries[n].listing(n) for n in page]
    more = len(names) > limit
    next_cursor = base64.urlsafe_b64encode(page[-1].encode()).decode() if more else ""
    return ok(items, result_info={"count": len(items), "cursor": next_cursor})


@router.route("GET", KV + "/{ns}/values/{key}")
def get_value(state: EmulatorState, req: Request) -> Response:
    """The raw value (no JSON envelope), like the real API."""
    name = _key_name(req.params["key"])
    with state.lock:
        entry = _live(_namespace(state, req), name)
    if entry is None:
        raise ApiError(404, 10009, "get: 'key not found'")
    headers = {"Content-Type": "application/octet-stream"}
    if entry.expiration is not None:
        headers["Expiration"] = str(entry.expiration)
    return Response(200, entry.value, headers)


@router.route("GET", KV + "/{ns}/metadata/{key}")
def get_metadata(state: EmulatorState, req: Request) -> Response:
    name = _key_name(req.params["key"])
    with state.lock:
        entry = _live(_namespace(state, req), name)
    if entry is None:
        raise ApiError(404, 10009, "get: 'key not found'")
    return ok(entry.metadata)


@router.route("PUT", KV + "/{ns}/values/{key}")
def put_value(state: EmulatorState, req: Request) -> Response:
    """The body is the value, or multipart fields `value` and `metadata` (JSON)."""
    name = _key_name(req.params["key"])
    metadata = None
    value = req.body
    if req.headers.get("content-type", "").startswith("multipart/form-data"):
        fields = {part.name: part for part in req.parts()}
        if "value" not in fields:
            raise ApiError(400, 10021, "multipart body has no value field")
        value = fields["value"].body
        if "metadata" in fields:
            try:
                metadata = json.loads(fields["metadata"].body or b"null")
            except ValueError:
                raise ApiError(400, 10026, "metadata is not valid JSON") from None
    entry = KVEntry(value, _metadata(metadata),
                    _expiration(req.arg("expiration"), req.arg("expiration_ttl")))
    with state.lock:
        _namespace(state, req).entries[name] = entry
    return ok({})


@router.route("DELETE", KV + "/{ns}/values/{key}")
def delete_value(state: EmulatorState, req: Request) -> Response:
    name = _key_name(req.params["key"])
    with state.lock:
        _namespace(state, req).entries.pop(name, None)
    return ok({})


@router.route("PUT", KV + "/{ns}/bulk")
def bulk_put(state: EmulatorState, req: Request) -> Response:
    """A JSON array of `{key, value, metadata?, base64?, expiration?, expiration_ttl?}`."""
    items = req.json()
    if not isinstance(items, list) or len(items) > 10000:
        raise ApiError(400, 10001, "the body must be a JSON array of at most 10000 pairs")
    entries: dict[str, KVEntry] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) \
                or not isinstance(item.get("value"), str):
            raise ApiError(400, 10001, "each pair needs a string key and a string value")
        name = _key_name(quote(item["key"], safe=""))
        raw = item["value"]
        value = base64.b64decode(raw) if item.get("base64") else raw.encode()
        entries[name] = KVEntry(value, _metadata(item.get("metadata")),
                                _expiration(item.get("expiration"), item.get("expiration_ttl")))
    with state.lock:
        _namespace(state, req).entries.update(entries)
    return ok({"successful_key_count": len(entries), "unsuccessful_keys": []})


def _bulk_delete(state: EmulatorState, req: Request) -> Response:
    names = req.json()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ApiError(400, 10001, "the body must be a JSON array of key names")
    with state.lock:
        ns = _namespace(state, req)
        for name in names:
            ns.entries.pop(name, None)
    return ok({"successful_key_count": len(names), "unsuccessful_keys": []})


router.route("DELETE", KV + "/{ns}/bulk")(_bulk_delete)
router.route("POST", KV + "/{ns}/bulk/delete")(_bulk_delete)


@router.route("POST", KV + "/{ns}/bulk/get")
def bulk_get(state: EmulatorState, req: Request) -> Response:
    """`{keys: [...], type?: text|json, withMetadata?: bool}` -> `{values: {key: ...}}`."""
    body = req.json() or {}
    keys = body.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= 100:
        raise ApiError(400, 10001, "keys must be a list of 1 to 100 key names")
    as_json = body.get("type") == "json"
    values: dict[str, Any] = {}
    with state.lock:
        ns = _namespace(state, req)
        for name in keys:
            entry = _live(ns, name)
            value: Any = None
            if entry is not None:
                value = json.loads(entry.value) if as_json else entry.value.decode("utf-8", "replace")
            if body.get("withMetadata"):
                meta = entry.metadata if entry is not None else None
                value = None if entry is None else {"value": value, "metadata": meta}
            values[name] = value
    return ok({"values": values})


@router.route("GET", QUEUES)
def list_queues(state: EmulatorState, req: Request) -> Response:
    """Filtered by every `name=` given; unknown names are created unless strict."""
    names = req.query.get("name", [])
    if state.auto_create:
        for name in names:
            state.add_queue(name)
    queues = [q for q in state.queues.values() if not names or q.queue_name in names]
    return paged([q.to_api() for q in queues], req)


@router.route("POST", QUEUES)
def create_queue(state: EmulatorState, req: Request) -> Response:
    name = (req.json() or {}).get("queue_name")
    if not name:
        raise ApiError(400, 11000, "a queue needs a queue_name")
    if any(q.queue_name == name for q in state.queues.values()):
        raise ApiError(409, 11009, "A queue with this name already exists")
    return ok(state.add_queue(name).to_api())


def _queue(state: EmulatorState, queue_id: str) -> Queue:
    queue = state.queues.get(queue_id)
    if queue is None:
        raise ApiError(404, 11000, f"Queue {queue_id} does not exist")
    return queue


@router.route("GET", QUEUES + "/{queue}")
def get_queue(state: EmulatorState, req: Request) -> Response:
    return ok(_queue(state, req.params["queue"]).to_api())


@router.route("PUT", QUEUES + "/{queue}")
@router.route("PATCH", QUEUES + "/{queue}")
def update_queue(state: EmulatorState, req: Request) -> Response:
    """A producer's settings on deploy (wrangler 4.20: PUT ``delivery_delay``), pause/resume
    (PATCH ``delivery_paused``)."""
    body = req.json() or {}
    with state.lock:
        queue = _queue(state, req.params["queue"])
        queue.settings.update(body.get("settings") or {})
    return ok(queue.to_api())


@router.route("DELETE", QUEUES + "/{queue}")
def delete_queue(state: EmulatorState, req: Request) -> Response:
    _queue(state, req.params["queue"])
    del state.queues[req.params["queue"]]
    return ok(None)


@router.route("POST", QUEUES + "/{queue}/consumers")
def add_consumer(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    with state.lock:
        queue = _queue(state, req.params["queue"])
        consumer = {
            "consumer_id": uuid.uuid4().hex,
            "type": body.get("type", "worker"),
            "script": body.get("script_name"),
            "settings": body.get("settings", {}),
            "dead_letter_queue": body.get("dead_letter_queue"),
            "created_on": queue.created_on,
        }
        queue.consumers.append(consumer)
    return ok(consumer)


@router.route("PUT", QUEUES + "/{queue}/consumers/{consumer}")
def update_consumer(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    with state.lock:
        queue = _queue(state, req.params["queue"])
        for consumer in queue.consumers:
            if consumer["consumer_id"] == req.params["consumer"]:
                consumer.update(
                    settings=body.get("settings", consumer["settings"]),
                    dead_letter_queue=body.get("dead_letter_queue"),
                )
                return ok(consumer)
    raise ApiError(404, 11000, f"Consumer {req.params['consumer']} does not exist")


@router.route("GET", QUEUES + "/{queue}/consumers")
def list_consumers(state: EmulatorState, req: Request) -> Response:
    return paged([dict(c) for c in _queue(state, req.params["queue"]).consumers])


@router.route("DELETE", QUEUES + "/{queue}/consumers/{consumer}")
def delete_consumer(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        queue = _queue(state, req.params["queue"])
        before = len(queue.consumers)
        queue.consumers = [c for c in queue.consumers if c["consumer_id"] != req.params["consumer"]]
        if len(queue.consumers) == before:
            raise ApiError(404, 11000, f"Consumer {req.params['consumer']} does not exist")
    return ok(None)


def _index(state: EmulatorState, name: str) -> VectorizeIndex:
    index = state.vectorize.get(name)
    if index is None:
        raise ApiError(404, 3000, f"vectorize.not_found: index {name} does not exist")
    return index


def list_indexes(state: EmulatorState, req: Request) -> Response:
    return ok([index.to_api() for index in state.vectorize.values()])


def create_index(state: EmulatorState, req: Request) -> Response:
    body = req.json() or {}
    name = body.get("name")
    config = body.get("config") or {}
    if not name:
        raise ApiError(400, 3001, "an index needs a name")
    if "preset" in config:
        if config["preset"] not in VECTORIZE_PRESETS:
            raise ApiError(400, 3002, f"unknown preset {config['preset']!r}")
        dimensions, metric = VECTORIZE_PRESETS[config["preset"]]
    else:
        dimensions, metric = config.get("dimensions"), config.get("metric")
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 1536:
            raise ApiError(400, 3002, "dimensions must be an integer from 1 to 1536")
        if metric not in VECTORIZE_METRICS:
            raise ApiError(400, 3002, f"metric must be one of {', '.join(VECTORIZE_METRICS)}")
    with state.lock:
        if name in state.vectorize:
            raise ApiError(409, 3002, f"vectorize.index.duplicate_name: {name} already exists")
        index = state.add_vectorize(name, dimensions, metric, body.get("description") or "")
    return ok(index.to_api())


def get_index(state: EmulatorState, req: Request) -> Response:
    return ok(_index(state, req.params["index"]).to_api())


def index_info(state: EmulatorState, req: Request) -> Response:
    index = _index(state, req.params["index"])
    return ok(
        {
            "dimensions": index.dimensions,
            "vectorCount": 0,
            "processedUpToDatetime": None,
            "processedUpToMutation": None,
        }
    )


def delete_index(state: EmulatorState, req: Request) -> Response:
    with state.lock:
        _index(state, req.params["index"])
        del state.vectorize[req.params["index"]]
    return ok(None)


for _base in VECTORIZE:
    router.route("GET", _base)(list_indexes)
    router.route("POST", _base)(create_index)
    router.route("GET", _base + "/{index}")(get_index)
    router.route("GET", _base + "/{index}/info")(index_info)
    router.route("DELETE", _base + "/{index}")(delete_index)
