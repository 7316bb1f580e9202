"""What the emulated Cloudflare account holds: workers, versions, deployments, storage."""

from __future__ import annotations

import contextlib

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dome_tasks.testing.emulator.d1 import D1Database

__all__ = [
    "Assets",
    "Bucket",
    "Deployment",
    "EmulatorState",
    "KVEntry",
    "KVNamespace",
    "Module",
    "Queue",
    "Triggers",
    "VectorizeIndex",
    "Version",
    "Worker",
    "now_iso",
]


def now_iso() -> str:
    """The current UTC time in the API's format (microseconds, trailing Z)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Module:
    """One uploaded file of a worker bundle."""

    name: str
    content_type: str
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class Version:
    """One uploaded version of a worker, with the metadata it was uploaded with and, as on
    Cloudflare, the secrets it runs with (those the worker had when it was made)."""

    id: str
    number: int
    created_on: str
    metadata: dict[str, Any]
    modules: dict[str, Module]
    source: str = "wrangler"
    triggered_by: str = "upload"
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def bindings(self) -> list[dict[str, Any]]:
        return list(self.metadata.get("bindings", []))

    def binding(self, name: str) -> dict[str, Any]:
        """The binding called `name` (KeyError if absent)."""
        for item in self.bindings:
            if item.get("name") == name:
                return item
        raise KeyError(name)

    @property
    def vars(self) -> dict[str, Any]:
        """Plain-text and JSON bindings, i.e. wrangler's `[vars]`."""
        out: dict[str, Any] = {}
        for item in self.bindings:
            if item.get("type") == "plain_text":
                out[item["name"]] = item.get("text")
            elif item.get("type") == "json":
                out[item["name"]] = item.get("json")
        return out

    @property
    def compatibility_date(self) -> str | None:
        return self.metadata.get("compatibility_date")

    @property
    def compatibility_flags(self) -> list[str]:
        return list(self.metadata.get("compatibility_flags", []))

    @property
    def main_module(self) -> str | None:
        return self.metadata.get("main_module") or self.metadata.get("body_part")

    @property
    def annotations(self) -> dict[str, Any]:
        return dict(self.metadata.get("annotations", {}))

    @property
    def message(self) -> str | None:
        return self.annotations.get("workers/message")

    @property
    def tag(self) -> str | None:
        return self.annotations.get("workers/tag")

    def to_api(self) -> dict[str, Any]:
        """The shape `GET .../versions/{id}` returns."""
        annotations = {"workers/triggered_by": self.triggered_by, **self.annotations}
        return {
            "id": self.id,
            "number": self.number,
            "metadata": {
                "created_on": self.created_on,
                "modified_on": self.created_on,
                "source": self.source,
                "author_id": "emulator",
                "author_email": "emulator@example.com",
                "hasPreview": False,
            },
            "annotations": annotations,
            "resources": {
                "bindings": [_redact(b) for b in self.bindings],
                "script": {
                    "etag": self.id.replace("-", ""),
                    "handlers": ["fetch"],
                    "last_deployed_from": "wrangler",
                },
                "script_runtime": {
                    "compatibility_date": self.compatibility_date,
                    "compatibility_flags": self.compatibility_flags,
                    "usage_model": "standard",
                },
            },
        }


def _redact(binding: dict[str, Any]) -> dict[str, Any]:
    if binding.get("type") in ("secret_text", "secret_key"):
        return {k: v for k, v in binding.items() if k != "text"}
    return dict(binding)


@dataclass
class Deployment:
    """One deployment: a traffic split over one or two versions."""

    id: str
    created_on: str
    versions: list[dict[str, Any]]
    annotations: dict[str, Any] = field(default_factory=dict)
    source: str = "wrangler"

    @property
    def traffic(self) -> dict[str, float]:
        return {v["version_id"]: v["percentage"] for v in self.versions}

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "strategy": "percentage",
            "author_email": "emulator@example.com",
            "created_on": self.created_on,
            "annotations": dict(self.annotations),
            "versions": [dict(v) for v in self.versions],
        }


@dataclass
class Worker:
    """A worker script: versions oldest first, deployments newest first, secrets."""

    name: str
    created_on: str = field(default_factory=now_iso)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)
    versions: list[Version] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    subdomain_enabled: bool = False
    previews_enabled: bool = False

    def version(self, version_id: str) -> Version:
        for item in self.versions:
            if item.id == version_id:
                return item
        raise KeyError(version_id)

    @property
    def latest_deployment(self) -> Deployment | None:
        return self.deployments[0] if self.deployments else None

    def traffic(self) -> dict[str, float]:
        """{version_id: percent} of the current deployment ({} if never deployed)."""
        dep = self.latest_deployment
        return dep.traffic if dep else {}

    def current_version(self) -> Version:
        """The version receiving the most traffic now (LookupError if never deployed)."""
        traffic = self.traffic()
        if not traffic:
            raise LookupError(f"worker {self.name!r} has no deployment")
        best = max(traffic.items(), key=lambda kv: kv[1])[0]
        return self.version(best)

    def add_version(
        self, metadata: dict[str, Any], modules: dict[str, Module], *, triggered_by: str = "upload"
    ) -> Version:
        metadata = inherit_bindings(self, metadata)
        version = Version(
            id=new_id(),
            number=len(self.versions) + 1,
            created_on=now_iso(),
            metadata=metadata,
            modules=modules,
            triggered_by=triggered_by,
            secrets=dict(self.secrets),
        )
        self.versions.append(version)
        return version

    def deploy(
        self, versions: list[dict[str, Any]], annotations: dict[str, Any] | None = None
    ) -> Deployment:
        dep = Deployment(
            id=new_id(),
            created_on=now_iso(),
            versions=[
                {"version_id": v["version_id"], "percentage": v["percentage"]} for v in versions
            ],
            annotations=dict(annotations or {}),
        )
        self.deployments.insert(0, dep)
        with contextlib.suppress(LookupError):  # the worker's secrets: those of what serves
            self.secrets = dict(self.current_version().secrets)
        return dep

    def bindings_for_settings(self) -> list[dict[str, Any]]:
        """Bindings as `GET .../settings` shows them: the current version's plus secrets."""
        try:
            bindings = [
                _redact(b)
                for b in self.current_version().bindings
                if b.get("type") not in ("secret_text", "secret_key")
            ]
        except LookupError:
            bindings = []
        return bindings + [{"name": n, "type": "secret_text"} for n in self.secrets]


@dataclass
class Bucket:
    name: str
    creation_date: str = field(default_factory=now_iso)
    location: str = "WNAM"
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> body


@dataclass(frozen=True)
class KVEntry:
    """One stored key: its value (bytes), optional JSON metadata and expiration (epoch s)."""

    value: bytes
    metadata: Any = None
    expiration: int | None = None

    def listing(self, name: str) -> dict[str, Any]:
        """The key as `GET .../keys` lists it (metadata and expiration only when set)."""
        item: dict[str, Any] = {"name": name}
        if self.expiration is not None:
            item["expiration"] = self.expiration
        if self.metadata is not None:
            item["metadata"] = self.metadata
        return item


@dataclass
class KVNamespace:
    """A KV namespace and its keys (kept sorted by name on listing, like the real API)."""

    id: str
    title: str
    entries: dict[str, KVEntry] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "supports_url_encoding": True}

    def names(self, prefix: str = "") -> list[str]:
        """Key names starting with `prefix`, in the API's order (UTF-8 byte order)."""
        return sorted((k for k in self.entries if k.startswith(prefix)), key=lambda k: k.encode())


@dataclass
class Queue:
    queue_id: str
    queue_name: str
    created_on: str = field(default_factory=now_iso)
    consumers: list[dict[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        return {
            "queue_id": self.queue_id,
            "settings": dict(self.settings),
            "queue_name": self.queue_name,
            "created_on": self.created_on,
            "modified_on": self.created_on,
            "producers": [],
            "producers_total_count": 0,
            "consumers": [dict(c) for c in self.consumers],
            "consumers_total_count": len(self.consumers),
        }


@dataclass
class VectorizeIndex:
    """A Vectorize index (configuration only: no vectors are stored)."""

    name: str
    dimensions: int
    metric: str
    description: str = ""
    created_on: str = field(default_factory=now_iso)

    def to_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "config": {"dimensions": self.dimensions, "metric": self.metric},
            "created_on": self.created_on,
            "modified_on": self.created_on,
        }


class EmulatorState:
    """The whole account. Handlers mutate it under `lock`; tests read it."""

    def __init__(
        self, account_id: str, *, account_name: str = "Emulated Account", auto_create: bool = True
    ) -> None:
        self.account_id = account_id
        self.auto_create = auto_create
        self.account_name = account_name
        self.lock = threading.RLock()
        self.workers: dict[str, Worker] = {}
        self.d1: dict[str, D1Database] = {}
        self.buckets: dict[str, Bucket] = {}
        self.kv: dict[str, KVNamespace] = {}
        self.queues: dict[str, Queue] = {}
        self.vectorize: dict[str, VectorizeIndex] = {}
        self.triggers = Triggers()
        self.assets = Assets()
        self.d1_uploads: dict[str, bytes | None] = {}  # `d1 execute --file`: upload name -> SQL
        self.d1_imports: dict[str, dict[str, Any]] = {}  # database uuid -> its last import
        self.subdomain = "emulator"

    def worker(self, name: str) -> Worker:
        """The worker called `name` (KeyError naming the known workers if absent)."""
        try:
            return self.workers[name]
        except KeyError:
            raise KeyError(f"no worker {name!r}; known: {sorted(self.workers)}") from None

    def traffic(self, name: str) -> dict[str, float]:
        return self.worker(name).traffic()

    def add_d1(self, name: str, database_id: str | None = None) -> D1Database:
        """Create a D1 database (an in-memory sqlite3 db) and return it."""
        with self.lock:
            db = D1Database(uuid=database_id or new_id(), name=name)
            self.d1[db.uuid] = db
            return db

    def d1_by_name(self, name: str) -> D1Database:
        for db in self.d1.values():
            if db.name == name:
                return db
        raise KeyError(name)

    def add_bucket(self, name: str) -> Bucket:
        with self.lock:
            return self.buckets.setdefault(name, Bucket(name))

    def add_kv(self, title: str, namespace_id: str | None = None) -> KVNamespace:
        with self.lock:
            ns = KVNamespace(id=namespace_id or uuid.uuid4().hex, title=title)
            self.kv[ns.id] = ns
            return ns

    def kv_by_title(self, title: str) -> KVNamespace:
        """The namespace called `title` (KeyError if none)."""
        for ns in self.kv.values():
            if ns.title == title:
                return ns
        raise KeyError(title)

    def add_queue(self, name: str) -> Queue:
        with self.lock:
            for queue in self.queues.values():
                if queue.queue_name == name:
                    return queue
            queue = Queue(queue_id=uuid.uuid4().hex, queue_name=name)
            self.queues[queue.queue_id] = queue
            return queue

    def add_vectorize(
        self, name: str, dimensions: int = 768, metric: str = "cosine", description: str = ""
    ) -> VectorizeIndex:
        with self.lock:
            index = VectorizeIndex(name, dimensions, metric, description)
            self.vectorize[name] = index
            return index

    def queue_by_name(self, name: str) -> Queue:
        for queue in self.queues.values():
            if queue.queue_name == name:
                return queue
        raise KeyError(name)

    def close(self) -> None:
        for db in self.d1.values():
            db.close()


def inherit_bindings(worker: Worker, metadata: dict[str, Any]) -> dict[str, Any]:
    """Resolve ``{"type": "inherit", "name": X}`` bindings to the current version's binding X,
    as the API does (wrangler uploads them for resources it provisioned on an earlier deploy)."""
    bindings = metadata.get("bindings")
    if not isinstance(bindings, list) or not any(
        isinstance(b, dict) and b.get("type") == "inherit" for b in bindings
    ):
        return metadata
    try:
        previous = {b.get("name"): b for b in worker.current_version().bindings}
    except LookupError:
        previous = {}
    resolved = [
        dict(previous[b["name"]])
        if isinstance(b, dict) and b.get("type") == "inherit" and b.get("name") in previous
        else b
        for b in bindings
    ]
    return {**metadata, "bindings": resolved}


@dataclass
class Triggers:
    """Zones, routes, custom domains and cron schedules (what deploys with triggers touch)."""

    zones: dict[str, str] = field(default_factory=dict)  # zone name -> zone id
    routes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # worker -> routes
    domains: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # worker -> domains
    schedules: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # worker -> crons

    def add_zone(self, name: str) -> str:
        """The id of zone ``name`` (created if new)."""
        return self.zones.setdefault(name, uuid.uuid5(uuid.NAMESPACE_DNS, name).hex)


@dataclass
class Assets:
    """Static assets by content hash, and the upload sessions (JWTs) that may add to them."""

    files: dict[str, bytes] = field(default_factory=dict)  # hash -> content
    sessions: dict[str, set[str]] = field(default_factory=dict)  # upload JWT -> hashes wanted

    def open_session(self, wanted: set[str]) -> str:
        token = f"emulator-assets-{uuid.uuid4().hex}"
        self.sessions[token] = set(wanted)
        return token
