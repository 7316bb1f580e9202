"""Parse YAML into plain Python values, remembering the line of every key path.

Duplicate keys are reported (PyYAML silently keeps the last one), merge keys (``<<``) and
anchors work, keys are always taken as written (``on:`` stays the string ``"on"``), and a
timestamp such as ``2025-01-01`` stays the string it was written as. Integers beyond 2^53
(which JavaScript cannot hold exactly) are refused, and the expansion of aliases is bounded:
a small file of nested aliases ("billion laughs") stops at :data:`MAX_VALUES` values with one
clear error instead of exhausting memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dome_tasks.errors import ManifestError
from dome_tasks.manifest._problems import KeyPath
from dome_tasks.manifest.naming import SAFE_INTEGER_MAX

#: The most values (scalars, lists, mappings, with aliases expanded) a manifest may hold.
MAX_VALUES = 100_000

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_PLAIN = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


class _Unreadable:
    """Stands for a value that could not be read (already reported); checks skip it."""

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE = _Unreadable()


@dataclass
class Source:
    """The parsed document, the line of each key path, and structural problems found."""

    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[tuple[KeyPath, int, str]] = field(default_factory=list)


def parse(text: str, filename: str) -> Source:
    """Parse one YAML document; a syntax error raises :class:`ManifestError` with line:column."""
    import yaml  # lazy: keeps `invoke --list` fast

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        what = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem:
            started = exc.context_mark
            start = f" started on line {started.line + 1}" if started else ""
            what += f" ({exc.context}{start})"
        raise ManifestError(f"{where}: invalid YAML: {what}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{filename}: invalid YAML: {exc}") from None
    if root is None:
        raise ManifestError(f"{filename}:1: the manifest is empty")
    source = Source(data=None)
    source.data = _Converter(source, yaml, filename).convert(root, ())
    return source


class _Converter:
    def __init__(self, source: Source, yaml: Any, filename: str):
        self.source = source
        self.filename = filename
        self.nodes = yaml.nodes
        self.constructor = yaml.constructor.SafeConstructor()
        self.budget = MAX_VALUES

    def _spend(self, node: Any) -> None:
        """Count one value; past the budget, stop at once (aliases multiplying the document)."""
        self.budget -= 1
        if self.budget < 0:
            line = node.start_mark.line + 1
            raise ManifestError(
                f"{self.filename}:{line}: the manifest expands to more than {MAX_VALUES} values",
                hint="anchors and aliases (&name, *name, <<) nest too deeply here; "
                "write the values out or reuse them less",
            )

    def convert(self, node: Any, path: KeyPath, depth: int = 0) -> Any:
        self._spend(node)
        if depth > 50:
            self._problem(path, node, "nested too deeply (a recursive anchor?)")
            return UNREADABLE
        if isinstance(node, self.nodes.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, self.nodes.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.source.lines.setdefault(path + (index,), item.start_mark.line + 1)
                items.append(self.convert(item, path + (index,), depth + 1))
            return items
        return self._scalar(node, path)

    def _scalar(self, node: Any, path: KeyPath) -> Any:
        tag = node.tag
        if tag == _STR or tag == _TIMESTAMP:
            return node.value
        if tag in _PLAIN:
            value = self.constructor.yaml_constructors[tag](self.constructor, node)
            if type(value) is int and abs(value) > SAFE_INTEGER_MAX:
                self._problem(
                    path, node,
                    f"{value} is beyond 2^53 - 1: JavaScript (wrangler, the worker) cannot hold "
                    "it exactly; quote it to pass it as a string",
                )
                return UNREADABLE
            return value
        self._problem(path, node, f"unsupported YAML tag {tag!r}; write a plain value")
        return UNREADABLE

    def _pairs(self, node: Any, path: KeyPath) -> list[tuple[Any, Any]]:
        """Key/value node pairs with ``<<`` merges applied (explicit keys, then earlier merges,
        win)."""
        explicit = [(k, v) for k, v in node.value if k.tag != _MERGE]
        merged: list[tuple[Any, Any]] = []
        for key, value in node.value:
            if key.tag != _MERGE:
                continue
            sources = value.value if isinstance(value, self.nodes.SequenceNode) else [value]
            for src in sources:
                self._spend(src)
                if isinstance(src, self.nodes.MappingNode):
                    merged.extend(self._pairs(src, path))
                else:
                    self._problem(path, src, "'<<' must merge a mapping or a list of mappings")
        taken = {k.value for k, _ in explicit if isinstance(k, self.nodes.ScalarNode)}
        inherited = []
        for key, value in merged:
            if isinstance(key, self.nodes.ScalarNode) and key.value not in taken:
                taken.add(key.value)
                inherited.append((key, value))
        return inherited + explicit

    def _mapping(self, node: Any, path: KeyPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        lines = self.source.lines
        for key_node, value_node in self._pairs(node, path):
            if not isinstance(key_node, self.nodes.ScalarNode):
                self._problem(path, key_node, "keys must be plain names, not lists or mappings")
                continue
            key = key_node.value
            line = key_node.start_mark.line + 1
            key_path = path + (key,)
            if key in result:
                first = lines.get(key_path)
                self.source.problems.append(
                    (key_path, line, f"duplicate key (first defined on line {first})")
                )
                continue
            lines[key_path] = line
            result[key] = self.convert(value_node, key_path, depth + 1)
        return result

    def _problem(self, path: KeyPath, node: Any, what: str) -> None:
        self.source.problems.append((path, node.start_mark.line + 1, what))
