"""dome.yaml checked against dome.schema.json by jsonschema (wrangler's ``$ref``s served from its
bundled schema, never the network), each mistake reported once at its key path; the loader goes
on with the document minus what failed. A text that passed is remembered in ``.dome/cache/``
(:class:`Memo`), with its warnings and what it left out: loading it again skips this pass, and
the import of jsonschema, yet gives the same document and warnings. The checks of merged layers,
references and files run on every load, after this.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import operator
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from dome_tasks.manifest._problems import KeyPath, Problems
from dome_tasks.manifest._source import UNREADABLE
from dome_tasks.manifest.wrangler_schema import BUNDLED, WranglerSchema

__all__ = ["Memo", "check", "without_unreadable"]

Warnings = list[tuple[KeyPath, str]]  # (key path, what)
#: What the pass left out of the document, round by round (a round's paths are of the document
#: the rounds before left; a later round leaves out mappings an earlier one left incomplete).
Drops = list[list[KeyPath]]


@functools.cache
def _validator() -> Any:
    """dome.schema.json compiled once, with the ``x-check`` keyword of :mod:`.checks`."""
    import jsonschema

    from dome_tasks.manifest import json_schema
    from dome_tasks.manifest.checks import CHECKS

    def x_check(validator: Any, name: str, instance: Any, node: Any) -> Any:
        types = node.get("type", ())
        types = [types] if isinstance(types, str) else types
        if instance is None or types and not any(validator.is_type(instance, t) for t in types):
            return  # null is never checked; a wrong type's error says it
        problem = CHECKS[name](instance)
        if problem:
            yield jsonschema.ValidationError(problem)

    cls = jsonschema.validators.extend(jsonschema.Draft7Validator, {"x-check": x_check})
    return cls(json_schema.load(), registry=json_schema.registry())


def check(data: Any, problems: Problems, wrangler: WranglerSchema | None = None,
          memo: Memo | None = None) -> dict[str, Any]:
    """Report every mistake of ``data`` into ``problems``; returns the document with each
    failing value left out (and a mapping left incomplete by that; ``{}`` for no mapping).
    ``wrangler``: the workspace's wrangler schema, whose keys are accepted where wrangler's.
    ``memo``: skip the pass for a text that passed before (its warnings are repeated, and what
    it left out, such as keys wrangler ignores, is left out again)."""
    read = not problems  # else the reader left UNREADABLE values (already reported)
    known = memo.recall() if memo and read else None
    if known is not None:
        warnings, drops = known
        for where, what in warnings:
            problems.warn(where, what)
        data = _left_out(data, drops)
    else:
        data, warnings, drops = _checked(data, problems, wrangler)
        if memo and not problems:
            memo.store(warnings, drops)
    data = data if read else without_unreadable(data)
    return data if isinstance(data, dict) else {}


def _checked(data: Any, problems: Problems, wrangler: WranglerSchema | None
             ) -> tuple[Any, Warnings, Drops]:
    from dome_tasks.manifest._explain import explain

    def extra_keys(place: str) -> Collection[str]:
        return wrangler.keys_at(tuple(filter(None, place.split("/")))) if wrangler else ()

    def findings(doc: Any) -> list[Any]:
        return [f for e in validator.iter_errors(doc) if not _merged_later(e)
                for f in explain(e, extra_keys)]

    validator = _validator()
    found = findings(data)
    order = {path: index for index, path in enumerate(problems.lines)}  # document order
    for f in sorted(found, key=lambda f: _rank(f.path, order)):
        if f.what:
            (problems.warn if f.warning else problems.add)(f.path, f.what)
    rounds: Drops = []
    drops = [f.drop for f in found if f.drop]
    data = copy.deepcopy(data) if drops else data
    for _ in range(8):  # what is left out may leave its mapping without a required key
        if not drops:
            break
        _leave_out(data, drops)
        rounds.append(drops)
        drops = [f.drop for f in findings(data) if f.drop]
    return data, [(f.path, f.what) for f in found if f.warning], rounds


def _merged_later(error: Any) -> bool:
    """What only the merged layers tell, in wrangler's schema: a null (it unsets the key) or a
    missing required key (another layer may give it; the resolver checks the merged worker)."""
    path = error.absolute_path
    unsets = error.instance is None and bool(path) and isinstance(path[-1], str)
    return (unsets or error.validator == "required") and id(error.schema) in _wrangler_nodes()


@functools.cache
def _wrangler_nodes() -> frozenset[int]:
    """The identity of every schema node of wrangler's (bundled) schema."""
    from dome_tasks.manifest.json_schema import _wrangler

    def ids(node: Any) -> Iterator[int]:
        if isinstance(node, dict | list):
            yield id(node)
            for child in node.values() if isinstance(node, dict) else node:
                yield from ids(child)

    return frozenset(ids(_wrangler()))


def _rank(path: KeyPath, order: dict[KeyPath, int]) -> int:
    while path and path not in order:
        path = path[:-1]
    return order.get(path, -1)


def _left_out(data: Any, rounds: Drops) -> Any:
    """``data`` (a copy, when anything goes) without what ``rounds`` left out before."""
    data = copy.deepcopy(data) if rounds else data
    for drops in rounds:
        _leave_out(data, drops)
    return data


def _leave_out(data: Any, paths: Iterable[KeyPath]) -> None:
    for path in sorted(set(paths), reverse=True):  # deepest first, list items from the end
        with contextlib.suppress(KeyError, IndexError, TypeError):
            del functools.reduce(operator.getitem, path[:-1], data)[path[-1]]


def without_unreadable(value: Any) -> Any:
    """``value`` without the parts the YAML reader could not read (already reported)."""
    if isinstance(value, dict):
        return {k: without_unreadable(v) for k, v in value.items() if v is not UNREADABLE}
    if isinstance(value, list):
        return [without_unreadable(v) for v in value if v is not UNREADABLE]
    return value


@functools.cache
def _code_hash() -> str:
    """Of the files that decide what the schema pass says (this package's code and schemas):
    a release, or an edit, that changes them revalidates every manifest."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for file in sorted([*here.glob("*.py"), *here.glob("*.json*")]):
        digest.update(file.read_bytes())
    return digest.hexdigest()


class Memo:
    """Whether a manifest text passed the schema pass before (with which warnings, leaving out
    what), in ``<.dome>/cache/manifest-<hash of its path>.json``. A cache that cannot be read is ignored;
    one that cannot be written is not kept."""

    def __init__(self, cache_dir: Path, path: Path, text: str, wrangler: WranglerSchema | None):
        named = hashlib.sha256(str(path).encode()).hexdigest()[:16]
        self.file = cache_dir / f"manifest-{named}.json"
        parts = "\0".join((text, _code_hash(), _identity(wrangler)))
        self.key = hashlib.sha256(parts.encode("utf-8", "surrogatepass")).hexdigest()

    def recall(self) -> tuple[Warnings, Drops] | None:
        """The warnings and drops of the earlier pass, or None when this text was not
        validated."""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            entry = json.loads(self.file.read_text(encoding="utf-8"))
            if entry["key"] == self.key:
                return ([(tuple(path), str(what)) for path, what in entry["warnings"]],
                        [[tuple(path) for path in drops] for drops in entry["drops"]])
        return None

    def store(self, warnings: Warnings, drops: Drops) -> None:
        """Remember the pass, if the project has its ``.dome`` folder (a run that only loads the
        manifest, e.g. one refused for a mistyped word, never creates it)."""
        from dome_tasks._atomic import write_atomic

        if not self.file.parent.parent.is_dir():
            return
        with contextlib.suppress(OSError):
            write_atomic(self.file, json.dumps({"key": self.key, "warnings": warnings,
                                                "drops": drops}) + "\n")


def _identity(wrangler: WranglerSchema | None) -> str:
    """Which wrangler schema answers (its keys are accepted): its file and when it changed."""
    source = Path(wrangler.source) if wrangler and Path(wrangler.source).is_absolute() else BUNDLED
    try:
        return f"{wrangler and source}:{source.stat().st_mtime_ns}"
    except OSError:
        return str(source)
