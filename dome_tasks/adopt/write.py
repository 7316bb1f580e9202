"""Write the intents of an import as one dome.yaml: dome's form for the keys dome models
(bindings as maps keyed by binding name, service references), wrangler's own shape for the rest.

What every environment shares sits at the service level; what differs goes under the service's
``environments:``. Every guess is printed by the task and kept as a YAML comment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dome_tasks._atomic import write_atomic
from dome_tasks.adopt.intent import PRODUCTION, Adoption, Guess
from dome_tasks.adopt.read import AdoptError
from dome_tasks.manifest.editor_schema import MODELINE

__all__ = [
    "CONVENTION", "EXPLICIT", "MODELINE", "dome_form", "manifest_data", "manifest_text",
    "write_manifest",
]

def _dome_maps() -> tuple[str, ...]:
    """Binding kinds dome writes as maps keyed by binding name (besides services and durable
    objects, which name services): the manifest's own registry when it has one."""
    try:
        from dome_tasks.manifest import bindings
    except ImportError:  # a manifest without the registry models these four
        return ("d1_databases", "kv_namespaces", "r2_buckets", "vectorize")
    special = ("services", "durable_objects")
    return tuple(kind.key[0] for kind in bindings.KINDS
                 if kind.form == "map" and len(kind.key) == 1 and kind.key[0] not in special)


DOME_MAPS = _dome_maps()
KEY_ORDER = (
    "name", "path", "main", "compatibility_date", "compatibility_flags", "workers_dev", "routes", "vars",
    "services", "d1_databases", "kv_namespaces", "r2_buckets", "vectorize", "queues", "ai",
    "durable_objects", "durable_object_migrations",
)
#: dome's own local environment (wrangler dev) runs with this environment's bindings.
LOCAL, LOCAL_LIKE = "local", "development"
DEFAULTABLE = ("compatibility_date", "compatibility_flags", "main", "workers_dev", "observability")


def dome_form(intent: Mapping[str, Any], adoption: Adoption, service: str,
              env: str | None = None) -> dict[str, Any]:
    """One intent (of ``env``) in dome's worker-key form (no name, no account id)."""
    source = adoption.service(service)
    out: dict[str, Any] = {}
    for key, value in intent.items():
        if key in ("name", "account_id"):
            continue
        if key == "services":
            out[key] = _service_bindings(value, adoption, env)
        elif key in DOME_MAPS:
            out[key] = {item["binding"]: _fields(item, "binding") for item in value}
            if key == "d1_databases":
                for item in out[key].values():
                    if "migrations_dir" not in item and (source.file.folder / "migrations").is_dir():
                        item["migrations_dir"] = "migrations"
        elif key == "queues":
            out[key] = _queues(value)
        elif key == "durable_objects":
            out[key] = _durable_objects(value, adoption)
        elif key == "migrations":
            out["durable_object_migrations"] = value
        else:
            out[key] = value
    return out


def _fields(item: Mapping[str, Any], drop: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != drop}


def _owner(worker: str, adoption: Adoption) -> str | None:
    for (service, _env), intent in adoption.intents.items():
        if intent.get("name") == worker:
            return service
    for source in adoption.services:
        for env in adoption.environments:
            if source.name + env.suffix == worker:
                return source.name
    return None


def _service_bindings(items: list[dict[str, Any]], adoption: Adoption,
                      env: str | None) -> dict[str, Any]:
    """By service name where the target is the service's worker in the same environment;
    else by the worker's literal name (``worker:``), as wrangler binds it today."""
    out: dict[str, Any] = {}
    for item in items:
        worker = str(item.get("service"))
        owner = _owner(worker, adoption)
        same_env = owner is not None and env is not None and (
            adoption.intents.get((owner, env), {}).get("name") == worker
        )
        extra = _fields(item, "binding")
        extra.pop("service", None)
        if same_env or env is None:
            target = owner if owner is not None else worker
            out[item["binding"]] = {"service": target, **extra} if extra else target
        else:
            out[item["binding"]] = {"worker": worker, **extra}
    return out


def _queues(value: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in value.items() if k not in ("producers", "consumers")}
    if value.get("producers"):
        out["producers"] = {p["binding"]: _fields(p, "binding") for p in value["producers"]}
    if value.get("consumers"):
        out["consumers"] = list(value["consumers"])
    return out


def _durable_objects(value: Mapping[str, Any], adoption: Adoption) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in value.get("bindings", []):
        entry = _fields(item, "name")
        host = entry.pop("script_name", None)
        if host is not None:
            owner = _owner(host, adoption)
            entry["service" if owner else "script_name"] = owner or host
        out[item["name"]] = entry
    return out


# --------------------------------------------------------------------------- factoring

#: Per binding kind (its path in dome's form): fields naming / identifying a resource that
#: belongs to one environment (dome names it ``<name><suffix>`` unless written per environment).
NAME_FIELDS = {
    ("d1_databases",): ("database_name",), ("r2_buckets",): ("bucket_name",),
    ("kv_namespaces",): ("title",), ("vectorize",): ("index_name",),
    ("queues", "producers"): ("queue",),
}
ID_FIELDS = {("d1_databases",): ("database_id",), ("kv_namespaces",): ("id",),
             ("hyperdrive",): ("id",)}
CONVENTION, EXPLICIT = "convention", "explicit"
_MISSING: Any = object()


class _Factor:
    """Split per-environment values into a service-level base and per-environment overrides.

    dome merges mappings key by key, so mappings split key by key. A value every environment
    has goes to the base as the most common one (ties: production's); the others are
    overrides. Ids of resources never go to the base unless every environment has the same
    one. In ``convention`` mode a resource name ``v`` at the base stands for ``v<suffix>`` in
    every environment (dome's naming convention), so names that follow it need no override.
    """

    def __init__(self, suffixes: Mapping[str, str], mode: str):
        self.suffixes = suffixes
        self.mode = mode

    def split(self, per_env: Mapping[str, Any], path: tuple[str, ...] = ()
              ) -> tuple[Any, dict[str, Any]]:
        envs = list(per_env)
        values = list(per_env.values())
        if all(isinstance(v, dict) for v in values):
            return self._mapping(per_env, path)
        if path and path[-1] == "consumers":
            found = self._consumers(per_env) if self.mode == CONVENTION else None
            if found is not None:
                return found, {}
            return self._literal(per_env)
        if len(path) >= 2 and path[-1] in ID_FIELDS.get(path[:-2], ()):
            if all(v == values[0] for v in values):
                return values[0], {}
            return _MISSING, dict(per_env)
        if len(path) >= 2 and path[-1] in NAME_FIELDS.get(path[:-2], ()):
            return self._name(per_env)
        chosen = self._most_common(per_env)
        return chosen, {e: v for e, v in per_env.items() if v != chosen and e in envs}

    def _mapping(self, per_env: Mapping[str, Any], path: tuple[str, ...]
                 ) -> tuple[Any, dict[str, Any]]:
        envs = list(per_env)
        base: dict[str, Any] = {}
        overrides: dict[str, dict[str, Any]] = {e: {} for e in envs}
        keys = list(dict.fromkeys(k for v in per_env.values() for k in v))
        for key in keys:
            present = {e: per_env[e][key] for e in envs if key in per_env[e]}
            if len(present) == len(envs):
                sub_base, sub_over = self.split(present, (*path, key))
                if sub_base is not _MISSING and sub_base != {}:
                    base[key] = sub_base
                for env, value in sub_over.items():
                    overrides[env][key] = value
            else:
                for env, value in present.items():
                    overrides[env][key] = value
        return base, {e: o for e, o in overrides.items() if o}

    def _most_common(self, per_env: Mapping[str, Any]) -> Any:
        values = list(per_env.values())
        counts: list[tuple[int, int, Any]] = []
        for value in values:
            if any(value == other for _, _, other in counts):
                continue
            n = sum(1 for other in values if other == value)
            counts.append((n, int(per_env.get(PRODUCTION, _MISSING) == value), value))
        return max(counts, key=lambda item: (item[0], item[1]))[2]

    def _stem(self, env: str, value: Any) -> Any:
        suffix = self.suffixes.get(env, "")
        if isinstance(value, str) and suffix and value.endswith(suffix):
            return value[: -len(suffix)]
        return value if not suffix else _MISSING

    def _literal(self, per_env: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        """Names kept as written: at the base only for environments without a suffix (dome
        would append it there); every other environment's are written out."""
        plain = {e: v for e, v in per_env.items() if not self.suffixes.get(e, "")}
        if not plain:
            return _MISSING, dict(per_env)
        chosen = self._most_common(plain)
        return chosen, {e: v for e, v in per_env.items()
                        if v != chosen or self.suffixes.get(e, "")}

    def _name(self, per_env: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
        if self.mode != CONVENTION:
            return self._literal(per_env)
        stems = {e: self._stem(e, v) for e, v in per_env.items()}
        candidates = [v for v in stems.values() if v is not _MISSING]
        if not candidates:
            return _MISSING, dict(per_env)
        chosen = self._most_common({e: v for e, v in stems.items() if v is not _MISSING})
        return chosen, {e: v for e, v in per_env.items()
                        if v != chosen + self.suffixes.get(e, "")}

    def _consumers(self, per_env: Mapping[str, Any]) -> Any:
        """A consumer list whose queue names all follow the convention, unsuffixed."""
        stems = []
        for env, consumers in per_env.items():
            if not isinstance(consumers, list):
                return None
            stemmed = []
            for consumer in consumers:
                item = dict(consumer)
                for key in ("queue", "dead_letter_queue"):
                    if key in item:
                        item[key] = self._stem(env, item[key])
                        if item[key] is _MISSING:
                            return None
                stemmed.append(item)
            stems.append(stemmed)
        return stems[0] if all(s == stems[0] for s in stems) else None


# --------------------------------------------------------------------------- the document


def manifest_data(adoption: Adoption, mode: str = CONVENTION) -> dict[str, Any]:
    """The dome.yaml document (plain data, in the order it is written).

    ``mode``: ``convention`` leaves resource names that follow dome's ``<name><suffix>``
    convention to it; ``explicit`` writes every environment's names out."""
    factor = _Factor({e.name: e.suffix for e in adoption.environments}, mode)
    env_names = [e.name for e in adoption.environments]
    accounts = _accounts(adoption)
    services: dict[str, Any] = {}
    for source in adoption.services:
        # only where the repository deploys it today (no environment is invented)
        present = [e for e in env_names if adoption.deploys(source.name, e)]
        per_env = {e: dome_form(adoption.intents[source.name, e], adoption, source.name, e)
                   for e in present}
        for env in present:
            account = adoption.intents[source.name, env].get("account_id")
            if account is not None and accounts.get(env) != account:
                per_env[env]["account_id"] = account
        base, overrides = factor.split(per_env)
        for env in adoption.environments:  # a worker keeps the name wrangler deploys it under
            if env.name not in present:
                continue
            name = adoption.intents[source.name, env.name].get("name")
            if name and name != source.name + env.suffix:
                overrides.setdefault(env.name, {})["name"] = name
        body: dict[str, Any] = {"path": source.folder}
        if len(present) < len(env_names):
            body["only_in"] = [*present, LOCAL] if LOCAL not in present else present
        body.update(_ordered(base if isinstance(base, dict) else {}))
        like = LOCAL_LIKE if LOCAL_LIKE in present else PRODUCTION
        if overrides.get(like) and LOCAL not in env_names:
            overrides[LOCAL] = {k: v for k, v in overrides[like].items() if k != "name"}
            env_names_out = [*present, LOCAL]
        else:
            env_names_out = present
        if overrides:
            body["environments"] = {
                e: _ordered(overrides[e]) for e in env_names_out if e in overrides
            }
        services[source.name] = body
    defaults = _defaults(services)
    environments: dict[str, Any] = {}
    for env in adoption.environments:
        entry: dict[str, Any] = {"suffix": env.suffix, "aliases": list(env.aliases)}
        if env.name in accounts:
            entry["account_id"] = accounts[env.name]
        if env.protected:
            entry["protected"] = True
        environments[env.name] = entry
    # wrangler deploy checks nothing afterwards: an adopted worker is not judged by a /health it
    # may not serve (a failed check rolls back a protected environment); see NO_HEALTH_CHECK
    defaults["health_path"] = None
    data: dict[str, Any] = {"version": 1, "defaults": defaults}
    data["environments"] = environments
    data["services"] = services
    return data


def _accounts(adoption: Adoption) -> dict[str, str]:
    """The account id each environment's workers share (when they all say the same)."""
    out = {}
    for env in adoption.environments:
        found = Counter(
            adoption.intents[s.name, env.name].get("account_id") for s in adoption.services
            if adoption.deploys(s.name, env.name)
        )
        if len(found) == 1:
            (account,) = found
            if isinstance(account, str):
                out[env.name] = account
    return out


def _defaults(services: dict[str, Any]) -> dict[str, Any]:
    """Move keys every service sets to the same value into ``defaults``."""
    bodies = list(services.values())
    defaults = {}
    for key in DEFAULTABLE:
        if len(bodies) > 1 and all(key in b for b in bodies) and all(
            b[key] == bodies[0][key] for b in bodies
        ):
            defaults[key] = bodies[0][key]
            for body in bodies:
                del body[key]
    return defaults


def _ordered(mapping: Mapping[str, Any]) -> dict[str, Any]:
    rank = {k: i for i, k in enumerate(KEY_ORDER)}
    return dict(sorted(mapping.items(), key=lambda kv: rank.get(kv[0], len(rank))))


class _Dumper(yaml.SafeDumper):
    """Block style, no aliases, keys in the order given."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(data: Any, indent: int = 0) -> str:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=100)
    pad = " " * indent
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def _comment(text: str, indent: int = 0) -> str:
    lines = text.replace("\r", "").split("\n")
    return "".join(f"{' ' * indent}# {line}\n" for line in lines)




def manifest_text(adoption: Adoption, mode: str = CONVENTION) -> str:
    """dome.yaml as text: a header, then the document with each service's guesses above it."""
    data = manifest_data(adoption, mode)
    by_service: dict[str | None, list[Guess]] = {}
    for guess in adoption.guesses:
        by_service.setdefault(guess.service, []).append(guess)
    count = len(adoption.services)
    out = [
        f"{MODELINE}\n",
        f"# dome.yaml: written by `invoke import` from {count} wrangler config(s); review every "
        + "GUESS below.\n",
        "# Reference: docs/manifest.md. Render and compare: `invoke render`, `invoke diff`.\n",
    ]
    for guess in by_service.get(None, []):
        out.append(_comment(f"GUESS {guess}"))
    out.append("\n")
    out.append(_dump({"version": data["version"]}))
    for key in ("defaults", "environments"):
        if key in data:
            out.append("\n" + _dump({key: data[key]}))
    out.append("\nservices:\n")
    for name, body in data["services"].items():
        out.append("\n")
        for guess in by_service.get(name, []):
            out.append(_comment(f"GUESS {guess.where}: {guess.text}", 2))
        out.append(_dump({name: body}, 2))
    return "".join(out)


def write_manifest(path: Path, text: str, *, force: bool = False) -> None:
    """Write ``text`` to ``path`` atomically; an existing file needs ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise AdoptError(
            f"{path} already exists; nothing was written",
            hint="pass --force to replace it (or --output to write elsewhere)",
        )
    write_atomic(path, text)

