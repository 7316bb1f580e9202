"""R2 buckets, KV namespaces, queues (the lookups deploys with those bindings make) and
Vectorize indexes (`wrangler vectorize list/create/get/delete`, v2 and the deprecated v1
paths; configuration only, no vectors)."""

from __future__ import annotations

import uuid

from dome_tasks.emulator.api import ApiError, Request, Response, Router, ok, paged
from dome_tasks.emulator.state import EmulatorState, Queue, VectorizeIndex

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
    if state.buckets.pop(req.params["bucket"], None) is None:
        raise ApiError(404, 10006, "The specified bucket does not exist.")
    return ok({})


@router.route("GET", KV)
def list_kv(state: EmulatorState, req: Request) -> Response:
    return paged([{"id": ns.id, "title": ns.title} for ns in state.kv.values()])


@router.route("POST", KV)
def create_kv(state: EmulatorState, req: Request) -> Response:
    title = (req.json() or {}).get("title")
    if not title:
        raise ApiError(400, 10019, "a namespace needs a title")
    if any(ns.title == title for ns in state.kv.values()):
        raise ApiError(400, 10014, "A namespace with this account ID and title already exists")
    ns = state.add_kv(title)
    return ok({"id": ns.id, "title": ns.title, "supports_url_encoding": True})


@router.route("DELETE", KV + "/{ns}")
def delete_kv(state: EmulatorState, req: Request) -> Response:
    if state.kv.pop(req.params["ns"], None) is None:
        raise ApiError(404, 10013, "namespace not found")
    return ok(None)


@router.route("GET", QUEUES)
def list_queues(state: EmulatorState, req: Request) -> Response:
    """Filtered by every `name=` given; unknown names are created unless strict."""
    names = req.query.get("name", [])
    if state.auto_create:
        for name in names:
            state.add_queue(name)
    queues = [q for q in state.queues.values() if not names or q.queue_name in names]
    return paged([q.to_api() for q in queues])


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
