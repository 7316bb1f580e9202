"""Rendered configs kept between runs, so a deploy of unchanged inputs imports no Jinja.

An entry lives in ``.dome/cache/render/`` beside the build folder, one per output file, and is
used only when its key matches: a digest of everything a render reads (the template context,
the bytes of every file in the template search path, the rendering code, and for a template of
one's own the wrangler schema its output is checked against). Only successful renders are kept,
so errors are always raised afresh. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dome_tasks._cache import kept

__all__ = ["cache_entry", "read_cached", "render_key"]

#: The files whose code turns a context into text (their change invalidates every entry).
_CODE = (Path(__file__).with_name("config.py"), Path(__file__).with_name("_toml.py"))


def cache_entry(out_path: Path) -> Path | None:
    """Where the rendered text of ``out_path`` is kept, or None when it is not below an
    existing ``.dome`` folder (plain strings: this runs for every config rendered)."""
    text = os.fspath(out_path)
    at = text.find(os.sep + ".dome" + os.sep)
    if at < 0:
        return None
    dome = text[: at + len(os.sep + ".dome")]
    if not os.path.isdir(dome):  # the cache never creates .dome
        return None
    name = hashlib.sha256(text.encode()).hexdigest()[:24]
    return Path(dome, "cache", "render", f"{name}.json")


def render_key(
    context: dict[str, Any], search_path: Iterable[Path], extra: Iterable[Path] = ()
) -> str:
    """The digest of a render's inputs: ``context``, every file under ``search_path`` (names and
    bytes), the rendering code and ``extra`` files (bytes). Raises OSError if one cannot be read."""
    digest = hashlib.sha256(_files_digest(_inputs(search_path, extra)).encode())
    digest.update(json.dumps(context, default=repr).encode())
    return digest.hexdigest()


def _inputs(search_path: Iterable[Path], extra: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """The files a render reads, each with its modification time and size."""
    paths = [path for folder in search_path for path in sorted(_files(os.fspath(folder)))]
    found = []
    for path in (*paths, *_CODE, *extra):
        stat = os.stat(path)
        found.append((os.fspath(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


@functools.lru_cache(maxsize=32)
def _files_digest(inputs: tuple[tuple[str, int, int], ...]) -> str:
    """The digest of the files' names and bytes (read once per process while they stay the
    same: rendering 600 configs reads the templates once)."""
    digest = hashlib.sha256()
    for path, _, _ in inputs:
        digest.update(b"\0" + os.fsencode(path) + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()


def _files(folder: str) -> list[str]:
    """Every file below ``folder``; OSError (so: no caching) for a symlinked folder in it,
    which Jinja would follow and a walk would not."""
    if not os.path.isdir(folder):
        raise NotADirectoryError(folder)
    found = []
    for top, dirs, names in os.walk(folder):
        if any(os.path.islink(os.path.join(top, d)) for d in dirs):
            raise NotADirectoryError(f"{top}: a symlinked folder")
        found += [os.path.join(top, name) for name in names]
    return found


def read_cached(entry: Path, key: str) -> str | None:
    """The text kept at ``entry`` for ``key``; None when missing, stale or unreadable."""
    text = kept(entry, key)
    return text if isinstance(text, str) else None

