"""wrangler is the judge: what the project's own wrangler reads from a config.

:class:`WranglerReader` runs wrangler's config reader (``unstable_readConfig``, exported by
every supported wrangler) through node, many configs in one process, and returns what wrangler
itself would deploy for ``--config FILE --env ENV``: inheritance, defaults, ``name-env``
naming and path resolution are wrangler's, not a model of them. :func:`comparable` keeps the
keys that describe the deployed worker (paths made absolute, binding lists keyed by binding
name) and :func:`judge` splits what differs between two readings into what the adoption contract allows
and what it does not.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dome_tasks.adopt.intent import BINDING_LISTS
from dome_tasks.errors import DomeError

if TYPE_CHECKING:
    from dome_tasks.manifest.wrangler_schema import WranglerSchema

__all__ = ["ABSENT", "Difference", "Reading", "Verdict", "WranglerReader", "comparable",
           "differences", "judge", "scratch"]

#: What wrangler's reading holds that is about the file, not about the deployed worker.
BOOKKEEPING = frozenset({
    "configPath", "userConfigPath", "topLevelName", "definedEnvironments", "targetEnvironment",
    "env", "$schema", "dev", "pages_build_output_dir", "legacy_env", "send_metrics",
    "keep_vars", "jsx_factory", "jsx_fragment", "python_modules", "site", "alias",
    "unsafe_hello_world", "no_bundle", "minify", "tsconfig", "base_dir",
    "find_additional_modules", "preserve_file_names", "rules", "upload_source_maps",
    "compliance_region",
})
#: Paths wrangler leaves relative to the config's folder (``main`` it resolves itself).
RELATIVE_PATHS = (("assets", "directory"), ("build", "cwd"), ("build", "watch_dir"))
#: Binding lists and the key naming each entry (``comparable`` keys them by it).
LISTS = {**BINDING_LISTS, "agent_memory": "binding", "connect": "binding", "k2": "binding",
         "tail_consumers": "service", "streaming_tail_consumers": "service",
         "containers": "class_name"}

_READER_JS = r"""
const fs = require("fs");
const path = require("path");
const [packageDir, inputFile, outputFile] = process.argv.slice(2);
const wrangler = require(packageDir);
const out = [];
for (const { config, env } of JSON.parse(fs.readFileSync(inputFile, "utf8"))) {
  try {
    process.chdir(path.dirname(path.resolve(config)));  // build paths come relative to the cwd
    const read = wrangler.unstable_readConfig({ config, env: env || undefined },
                                              { hideWarnings: true });
    out.push({ ok: true, config: read });
  } catch (error) {
    out.push({ ok: false, error: String((error && error.message) || error) });
  }
}
fs.writeFileSync(outputFile, JSON.stringify(out));
"""


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Difference:
    """One key path (dotted, binding lists by binding name) where two readings differ."""

    path: str
    expected: Any  # the original's value (ABSENT: it has none)
    actual: Any  # the rendered file's value

    def __str__(self) -> str:
        if self.expected is ABSENT:
            return f"{self.path}: not expected, found {self.actual!r}"
        if self.actual is ABSENT:
            return f"{self.path}: expected {self.expected!r}, missing"
        return f"{self.path}: expected {self.expected!r}, found {self.actual!r}"


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> list[Difference]:
    """What differs between two :func:`comparable` readings, as dotted key paths."""
    out: list[Difference] = []
    _walk(dict(expected), dict(actual), "", out)
    return out


def _walk(expected: Any, actual: Any, path: str, out: list[Difference]) -> None:
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in dict.fromkeys([*expected, *actual]):
            sub = f"{path}.{key}" if path else str(key)
            _walk(expected.get(key, ABSENT), actual.get(key, ABSENT), sub, out)
        return
    if expected != actual:
        out.append(Difference(path, expected, actual))


@contextmanager
def scratch(root: Path) -> Iterator[Path]:
    """A throwaway folder at the build folder's depth (``.dome/judge-*/<env>/<service>/`` like
    ``.dome/build/<env>/<service>/``), so that a rendered config's relative paths hold there."""
    folder = Path(root) / ".dome" / f"judge-{uuid.uuid4().hex[:12]}"
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class JudgeError(DomeError):
    """wrangler's config reader could not be run."""


@dataclass(frozen=True)
class Reading:
    """What wrangler read from one (config, env): the config, or the error it raised."""

    path: Path
    env: str | None
    config: Mapping[str, Any] | None = None
    error: str | None = None


class WranglerReader:
    """wrangler's own config reader, from the wrangler package the project installs."""

    def __init__(self, package_dir: Path, node: str | None = None) -> None:
        self.package_dir = Path(package_dir)
        self.node = node

    @classmethod
    def for_project(cls, root: Path) -> WranglerReader:
        """The wrangler package behind the project's wrangler (``node_modules/.bin/wrangler``
        of ``root`` or a folder above it, else the one on PATH)."""
        from dome_tasks.tools import find_node, find_wrangler

        try:
            launcher = find_wrangler(Path(root))
        except DomeError:
            launcher = None
        folder = Path(os.path.realpath(launcher)).parent if launcher else None
        while folder is not None and folder != folder.parent:
            manifest = folder / "package.json"
            if manifest.is_file() and json.loads(manifest.read_text()).get("name") == "wrangler":
                return cls(folder, find_node())
            folder = folder.parent
        raise JudgeError(f"no wrangler installed in node_modules above {root}",
                         hint="install the project's wrangler first (npm ci, pnpm install): "
                              "its own config reader judges the import")

    def read(self, pairs: Sequence[tuple[Path, str | None]]) -> list[Reading]:
        """wrangler's reading of each (config file, env or None), in one node process."""
        if not pairs:
            return []
        node = self.node or "node"
        with tempfile.TemporaryDirectory(prefix="dome-judge-") as tmp:
            script, given, taken = (os.path.join(tmp, n) for n in ("read.cjs", "in.json", "out.json"))
            Path(script).write_text(_READER_JS, encoding="utf-8")
            Path(given).write_text(json.dumps([{"config": str(p), "env": e} for p, e in pairs]),
                                   encoding="utf-8")
            env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "WRANGLER_WRITE_LOGS": "false",
                   "WRANGLER_HIDE_BANNER": "true", "NO_COLOR": "1"}
            try:
                done = subprocess.run([node, script, str(self.package_dir), given, taken],
                                      capture_output=True, text=True, timeout=120, check=False,
                                      env=env, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise JudgeError(f"cannot run wrangler's config reader: {exc}") from None
            if done.returncode != 0 or not os.path.exists(taken):
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise JudgeError("wrangler's config reader failed: " + " | ".join(tail),
                                 where=str(self.package_dir))
            answers = json.loads(Path(taken).read_text(encoding="utf-8"))
        return [Reading(Path(p), e, a.get("config"), a.get("error"))
                for (p, e), a in zip(pairs, answers)]


def comparable(reading: Reading) -> dict[str, Any]:
    """The deployed worker's keys of one reading: bookkeeping dropped, relative paths made
    absolute, binding lists keyed by their binding name, empty values dropped."""
    config = dict(reading.config or {})
    folder = Path(reading.path).resolve().parent
    data = {k: v for k, v in config.items() if k not in BOOKKEEPING}
    if not (data.get("build") or {}).get("command"):  # wrangler's defaults: nothing runs
        data.pop("build", None)
    for table, key in RELATIVE_PATHS:
        inner = data.get(table)
        value = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(value, str):
            data[table] = {**inner, key: os.path.normpath(folder / value)}
        elif isinstance(value, list):
            data[table] = {**inner, key: [os.path.normpath(folder / v) for v in value]}
    if isinstance(data.get("main"), str):
        data["main"] = os.path.normpath(folder / data["main"])
    if data.get("route"):  # `route = X` deploys as `routes = [X]` does
        data["routes"] = [data.pop("route"), *(data.get("routes") or [])]
    for name, fields in _keyed(data.pop("d1_databases", None), "binding").items():
        if isinstance(fields.get("migrations_dir"), str):
            fields["migrations_dir"] = os.path.normpath(folder / fields["migrations_dir"])
        data.setdefault("d1_databases", {})[name] = fields
    for key, item in LISTS.items():
        if key in data and key != "d1_databases":
            data[key] = _keyed(data[key], item)
    if isinstance(data.get("durable_objects"), dict):
        data["durable_objects"] = _keyed(data["durable_objects"].get("bindings"), "name")
    if isinstance(data.get("queues"), dict):
        queues = data["queues"]
        data["queues"] = {"producers": _keyed(queues.get("producers"), "binding"),
                          "consumers": _keyed(queues.get("consumers"), "queue")}
    if isinstance(data.get("logfwdr"), dict):
        data["logfwdr"] = _keyed(data["logfwdr"].get("bindings"), "name")
    return _pruned(data)


#: Fields that name a binding's resource or target worker: outside production the import may
#: point them at the environment's own (contract, rule b).
RESOURCE_FIELDS = frozenset({
    "database_name", "database_id", "preview_database_id", "id", "preview_id", "bucket_name",
    "preview_bucket_name", "index_name", "service", "script_name", "queue", "dead_letter_queue",
    "namespace", "pipeline", "dataset",
})


@dataclass(frozen=True)
class Verdict:
    """How one (service, environment) adopts: what differs from what wrangler deploys today,
    split into what the contract allows (each with its rule) and what it does not."""

    allowed: tuple[tuple[Difference, str], ...] = ()
    violations: tuple[Difference, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations


def judge(original: Reading, rendered: Reading, top: Reading | None = None, *,
          production: bool = True, schema: WranglerSchema | None = None) -> Verdict:
    """Compare wrangler's reading of the original (``--env E``) with its reading of the rendered
    file under the adoption contract (docs/adopting.md): they may differ only by (a) bindings
    and vars that wrangler did not inherit into the env block, taken from the top level
    (``top`` is wrangler's reading without ``--env``), and (b) outside production, the
    environment's own resources and workers instead of production's; and (c) a key dropped
    that wrangler ignores (its own ``schema`` does not know it); nothing else."""
    if original.error or rendered.error:
        side = "the original" if original.error else "the rendered file"
        problem = Difference("(read)", f"wrangler reads {side}", original.error or rendered.error)
        return Verdict(violations=(problem,))
    before, after = comparable(original), comparable(rendered)
    above = comparable(top) if top is not None and not top.error else {}
    allowed: list[tuple[Difference, str]] = []
    violations: list[Difference] = []
    for difference in differences(before, after):
        rule = _rule(difference, above, production) or _ignored(difference, schema)
        if rule:
            allowed.append((difference, rule))
        else:
            violations.append(difference)
    return Verdict(tuple(allowed), tuple(violations))


def _rule(difference: Difference, top: Mapping[str, Any], production: bool) -> str | None:
    """Which rule of the contract allows ``difference``, or None."""
    parts = difference.path.split(".")
    if difference.expected is ABSENT and parts[0] != "name" and _has(top, parts[:2]):
        return "a: taken from the top level (wrangler does not inherit it)"
    if production:
        return None
    if parts[0] in ("routes", "route") and difference.actual is ABSENT:
        return "b: production's routes are not carried over"
    if parts[-1] in RESOURCE_FIELDS and len(parts) >= 3:
        return "b: the environment's own resource or worker"
    if parts[0] == "queues" and len(parts) == 3:
        return "b: the environment's own queue"
    return None


def _ignored(difference: Difference, schema: WranglerSchema | None) -> str | None:
    """Rule c: a key the original has, the rendered file drops, and wrangler's schema does not
    know at that place (wrangler warns and ignores it)."""
    if schema is None or difference.actual is not ABSENT:
        return None
    parts = difference.path.split(".")
    place: list[str] = []
    if parts[0] == "queues" and len(parts) >= 4:
        place = ["queues", parts[1], "[]", *parts[3:-1]]
    elif parts[0] == "durable_objects" and len(parts) >= 3:
        place = ["durable_objects", "bindings", "[]", *parts[2:-1]]
    elif parts[0] in LISTS and len(parts) >= 3:
        place = [parts[0], "[]", *parts[2:-1]]
    elif len(parts) >= 2 and parts[0] not in ("vars", "define"):
        place = parts[:-1]
    else:
        return None
    known = schema.keys_at(tuple(place))
    if known and parts[-1] not in known:
        return "c: wrangler ignores this key (its schema does not know it)"
    return None


def _has(data: Mapping[str, Any], parts: Sequence[str]) -> bool:
    node: Any = data
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _keyed(items: Any, key: str) -> dict[str, Any]:
    if isinstance(items, dict):
        return items
    out: dict[str, Any] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out[str(item.get(key))] = {k: v for k, v in item.items() if k != key}
    return out


def _pruned(value: Any) -> Any:
    if isinstance(value, dict):
        pruned = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v not in (None, [], {})}
    return value
