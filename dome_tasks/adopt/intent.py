"""What each (service, environment) of an existing monorepo means: its *intent*, as a complete,
self-contained wrangler config (wrangler's own shape), plus every guess made to get there.

wrangler does not inherit bindings into ``[env.*]`` blocks, so hand-kept configs silently deploy
environments without some bindings. The intent gives every environment all of the worker's
bindings, with the env block's own names and ids where it gives them. Stateful resources that a
non-production environment only inherits from the top level get the environment's own resource,
named ``<name><suffix>`` (ids dropped: ``invoke provision`` creates them and looks ids up by
name). Service bindings and Durable Object hosts are re-targeted to the same environment's
worker. Routes that a non-production environment only inherits are dropped (they are
production's). Each such decision is a :class:`Guess`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dome_tasks.adopt.read import AdoptError, WranglerFile
from dome_tasks.adopt.sources import (
    ENV_NAMES,
    PRODUCTION,
    EnvironmentPlan,
    Guess,
    ServiceSource,
    dome_env_name,
    environments,
    services_and_environments,
    worker_name_in,
)
from dome_tasks.manifest import naming

__all__ = [
    "BINDING_LISTS",
    "ENV_NAMES",
    "KV_NAME_KEY",
    "NOT_INHERITED",
    "Adoption",
    "EnvironmentPlan",
    "Guess",
    "ServiceSource",
    "compute",
    "dome_env_name",
]

#: Keys wrangler does not inherit into ``[env.*]`` (the pinned schema says so of each; 4.164's
#: lost the description of ``durable_objects``, which 4.86's and the docs still give;
#: tests/adopt/test_intent.py checks this list against node_modules/wrangler/config-schema.json).
NOT_INHERITED = frozenset({
    "agent_memory", "ai", "ai_search", "ai_search_namespaces", "analytics",
    "analytics_engine_datasets", "artifacts", "browser", "cloudchamber", "connect",
    "containers", "d1_databases", "define", "dispatch_namespaces",
    "durable_objects", "flagship", "hyperdrive", "images", "kv_namespaces", "media",
    "mtls_certificates", "pipelines", "queues", "r2_buckets", "ratelimits", "secrets",
    "secrets_store_secrets", "send_email", "services", "stream", "streaming_tail_consumers",
    "tail_consumers", "unsafe", "unsafe_hello_world", "vars", "vectorize", "vpc_networks",
    "vpc_services", "worker_loaders", "workflows",
})
#: Keys that only exist at the top level of a wrangler config (they apply to every env).
TOP_ONLY = frozenset({
    "$schema", "env", "alias", "data_blobs", "dev", "keep_vars", "legacy_env",
    "pages_build_output_dir", "send_metrics", "site", "text_blobs", "wasm_modules",
})
#: Keys of old configs that wrangler 4 ignores (with a warning).
IGNORED_BY_WRANGLER = frozenset({"miniflare"})
_GONE: Any = object()
#: Binding kinds that are lists of tables, and the key naming each entry.
BINDING_LISTS = {
    "services": "binding", "d1_databases": "binding", "kv_namespaces": "binding",
    "r2_buckets": "binding", "vectorize": "binding", "hyperdrive": "binding",
    "analytics_engine_datasets": "binding", "mtls_certificates": "binding",
    "dispatch_namespaces": "binding", "workflows": "binding", "pipelines": "binding",
    "secrets_store_secrets": "binding", "send_email": "name", "ratelimits": "name",
    "worker_loaders": "binding", "vpc_services": "binding", "vpc_networks": "binding",
    "ai_search_namespaces": "binding", "ai_search": "binding", "artifacts": "binding",
    "flagship": "binding", "stream": "binding", "media": "binding",
}
LABELS = {"services": "service binding", "d1_databases": "D1", "kv_namespaces": "KV",
          "r2_buckets": "R2", "vectorize": "Vectorize", "hyperdrive": "Hyperdrive",
          "analytics_engine_datasets": "Analytics Engine"}
#: The dome key naming a KV namespace (its title) when its id is to be looked up by name.
KV_NAME_KEY = "title"
#: Fields only dome reads (never part of a rendered wrangler config).
DOME_ONLY_FIELDS = frozenset({KV_NAME_KEY, "shared"})


@dataclass
class Adoption:
    """Everything the importer learned: environments, services, intents and guesses."""

    root: Path
    environments: list[EnvironmentPlan]
    services: list[ServiceSource]
    intents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    guesses: list[Guess] = field(default_factory=list)

    def environment(self, name: str) -> EnvironmentPlan:
        return next(e for e in self.environments if e.name == name)

    def service(self, name: str) -> ServiceSource:
        return next(s for s in self.services if s.name == name)

    def deploys(self, service: str, env: str) -> bool:
        """Whether the repository deploys ``service`` to ``env`` today (its config has a block
        for it, or its top level is that environment's worker): no environment is invented."""
        return env in self.service(service).blocks

    def present(self) -> list[tuple[str, str]]:
        """The (service, environment) pairs the repository deploys today."""
        return [pair for pair in self.intents if self.deploys(*pair)]


# --------------------------------------------------------------------------- intents


def _key_of(kind: str) -> str:
    return BINDING_LISTS[kind]


def _entries(value: Any) -> list[dict[str, Any]]:
    return [dict(item) for item in value] if isinstance(value, list) else []


def _merge_lists(own: list[dict[str, Any]], carried: list[dict[str, Any]], key: str
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Env entries first, then top-level entries the env block does not re-declare (by key).

    Returns (merged, the carried entries that were added)."""
    names = {item.get(key) for item in own}
    added = [item for item in carried if item.get(key) not in names]
    return own + added, added


_placeholder = naming.placeholder


def _declared_secrets(source: ServiceSource, env: str) -> set[str]:
    """Names the config declares as secrets (wrangler's ``secrets.required``), top or env."""
    names: set[str] = set()
    block = source.blocks.get(env)
    for table in (source.file.data, source.file.environments.get(block) if block else None):
        secrets = table.get("secrets") if isinstance(table, dict) else None
        if isinstance(secrets, dict) and isinstance(secrets.get("required"), list):
            names |= {str(n) for n in secrets["required"]}
    return names


def _keep_container_names(source: ServiceSource, block: str, intent: dict[str, Any]) -> None:
    """A container application keeps the name wrangler gives it under ``--env`` today
    (``<top-level name>-<class_name>-<block>``, lowercased); the rendered config, read without
    an env, would otherwise name it ``<worker>-<class_name>``: a new application."""
    top = source.file.data.get("name")
    for container in intent.get("containers") or ():
        if isinstance(container, dict) and "name" not in container and top and (
            container.get("class_name")
        ):
            name = f"{top}-{container['class_name']}-{block}"
            container["name"] = name.lower().replace(" ", "-")


class _Intents:
    """Computes every (service, environment) intent of one import."""

    def __init__(self, root: Path, services: list[ServiceSource], envs: list[EnvironmentPlan],
                 guesses: list[Guess]):
        self.root = root
        self.services = services
        self.envs = {e.name: e for e in envs}
        self.guesses = guesses
        self._said: set[tuple[str, str]] = set()  # (where, line) about dropped keys, once each
        self.owner: dict[str, str] = {}  # any worker name seen -> service
        for source in services:
            self.owner.setdefault(source.name, source.name)
            for env in source.blocks:
                worker = worker_name_in(source, env)
                if worker:
                    self.owner.setdefault(worker, source.name)
            for block, own in source.file.environments.items():
                self.owner.setdefault(f"{source.name}-{block}", source.name)
                if isinstance(own, dict) and isinstance(own.get("name"), str):
                    self.owner.setdefault(own["name"], source.name)

    def guess(self, source: ServiceSource, env: str, text: str) -> None:
        self.guesses.append(Guess(source.where(self.root, env), text, source.name, env))

    def worker(self, service: str, env: str) -> str:
        """The worker ``service`` deploys in ``env``: the name wrangler uses today where the
        config has a block for ``env``, else the service's name plus the suffix."""
        source = next((s for s in self.services if s.name == service), None)
        literal = worker_name_in(source, env) if source is not None else None
        return literal or service + self.envs[env].suffix

    def all(self) -> dict[tuple[str, str], dict[str, Any]]:
        intents: dict[tuple[str, str], dict[str, Any]] = {}
        order = sorted(self.envs, key=lambda e: (e != PRODUCTION, not self.envs[e].protected))
        for env in order:
            for source in self.services:
                if env not in source.blocks:  # not deployed there today: nothing is invented
                    self.guess(source, env, f"no [env.*] block for {env}: not deployed there "
                                            f"(only_in); to deploy it, add {env} to "
                                            f"services.{source.name}.only_in")
                    continue
                intents[source.name, env] = self.one(source, env, intents)
        return {(s.name, e): intents[s.name, e] for e in self.envs for s in self.services
                if (s.name, e) in intents}

    def one(self, source: ServiceSource, env: str,
            done: Mapping[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
        top = {k: copy.deepcopy(v) for k, v in source.file.data.items() if k not in ("env", "$schema")}
        block = source.blocks[env]
        own: dict[str, Any] = {}
        if block is not None:
            found = source.file.environments.get(block)
            own = copy.deepcopy(found) if isinstance(found, dict) else {}
        own_is_top = block is None
        isolate = env != PRODUCTION and not own_is_top
        intent: dict[str, Any] = {}
        for key in IGNORED_BY_WRANGLER & set(top):
            top.pop(key)
            self.guesses.append(Guess(source.where(self.root), f"[{key}] is dropped: wrangler 4 "
                                      "ignores it (wrangler dev settings go under [dev])",
                                      source.name))
        for key, value in top.items():
            if key not in NOT_INHERITED:
                intent[key] = value
        for key, value in own.items():
            if key not in NOT_INHERITED and key not in TOP_ONLY:
                intent[key] = value
        if "route" in intent:
            intent.setdefault("routes", [intent.pop("route")])
            intent.pop("route", None)
        if isolate and "routes" not in own and "route" not in own and intent.get("routes"):
            self.guess(source, env, "routes not carried over: the top-level routes are "
                                    "production's (add this environment's own under it)")
            intent.pop("routes")
        intent["name"] = self.worker(source.name, env)  # what wrangler deploys today, kept
        production = self._production_like(source, env, done)
        for key in sorted(NOT_INHERITED):
            if key not in top and key not in own:
                continue
            value = self._binding_kind(source, env, key, top.get(key), own.get(key),
                                       isolate, own_is_top, production)
            if value not in (None, [], {}):
                intent[key] = value
        if block is not None:
            _keep_container_names(source, block, intent)
        build = intent.get("build")
        if isinstance(build, dict) and build.get("command") and "watch_dir" not in build:
            intent["build"] = {**build, "watch_dir": "./src"}  # wrangler's default, beside it
        self._drop_ignored(source, env, intent, own)
        return intent

    def _drop_ignored(self, source: ServiceSource, env: str, intent: dict[str, Any],
                      own: Mapping[str, Any]) -> None:
        """Keys wrangler's schema does not have at their place (``[dev.vars]``, ``command`` in an
        env block): wrangler warns and ignores them, so they are dropped, each with a line.
        Keys wrangler still reads though deprecated (``containers[].instances``) stay."""
        from dome_tasks.manifest._problems import format_path
        from dome_tasks.manifest.wrangler_schema import load_schema

        schema = load_schema(self.root)
        if schema is None:
            return
        for path, what, _ in schema.problems(intent):
            if not what.startswith("unknown key") or path[-1] in DOME_ONLY_FIELDS:
                continue
            parent: Any = intent
            for part in path[:-1]:
                parent = parent[part]
            if not isinstance(parent, dict) or parent.pop(path[-1], _GONE) is _GONE:
                continue
            where = source.where(self.root, env if path[0] in own else None)
            text = (f"{format_path(path)} is dropped: wrangler ignores it (not a key of its "
                    "config schema there)")
            if (where, text) not in self._said:
                self._said.add((where, text))
                self.guesses.append(Guess(where, text, source.name))

    # -- one binding kind ----------------------------------------------------------------------

    def _binding_kind(self, source: ServiceSource, env: str, key: str, top: Any, own: Any,
                      isolate: bool, own_is_top: bool, production: Mapping[str, Any] | None) -> Any:
        """One non-inherited key: the env block's own entries, plus the top level's others."""
        if own_is_top:  # the top level is this environment's own config
            own, top = top, None
        if key in ("vars", "define"):
            merged = dict(top or {})
            if key == "vars" and not own_is_top:
                for name in sorted(set(merged) - set(own or {})):
                    if _placeholder(merged[name]) or name in _declared_secrets(source, env):
                        merged.pop(name)
                        self.guess(source, env, f"vars {name} not carried over from the top level: "
                                   f"{merged.get(name, top[name])!r} stands in for a secret "
                                   f"(set it per environment: wrangler secret put {name})")
            missing = sorted(set(merged) - set(own or {}))
            merged.update(own or {})
            if missing:
                note = "" if own is not None else "; the env block sets none"
                self.guess(source, env, f"{key} {', '.join(missing)} taken from the top level "
                                        f"(wrangler does not inherit them{note})")
            return merged
        if key in BINDING_LISTS:
            item_key = _key_of(key)
            merged, added = _merge_lists(_entries(own), _entries(top), item_key)
            carried = {id(item) for item in added}
            out = []
            for item in merged:
                fixed, notes = self._fix(source, env, key, item, isolate and id(item) in carried,
                                         production)
                self._note(source, env, f"{LABELS.get(key, key)} {item.get(item_key)}", notes,
                           id(item) in carried)
                out.append(fixed)
            return out
        if key == "durable_objects":
            own_table = own if isinstance(own, dict) else {}
            top_table = top if isinstance(top, dict) else {}
            merged, added = _merge_lists(_entries(own_table.get("bindings")),
                                         _entries(top_table.get("bindings")), "name")
            carried = {id(item) for item in added}
            rest = {k: v for k, v in (own_table or top_table).items() if k != "bindings"}
            bindings = []
            for item in merged:
                fixed, notes = self._retarget_host(source, env, item)
                self._note(source, env, f"durable object {item.get('name')}", notes,
                           id(item) in carried)
                bindings.append(fixed)
            return {**rest, "bindings": bindings} if bindings else rest
        if key == "queues":
            return self._queues(source, env, top, own, isolate, production)
        if key == "secrets":  # declared names only: never carried where wrangler reads none
            return own
        # single tables (ai, browser, images…) and other lists: the env's own, else the top's
        if own is not None:
            return own
        if top is not None:
            self._note(source, env, key, [], True)
        return top

    def _note(self, source: ServiceSource, env: str, subject: str, notes: list[str],
              added: bool) -> None:
        """One guess per binding: added from the top level, and what changed on the way."""
        if added:
            notes = ["added from the top level (wrangler does not inherit it)", *notes]
        if notes:
            self.guess(source, env, f"{subject}: " + "; ".join(notes))

    def _queues(self, source: ServiceSource, env: str, top: Any, own: Any, isolate: bool,
                production: Mapping[str, Any] | None) -> dict[str, Any]:
        top = top if isinstance(top, dict) else {}
        own = own if isinstance(own, dict) else {}
        for table in (top, own):
            for consumer in _entries(table.get("consumers")):
                if "binding" in consumer:
                    self.guesses.append(Guess(
                        source.where(self.root), f"queue consumer of {consumer.get('queue')}: "
                        "the stray `binding` key is dropped (wrangler ignores it)", source.name))
        suffix = self.envs[env].suffix
        producers_top = [self._rename_queue(p, env, "queue") if isolate else p
                         for p in _entries(top.get("producers"))]
        producers, added = _merge_lists(_entries(own.get("producers")), producers_top, "binding")
        prod_queues: set[Any] = set()
        if production is not None and env != PRODUCTION:
            queues = production.get("queues", {})
            prod_queues = {p.get("queue") for p in queues.get("producers", [])}
            prod_queues |= {c.get("queue") for c in queues.get("consumers", [])}
        for producer in producers:
            notes = []
            if producer in added and isolate:
                notes.append(f"its own queue '{producer.get('queue')}'")
            elif producer.get("queue") in prod_queues:
                producer["shared"] = True
                notes.append(f"production's queue '{producer['queue']}', as the env block says: "
                             "kept shared")
            self._note(source, env, f"queue producer {producer.get('binding')}", notes,
                       producer in added)
        consumers_top = [self._rename_consumer(c, env) if isolate else c
                         for c in _entries(top.get("consumers"))]
        consumers, added = _merge_lists(_entries(own.get("consumers")), consumers_top, "queue")
        for consumer in consumers:
            consumer.pop("binding", None)
            if consumer in added:
                notes = [f"consumes its own queue '{consumer.get('queue')}'"] if (
                    isolate and suffix) else []
                self._note(source, env, "queue consumer", notes, True)
        out = {k: v for k, v in (own or top).items() if k not in ("producers", "consumers")}
        if producers:
            out["producers"] = producers
        if consumers:
            out["consumers"] = consumers
        return out

    def _rename_queue(self, item: dict[str, Any], env: str, key: str) -> dict[str, Any]:
        out = dict(item)
        if isinstance(out.get(key), str):
            out[key] = out[key] + self.envs[env].suffix
        return out

    def _rename_consumer(self, item: dict[str, Any], env: str) -> dict[str, Any]:
        out = self._rename_queue(item, env, "queue")
        if isinstance(out.get("dead_letter_queue"), str):
            out["dead_letter_queue"] += self.envs[env].suffix
        return out

    def _fix(self, source: ServiceSource, env: str, kind: str, item: dict[str, Any],
             carried: bool, production: Mapping[str, Any] | None
             ) -> tuple[dict[str, Any], list[str]]:
        """Re-target service bindings; give carried resources this environment's own."""
        suffix = self.envs[env].suffix
        item = dict(item)
        if kind == "services":
            return self._retarget_service(env, item)
        if not carried:
            notes = self._mark_shared(kind, item, production) if production is not None else []
            return item, notes
        provision = f"`invoke provision {env}` creates it"
        if kind == "d1_databases":
            base = item.get("database_name") or f"{source.name}-{str(item.get('binding')).lower()}"
            item["database_name"] = base + suffix
            item.pop("database_id", None)
            item.pop("preview_database_id", None)
            return item, [f"its own database '{item['database_name']}' ({provision})"]
        if kind == "kv_namespaces":
            binding = str(item.get("binding", "kv")).lower().replace("_", "-")
            item[KV_NAME_KEY] = f"{source.name}-{binding}{suffix}"
            item.pop("id", None)
            item.pop("preview_id", None)
            return item, [f"its own namespace '{item[KV_NAME_KEY]}' ({provision})"]
        if kind == "r2_buckets":
            if isinstance(item.get("bucket_name"), str):
                item["bucket_name"] += suffix
            item.pop("preview_bucket_name", None)
            return item, [f"its own bucket '{item.get('bucket_name')}' ({provision})"]
        if kind == "vectorize":
            if isinstance(item.get("index_name"), str):
                item["index_name"] += suffix
            return item, [f"its own index '{item.get('index_name')}' ({provision})"]
        if kind == "hyperdrive":
            item["shared"] = True
            return item, ["shares production's configuration, marked shared: true (creating "
                          + "one needs the database's connection string)"]
        return item, []

    def _production_like(self, source: ServiceSource, env: str,
                         done: Mapping[tuple[str, str], dict[str, Any]]) -> dict[str, Any] | None:
        """The binding lists of the service's production environments (production and the
        regional ones beside it) other than ``env``; None for production itself."""
        if env == PRODUCTION:
            return None
        found = [done[source.name, e] for e in self.envs
                 if e != env and self.envs[e].protected and (source.name, e) in done]
        union: dict[str, Any] = {}
        for intent in found:
            for key, value in intent.items():
                if isinstance(value, list):
                    union.setdefault(key, []).extend(value)
                else:
                    union.setdefault(key, value)
        return union if found else None

    def _mark_shared(self, kind: str, item: dict[str, Any],
                     production: Mapping[str, Any]) -> list[str]:
        """An env block that declares production's own resource shares it on purpose."""
        identity = {"d1_databases": "database_id", "kv_namespaces": "id", "hyperdrive": "id",
                    "r2_buckets": "bucket_name", "vectorize": "index_name"}.get(kind)
        if identity is None or not item.get(identity):
            return []
        mine = str(item[identity]).lower()
        theirs = {str(p.get(identity)).lower() for p in production.get(kind, [])}
        if mine not in theirs:
            return []
        item["shared"] = True
        return [f"production's '{item[identity]}', as the env block says: kept shared"]

    def _retarget_service(self, env: str, item: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        notes = []
        target = item.get("service")
        legacy = item.pop("environment", None)
        if legacy is not None:
            notes.append(f"the legacy `environment = \"{legacy}\"` key is dropped")
        owner = self.owner.get(target) if isinstance(target, str) else None
        if owner is None:
            notes.append(f"'{target}' is not an imported worker: kept as written")
            return item, notes
        wanted = self.worker(owner, env)
        if wanted != target:
            notes.append(f"'{target}' becomes '{wanted}' (the same environment's worker)")
        item["service"] = wanted
        return item, notes

    def _retarget_host(self, source: ServiceSource, env: str, item: dict[str, Any]
                       ) -> tuple[dict[str, Any], list[str]]:
        item = dict(item)
        item.pop("environment", None)
        host = item.get("script_name")
        owner = self.owner.get(host) if isinstance(host, str) else None
        if owner is None:
            return item, []
        if owner == source.name:
            item.pop("script_name")
            return item, []
        wanted = self.worker(owner, env)
        item["script_name"] = wanted
        return item, ([f"host '{host}' becomes '{wanted}'"] if wanted != host else [])


#: Why an imported manifest says ``health_path: null``.
NO_HEALTH_CHECK = ("no health check after a deploy (defaults: health_path: null), as with `wrangler "
                   "deploy`: set health_path: /health (or health_url) for each worker that serves "
                   "one; a failed check rolls back protected environments")


def compute(files: Iterable[WranglerFile], root: Path) -> Adoption:
    """The environments, services, per-(service, environment) intents and guesses of an import."""
    root = Path(root).resolve()
    files = list(files)
    if not files:
        raise AdoptError(
            f"no wrangler config (wrangler.toml, wrangler.json, wrangler.jsonc) under {root}",
            hint="run `invoke import` at the root of the monorepo",
        )
    guesses: list[Guess] = []
    services, env_names = services_and_environments(files, root, guesses)
    envs = environments(services, env_names, root, guesses)
    like = "development" if "development" in env_names else PRODUCTION
    guesses.append(Guess("dome.yaml", f"environment local (`wrangler dev` on this machine, local "
                                      f"state): {like}'s settings and bindings"))
    guesses.append(Guess("dome.yaml", NO_HEALTH_CHECK))
    adoption = Adoption(root, envs, services, guesses=guesses)
    adoption.intents = _Intents(root, services, envs, guesses).all()
    adoption.guesses = list(dict.fromkeys(guesses))
    return adoption
