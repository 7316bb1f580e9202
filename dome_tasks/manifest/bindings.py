"""Every binding kind dome models, described once.

Each :class:`BindingKind` says how the kind is written in dome.yaml (its key, its fields, their
types, which are required once every layer is merged), how a merged entry becomes its model
object and goes back into wrangler's config shape, which fields name or identify a resource
that belongs to one environment (for the ``{name}{suffix}`` convention and the production
isolation check), and what the API emulator serves it as. The schema, the resolver, the
rendered config and the emulator's served-worker config all read :data:`KINDS`: adding a kind
is one entry here (plus its small frozen model class in :mod:`~dome_tasks.manifest.model`).

Fields of a binding that dome does not model (``remote``, ``preview_id``, ``jurisdiction``…)
are accepted in wrangler's own shape, checked against wrangler's JSON schema, and rendered
verbatim after the modelled ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dome_tasks.manifest import model
from dome_tasks.manifest.checks import CHECKS

NAME, ID, PATH, SERVICE = "name", "id", "path", "service"


@dataclass(frozen=True)
class Attr:
    """One field of a binding as written in dome.yaml."""

    check: str | None = None  # its check in :data:`~dome_tasks.manifest.checks.CHECKS`
    required: bool = False  # once every layer is merged (an override may supply it)
    role: str = ""  # NAME / ID of a resource, PATH (relative to the service), SERVICE reference
    wrangler: str | None = ""  # its key in wrangler's config ("" = same name, None = dome only)
    model: str = ""  # the model attribute holding it ("" = same name)
    resource: str = ""  # what the name or id names, in messages ("database", "queue"…)
    nullable: bool = False  # null in a later layer switches it off (migrations_dir: null)
    type: str = "string"  # its JSON Schema type

    def problem(self, value: Any) -> str | None:
        """What its check finds wrong with ``value`` (a name once a suffix is added)."""
        return CHECKS[self.check](value) if self.check else None


@dataclass(frozen=True)
class Entry:
    """One merged binding, ready to become a model object."""

    binding: str  # binding name ("" for list entries)
    values: dict[str, Any]  # declared fields, conventions applied
    extra: model.Extra  # wrangler keys dome does not model
    shared: bool
    this: str  # the service that declares it
    worker: Callable[[str], str]  # service name -> its worker in this environment


@dataclass(frozen=True)
class BindingKind:
    """How one kind of binding is written, modelled, rendered, isolated and served."""

    key: tuple[str, ...]  # where in a worker layer: ("d1_databases",), ("queues", "producers")
    attr: str  # the WorkerConfig attribute holding its model objects
    table: tuple[str, ...]  # where in wrangler's config
    fields: Mapping[str, Attr]
    build: Callable[[Entry], Any]  # Entry -> model object
    form: str = "map"  # "map": BINDING -> fields; "single": {binding, …}; "list": [fields…]
    name_key: str | None = "binding"  # wrangler's key for the binding name
    shorthand: str | None = None  # a plain string stands for {shorthand: value}
    label: str = ""  # for type errors of the shorthand form
    upload: str | None = None  # binding type in an upload's metadata (None: not served)
    served: Mapping[str, str] = field(default_factory=dict)  # config key <- metadata key
    one_of: tuple[str, ...] = ()  # at least one of these fields, once merged
    one_of_hint: str = "to look it up by name"  # what the alternatives are for

    @property
    def resources(self) -> dict[str, Attr]:
        """Fields naming or identifying a per-environment resource."""
        return {n: a for n, a in self.fields.items() if a.role in (NAME, ID)}

    def model_attr(self, name: str) -> str:
        return self.fields[name].model or name

    def wrangler_entry(self, obj: Any, rel: Callable[[str], str]) -> dict[str, Any]:
        """``obj`` in wrangler's shape: the binding name, modelled fields, then the extras."""
        entry: dict[str, Any] = {}
        if self.name_key:
            entry[self.name_key] = obj.binding
        for name, attr in self.fields.items():
            if attr.wrangler is None:
                continue
            value = getattr(obj, attr.model or name)
            if value is not None:
                entry[attr.wrangler or name] = rel(value) if attr.role == PATH else value
        entry.update(obj.extra)
        return entry

    def served_entry(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The served worker's config entry for one uploaded binding of this kind."""
        entry: dict[str, Any] = {self.name_key or "binding": metadata.get("name")}
        for key, source in self.served.items():
            if metadata.get(source) is not None:
                entry[key] = metadata[source]
        return entry


def _service(entry: Entry) -> model.ServiceBinding:
    target = entry.values.get("service")
    worker = entry.worker(target) if target else entry.values["worker"]
    return model.ServiceBinding(
        entry.binding, target, worker, entry.values.get("entrypoint"), entry.extra
    )


def _durable_object(entry: Entry) -> model.DurableObject:
    host = entry.values.get("service")
    script = entry.worker(host) if host and host != entry.this else None
    return model.DurableObject(entry.binding, entry.values.get("class_name", ""), script,
                               entry.extra)


def _simple(cls: type, *names: str, shared: bool = True) -> Callable[[Entry], Any]:
    """A builder passing ``binding``, the named fields, ``shared`` and ``extra`` through."""

    def build(entry: Entry) -> Any:
        values = {n: entry.values.get(n) for n in names}
        if shared:
            values["shared"] = entry.shared
        return cls(entry.binding, **values, extra=entry.extra)

    return build


def _consumer(entry: Entry) -> model.QueueConsumer:
    return model.QueueConsumer(**entry.values, shared=entry.shared, extra=entry.extra)


QUEUE = "queue_name"

KINDS: tuple[BindingKind, ...] = (
    BindingKind(
        key=("ai",), attr="ai", table=("ai",), form="single",
        fields={},
        build=lambda e: model.AI(e.binding, e.extra),
    ),
    BindingKind(
        key=("services",), attr="services", table=("services",),
        fields={
            "service": Attr("nonempty", role=SERVICE, model="worker"),
            # a worker outside this manifest (or not deployed in this environment), by name
            "worker": Attr("worker_name", wrangler=None),
            "entrypoint": Attr("entrypoint"),
        },
        build=_service, shorthand="service", one_of=("service", "worker"),
        one_of_hint="a worker this manifest does not deploy there, by its name",
        label="a service name or a mapping {service or worker, entrypoint}",
        upload="service", served={"service": "service", "entrypoint": "entrypoint"},
    ),
    BindingKind(
        key=("d1_databases",), attr="d1_databases", table=("d1_databases",),
        fields={
            "database_name": Attr("d1_name", True, NAME, resource="database"),
            "database_id": Attr("d1_id", role=ID, resource="database"),
            "migrations_dir": Attr("nonempty", role=PATH, nullable=True),
        },
        build=_simple(model.D1Database, "database_name", "database_id", "migrations_dir"),
        upload="d1", served={"database_id": "id"},
    ),
    BindingKind(
        key=("r2_buckets",), attr="r2_buckets", table=("r2_buckets",),
        fields={"bucket_name": Attr("r2_bucket", True, NAME, resource="R2 bucket")},
        build=_simple(model.R2Bucket, "bucket_name"),
        upload="r2_bucket", served={"bucket_name": "bucket_name"},
    ),
    BindingKind(
        key=("kv_namespaces",), attr="kv_namespaces", table=("kv_namespaces",),
        fields={
            "id": Attr("kv_id", role=ID, resource="KV namespace"),
            "title": Attr("nonempty", role=NAME, wrangler=None, resource="KV namespace"),
        },
        build=_simple(model.KVNamespace, "id", "title"),
        upload="kv_namespace", served={"id": "namespace_id"}, one_of=("id", "title"),
    ),
    BindingKind(
        key=("vectorize",), attr="vectorize", table=("vectorize",),
        fields={
            "index_name": Attr("vectorize_index", True, NAME,
                               resource="Vectorize index"),
        },
        build=_simple(model.VectorizeIndex, "index_name"),
    ),
    BindingKind(
        key=("hyperdrive",), attr="hyperdrive", table=("hyperdrive",),
        fields={"id": Attr("hyperdrive_id", True, ID, resource="Hyperdrive config")},
        build=_simple(model.Hyperdrive, "id"),
    ),
    BindingKind(
        key=("queues", "producers"), attr="queue_producers", table=("queues", "producers"),
        fields={"queue": Attr(QUEUE, True, NAME, resource="queue")},
        build=_simple(model.QueueProducer, "queue"),
        upload="queue", served={"queue": "queue_name"},
    ),
    BindingKind(
        key=("queues", "consumers"), attr="queue_consumers", table=("queues", "consumers"),
        form="list", name_key=None,
        fields={
            "queue": Attr(QUEUE, True, NAME, resource="queue"),
            "max_batch_size": Attr(type="integer"),
            "max_batch_timeout": Attr(type="integer"),
            "max_retries": Attr(type="integer"),
            "dead_letter_queue": Attr(QUEUE, role=NAME, resource="queue"),
            "max_concurrency": Attr(type="integer"),
        },
        build=_consumer,
    ),
    BindingKind(
        key=("durable_objects",), attr="durable_objects", table=("durable_objects", "bindings"),
        name_key="name",
        fields={
            "class_name": Attr("class_name", required=True),
            "service": Attr("nonempty", role=SERVICE, wrangler="script_name",
                            model="script_name"),
        },
        build=_durable_object,
    ),
)

BY_ATTR = {kind.attr: kind for kind in KINDS}
BY_UPLOAD = {kind.upload: kind for kind in KINDS if kind.upload}


def is_resource_kind(kind: BindingKind) -> bool:
    return bool(kind.resources)


def entries(layer: Mapping[str, Any], kind: BindingKind) -> Any:
    """The kind's part of one (merged or raw) worker layer, or None."""
    value: Any = layer
    for part in kind.key:
        if not isinstance(value, dict):  # layers are plain dicts (parsed YAML)
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class Resource:
    """A resource one worker uses in its environment, as named there (convention applied)."""

    kind: str  # the WorkerConfig attribute of its kind: "d1_databases", "queue_producers"…
    binding: str  # the binding name ("" for queue consumers)
    field: str  # the field naming it: "database_name", "queue", "dead_letter_queue"…
    name: str
    id: str | None  # its id when the manifest gives one (None: look it up by name)
    shared: bool  # shared between environments on purpose


def resources(config: model.WorkerConfig) -> list[Resource]:
    """Every named resource of ``config`` (what ``invoke provision`` creates or looks up)."""
    found = []
    for kind in KINDS:
        ids = [n for n, a in kind.fields.items() if a.role == ID]
        for obj in getattr(config, kind.attr):
            for name, attr in kind.fields.items():
                value = getattr(obj, kind.model_attr(name))
                if attr.role != NAME or not value:
                    continue
                ident = getattr(obj, ids[0]) if ids else None
                found.append(Resource(kind.attr, getattr(obj, "binding", ""), name, value, ident,
                                      bool(getattr(obj, "shared", False))))
    return found


def with_ids(
    config: model.WorkerConfig, ids: Mapping[tuple[str, str], str]
) -> model.WorkerConfig:
    """``config`` with each missing id filled in from ``ids[(kind, name)]`` (found by name)."""
    import dataclasses

    changes = {}
    for kind in KINDS:
        id_fields = [n for n, a in kind.fields.items() if a.role == ID]
        name_fields = [n for n, a in kind.fields.items() if a.role == NAME]
        if not id_fields or not name_fields:
            continue
        objects = getattr(config, kind.attr)
        updated = tuple(
            dataclasses.replace(obj, **{id_fields[0]: ids[kind.attr, name]})
            if not getattr(obj, id_fields[0])
            and (name := getattr(obj, name_fields[0])) is not None
            and (kind.attr, name) in ids
            else obj
            for obj in objects
        )
        if updated != objects:
            changes[kind.attr] = updated
    return dataclasses.replace(config, **changes) if changes else config
