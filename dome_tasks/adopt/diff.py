"""``invoke diff SERVICE ENV``: what deploying the rendered config would change, like
``helm diff``.

Both sides become the same plain *view*, one line per fact (name, compatibility settings,
workers.dev, observability, each binding and var, each route, custom domain and cron), so that a
unified diff reads as "``-`` what Cloudflare serves now, ``+`` what it would serve". The live
side comes from the API (the script's settings, subdomain, routes, custom domains and cron
schedules); ``--against`` reads a hand-kept wrangler config instead, as wrangler itself would
deploy it for ``--env``: both sides are what the project's wrangler itself reads
(:mod:`dome_tasks.adopt.judge`), the hand-kept config with ``--env`` and the rendered one. Secrets are never compared (values are not
readable, names are listed).
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dome_tasks.adopt.read import AdoptError, read
from dome_tasks.adopt.resources import ResourceLock
from dome_tasks.adopt.sources import PRODUCTION, dome_env_name
from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi

__all__ = ["DiffResult", "Lookup", "View", "config_view", "diff_service", "live_view", "unified"]

#: Cloudflare's codes for "this worker does not exist".
NOT_FOUND = (10007, 10090)
TIMEOUT_S = 30.0
CREDENTIALS_HINT = ("set CLOUDFLARE_API_TOKEN (a token that may read Workers scripts, routes, "
                    "D1 and KV), or run `wrangler login`")
#: Binding types that never reach a view (their values cannot be read back).
UNCOMPARED = ("secret_text", "secret_key", "inherit")


@dataclass
class View:
    """One side of a diff: its label and its lines (sorted within each section)."""

    label: str
    lines: list[str]
    secrets: tuple[str, ...] = ()


# --------------------------------------------------------------------------- one binding


def _binding_line(name: str, kind: str, *parts: Any) -> str:
    detail = " ".join(str(p) for p in parts if p not in (None, ""))
    return f"binding {name}: {kind}" + (f" {detail}" if detail else "")


def _api_binding(item: Mapping[str, Any], worker: str) -> str | None:
    """One binding as the API shows it (settings, or an upload's metadata)."""
    kind, name = item.get("type"), item.get("name")
    if kind in UNCOMPARED:
        return None
    if kind == "plain_text":
        return f"var {name} = {json.dumps(item.get('text'))}"
    if kind == "json":
        return f"var {name} = {json.dumps(item.get('json'), sort_keys=True)}"
    if kind == "kv_namespace":
        return _binding_line(name, "kv", item.get("namespace_id"))
    if kind == "d1":
        return _binding_line(name, "d1", item.get("id") or item.get("database_id"))
    if kind == "r2_bucket":
        return _binding_line(name, "r2", item.get("bucket_name"), item.get("jurisdiction"))
    if kind == "queue":
        return _binding_line(name, "queue", item.get("queue_name"))
    if kind == "vectorize":
        return _binding_line(name, "vectorize", item.get("index_name"))
    if kind == "service":
        entry = item.get("entrypoint")
        return _binding_line(name, "service", item.get("service"),
                             f"(entrypoint {entry})" if entry else None)
    if kind == "durable_object_namespace":
        host = item.get("script_name")
        return _binding_line(name, "durable object", item.get("class_name"),
                             f"(in {host})" if host and host != worker else None)
    if kind == "analytics_engine":
        return _binding_line(name, "analytics engine", item.get("dataset"))
    if kind == "hyperdrive":
        return _binding_line(name, "hyperdrive", item.get("id"))
    return _binding_line(name, str(kind))


# --------------------------------------------------------------------------- rendered side


@dataclass
class Lookup:
    """Ids a config leaves to a lookup by name (D1 database name, KV title) -> id."""

    d1: Callable[[str], str | None]
    kv: Callable[[str], str | None]


def _config_bindings(config: Mapping[str, Any], lookup: Lookup | None) -> list[str]:
    worker = str(config.get("name"))
    metadata: list[dict[str, Any]] = []
    for name, value in (config.get("vars") or {}).items():
        if isinstance(value, str):
            metadata.append({"type": "plain_text", "name": name, "text": value})
        else:
            metadata.append({"type": "json", "name": name, "json": value})
    for item in config.get("kv_namespaces") or []:
        ns = item.get("id") or (lookup.kv(item["title"]) if lookup and item.get("title") else None)
        metadata.append({"type": "kv_namespace", "name": item.get("binding"),
                         "namespace_id": ns or "(to be looked up: not created yet?)"})
    for item in config.get("d1_databases") or []:
        db = item.get("database_id")
        if not db and lookup and item.get("database_name"):
            db = lookup.d1(item["database_name"])
        metadata.append({"type": "d1", "name": item.get("binding"),
                         "id": db or f"(name {item.get('database_name')}: not created yet?)"})
    for item in config.get("r2_buckets") or []:
        metadata.append({"type": "r2_bucket", "name": item.get("binding"),
                         "bucket_name": item.get("bucket_name"),
                         "jurisdiction": item.get("jurisdiction")})
    for item in (config.get("queues") or {}).get("producers") or []:
        metadata.append({"type": "queue", "name": item.get("binding"),
                         "queue_name": item.get("queue")})
    for item in config.get("vectorize") or []:
        metadata.append({"type": "vectorize", "name": item.get("binding"),
                         "index_name": item.get("index_name")})
    for item in config.get("services") or []:
        metadata.append({"type": "service", "name": item.get("binding"),
                         "service": item.get("service"), "entrypoint": item.get("entrypoint")})
    for item in (config.get("durable_objects") or {}).get("bindings") or []:
        metadata.append({"type": "durable_object_namespace", "name": item.get("name"),
                         "class_name": item.get("class_name"),
                         "script_name": item.get("script_name")})
    for item in config.get("analytics_engine_datasets") or []:
        metadata.append({"type": "analytics_engine", "name": item.get("binding"),
                         "dataset": item.get("dataset")})
    for item in config.get("hyperdrive") or []:
        metadata.append({"type": "hyperdrive", "name": item.get("binding"), "id": item.get("id")})
    for key, kind in (("ai", "ai"), ("browser", "browser"), ("images", "images"),
                      ("version_metadata", "version_metadata")):
        table = config.get(key)
        if isinstance(table, dict) and table.get("binding"):
            metadata.append({"type": kind, "name": table["binding"]})
    assets = config.get("assets")
    if isinstance(assets, dict) and assets.get("binding"):
        metadata.append({"type": "assets", "name": assets["binding"]})
    return [line for item in metadata if (line := _api_binding(item, worker))]


def _routes(config: Mapping[str, Any]) -> list[str]:
    routes = config.get("routes") or ([config["route"]] if config.get("route") else [])
    lines = []
    for route in routes:
        if isinstance(route, str):
            lines.append(f"route {route}")
        elif route.get("custom_domain"):
            lines.append(f"custom domain {route.get('pattern')}")
        else:
            lines.append(f"route {route.get('pattern')}")
    return lines


def _observability(value: Any) -> str:
    value = value if isinstance(value, dict) else {}
    parts = ["enabled" if value.get("enabled") else "disabled"]
    if value.get("enabled") and value.get("head_sampling_rate") not in (None, 1):
        parts.append(f"head_sampling_rate {value['head_sampling_rate']}")
    return "observability: " + ", ".join(parts)


def _common(name: str, date: Any, flags: Any, workers_dev: bool, observability: Any) -> list[str]:
    return [
        f"name: {name}",
        f"compatibility_date: {date}",
        f"compatibility_flags: {', '.join(sorted(flags or [])) or '(none)'}",
        f"workers_dev: {'enabled' if workers_dev else 'disabled'}",
        _observability(observability),
    ]


def config_view(config: Mapping[str, Any], label: str, lookup: Lookup | None = None) -> View:
    """What deploying ``config`` (one self-contained wrangler config) makes Cloudflare serve."""
    routes = _routes(config)
    workers_dev = config.get("workers_dev")
    if workers_dev is None:  # wrangler: on unless the worker has routes
        workers_dev = not routes
    crons = (config.get("triggers") or {}).get("crons") or []
    lines = _common(str(config.get("name")), config.get("compatibility_date"),
                    config.get("compatibility_flags"), bool(workers_dev),
                    config.get("observability"))
    lines += sorted(_config_bindings(config, lookup))
    lines += sorted(routes) + sorted(f"cron {c}" for c in crons)
    return View(label, lines)


# --------------------------------------------------------------------------- live side


def live_view(api: CloudflareApi, account: str, worker: str) -> View | None:
    """What Cloudflare serves for ``worker`` now (None: no such worker)."""
    base = f"/accounts/{account}/workers/scripts/{worker}"
    try:
        settings = api.get(f"{base}/settings") or {}
    except ApiFailure as error:
        if error.code in NOT_FOUND or error.status == 404:
            return None
        raise
    subdomain = api.get(f"{base}/subdomain") or {}
    routes = api.get(f"/accounts/{account}/workers/services/{worker}/environments/production/routes")
    domains = api.get(f"/accounts/{account}/workers/domains", {"service": worker})
    schedules = (api.get(f"{base}/schedules") or {}).get("schedules") or []
    bindings = settings.get("bindings") or []
    lines = _common(worker, settings.get("compatibility_date"),
                    settings.get("compatibility_flags"), bool(subdomain.get("enabled")),
                    settings.get("observability"))
    lines += sorted(line for b in bindings if (line := _api_binding(b, worker)))
    lines += sorted([f"route {r.get('pattern')}" for r in routes or []]
                    + [f"custom domain {d.get('hostname')}" for d in domains or []
                       if d.get("service") == worker])
    lines += sorted(f"cron {s.get('cron')}" for s in schedules)
    secrets = tuple(sorted(str(b.get("name")) for b in bindings
                           if b.get("type") in ("secret_text", "secret_key")))
    return View(f"live: {worker}", lines, secrets)


def api_lookup(api: CloudflareApi, account: str) -> Lookup:
    """Look D1 databases and KV namespaces up by name through the API (each list read once)."""
    cache: dict[str, dict[str, str]] = {}

    def names(kind: str) -> dict[str, str]:
        if kind not in cache:
            if kind == "d1":
                items = api.get_list(f"/accounts/{account}/d1/database")
                cache[kind] = {i["name"]: i["uuid"] for i in items}
            else:
                items = api.get_list(f"/accounts/{account}/storage/kv/namespaces")
                cache[kind] = {i["title"]: i["id"] for i in items}
        return cache[kind]

    return Lookup(d1=lambda n: names("d1").get(n), kv=lambda n: names("kv").get(n))


# --------------------------------------------------------------------------- the diff


def unified(old: View | None, new: View, old_label: str) -> list[str]:
    """The unified diff from ``old`` (None: nothing deployed) to ``new``; [] when equal."""
    before = old.lines if old is not None else []
    label = old.label if old is not None else old_label
    return list(difflib.unified_diff(before, new.lines, fromfile=label, tofile=new.label,
                                     lineterm="", n=len(before) + len(new.lines)))


# --------------------------------------------------------------------------- the task's work


@dataclass
class DiffResult:
    lines: list[str]
    worker: str
    against: str
    secrets: tuple[str, ...] = ()

    @property
    def equal(self) -> bool:
        return not self.lines


def _rendered(manifest: Any, service: str, environment: str) -> tuple[dict[str, Any], str, str]:
    from dome_tasks.render.config import check_toml, config_path, render_config

    config = manifest.resolve(service, environment)
    out = config_path(manifest.root, config.environment, config.service)
    text = render_config(config, manifest_path=manifest.path, out_path=out,
                         templates_dir=manifest.templates_dir)
    rel = out.relative_to(manifest.root).as_posix()
    return check_toml(text, where=str(out)), rel, text


def _read_by_wrangler(manifest: Any, original: Path, block: str | None, environment: str,
                      service: str, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the project's wrangler reads from the hand-kept config (``--env block``) and from
    the rendered one: the two sides of ``--against``, as the import's proof sees them."""
    from dome_tasks.adopt.judge import WranglerReader, scratch

    with scratch(manifest.root) as folder:
        copy = folder / environment / service / "wrangler.toml"
        copy.parent.mkdir(parents=True)
        copy.write_text(text, encoding="utf-8")
        before, after = WranglerReader.for_project(manifest.root).read(
            [(original, block), (copy, None)])
    for reading, what in ((before, str(original)), (after, "the rendered config")):
        if reading.error or reading.config is None:
            raise AdoptError(f"wrangler cannot read {what}: {reading.error}")
    return dict(before.config or {}), dict(after.config or {})


def _account(api: CloudflareApi, *candidates: str | None) -> str:
    for candidate in (*candidates, os.environ.get("CLOUDFLARE_ACCOUNT_ID")):
        if candidate:
            return candidate
    accounts = api.get_list("/accounts")
    if len(accounts) == 1:
        return str(accounts[0]["id"])
    raise AdoptError("which Cloudflare account? the token sees "
                     f"{len(accounts)} accounts and the manifest names none",
                     hint="set account_id on the environment, or CLOUDFLARE_ACCOUNT_ID")


def against_block(config: Mapping[str, Any], environment: str, explicit: str | None) -> str | None:
    """The env block of a hand-kept config that stands for ``environment`` (None: top level)."""
    blocks = config.get("env") if isinstance(config.get("env"), dict) else {}
    if explicit:
        if explicit not in blocks:
            raise AdoptError(f"the config has no [env.{explicit}] block",
                             hint=f"its env blocks: {', '.join(blocks) or '(none)'}")
        return explicit
    matching = [b for b in blocks if dome_env_name(b) == environment]
    if matching:
        return min(matching, key=lambda b: b != environment)
    if environment == PRODUCTION:
        return None
    raise AdoptError(
        f"the config has no env block for {environment}",
        hint=f"pick one with --against-env (its blocks: {', '.join(blocks) or '(none)'})",
    )


def diff_service(manifest: Any, service: str, environment: str, *, against: str | None = None,
                 against_env: str | None = None, api: CloudflareApi | None = None) -> DiffResult:
    """The diff from what is live (or the hand-kept config ``against``) to the rendered config."""
    env = manifest.environment(environment)
    if env.is_local and not against:
        raise AdoptError(f"{env.name} runs on this machine: there is nothing live to compare",
                         hint="compare a remote environment, or use --against PATH")
    rendered, rel, text = _rendered(manifest, service, env.name)
    worker = str(rendered.get("name"))
    if against:
        path = Path(against)
        file = read(path if path.is_absolute() else Path.cwd() / path)
        block = against_block(file.data, env.name, against_env)
        hand_kept, rendered = _read_by_wrangler(manifest, file.path, block, env.name, service, text)
        label = f"{against}" + (f" [env.{block}]" if block else "")
        lock = ResourceLock.load(manifest.root)
        account = rendered.get("account_id")
        lookup = Lookup(d1=lambda n: lock.id_of(account, "d1", n),
                        kv=lambda n: lock.id_of(account, "kv", n))
        old = config_view(hand_kept, label, lookup)
        new = config_view(rendered, f"rendered: {rel}", lookup)
        return DiffResult(unified(old, new, label), worker, label)
    if api is None:
        from dome_tasks.cloudflare.credentials import wrangler_near

        api = CloudflareApi.from_environ(os.environ, need_account=False, timeout=TIMEOUT_S,
                                         wrangler=wrangler_near(manifest.root))
        if api is None:
            raise AdoptError("no Cloudflare credentials to read what is deployed",
                             hint=CREDENTIALS_HINT)
    try:
        account = _account(api, env.account_id, rendered.get("account_id"))
        live = live_view(api, account, worker)
        new = config_view(rendered, f"rendered: {rel}", api_lookup(api, account))
    except ApiFailure as error:  # exit 2, as diff(1) on trouble: 1 means "it differs"
        raise AdoptError(error.message, hint=error.hint or CREDENTIALS_HINT) from None
    absent = f"live: {worker} (not deployed)"
    return DiffResult(unified(live, new, absent), worker, live.label if live else absent,
                      live.secrets if live is not None else ())
