"""Find and read the wrangler configs of a monorepo: wrangler.toml, wrangler.json, wrangler.jsonc.

JSONC (comments and trailing commas, as wrangler reads it) is turned into JSON by blanking
comments and dropping trailing commas outside strings, keeping every character's position so that
a syntax error still points at the right ``file:line:column``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dome_tasks.errors import DomeError

__all__ = ["CONFIG_NAMES", "AdoptError", "WranglerFile", "find_configs", "jsonc_to_json", "read"]

#: wrangler's own order of precedence when a folder holds several.
CONFIG_NAMES = ("wrangler.json", "wrangler.jsonc", "wrangler.toml")
SKIPPED_DIRS = frozenset({"node_modules", ".dome", ".git", ".wrangler", ".venv", "dist", "build"})
MAX_DEPTH = 4


class AdoptError(DomeError):
    """An existing wrangler config cannot be read or imported."""


@dataclass(frozen=True)
class WranglerFile:
    """One worker's wrangler config as written (top level and its ``env`` blocks)."""

    path: Path  # absolute
    data: dict[str, Any]
    ignored: tuple[Path, ...] = ()  # other configs in the same folder that wrangler ignores

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def environments(self) -> dict[str, dict[str, Any]]:
        env = self.data.get("env")
        return dict(env) if isinstance(env, dict) else {}


def find_configs(root: Path) -> list[Path]:
    """Every folder's wrangler config under *root* (the one wrangler would read), sorted by path.

    Skips node_modules, dot folders and build output; searches at most four levels deep
    (``services/<name>``, ``apps/<name>``, ``workers/<group>/<name>``…).
    """
    root = Path(root).resolve()
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        dirs[:] = sorted(
            d for d in dirs
            if d not in SKIPPED_DIRS and not d.startswith(".") and depth < MAX_DEPTH
        )
        for name in CONFIG_NAMES:
            if name in files:
                found.append(Path(folder) / name)
                break
    return sorted(found)


def read(path: Path) -> WranglerFile:
    """Parse one config; :class:`AdoptError` with ``file:line:column`` when it is malformed."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AdoptError(f"cannot read {path}: {exc}") from None
    data = _parse(text, path)
    if not isinstance(data, dict):
        raise AdoptError(f"{path}: the top level must be a table/object, got {type(data).__name__}")
    ignored = tuple(
        path.parent / name for name in CONFIG_NAMES
        if name != path.name and (path.parent / name).is_file()
        and CONFIG_NAMES.index(name) > CONFIG_NAMES.index(path.name)
    )
    return WranglerFile(path, data, ignored)


def _parse(text: str, path: Path) -> Any:
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AdoptError(f"{path}: invalid TOML: {exc}",
                             hint="wrangler cannot read it either; fix it first") from None
    source = jsonc_to_json(text)
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise AdoptError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}",
            hint="wrangler cannot read it either; fix it first",
        ) from None


def jsonc_to_json(text: str) -> str:
    """JSON text from JSONC: ``//`` and ``/* */`` comments become spaces, trailing commas go.

    Positions are kept (comments are blanked, newlines stay, a dropped comma becomes a space).
    """
    text = text.lstrip("\ufeff")
    out = list(text)
    n = len(out)
    i = 0
    last_comma = -1  # index of a comma with only whitespace/comments after it so far
    while i < n:
        ch = out[i]
        if ch == '"':
            last_comma = -1
            i += 1
            while i < n and out[i] != '"':
                i += 2 if out[i] == "\\" else 1
            i += 1
            continue
        if ch == "/" and i + 1 < n and out[i + 1] == "/":
            while i < n and out[i] != "\n":
                out[i] = " "
                i += 1
            continue
        if ch == "/" and i + 1 < n and out[i + 1] == "*":
            end = text.find("*/", i + 2)
            stop = n if end < 0 else end + 2
            for j in range(i, min(stop, n)):
                if out[j] != "\n":
                    out[j] = " "
            i = stop
            continue
        if ch in "]}" and last_comma >= 0:
            out[last_comma] = " "
        if ch == ",":
            last_comma = i
        elif not ch.isspace():
            last_comma = -1
        i += 1
    return "".join(out)
