"""Rendered configs kept between runs, so a deploy of unchanged inputs imports no Jinja.

An entry lives in ``.dome/cache/render/`` beside the build folder, one per output file, and is
used only when its key matches: a digest of everything a render reads (the template context,
the bytes of every file in the template search path, the rendering code, and for a template of
one's own the wrangler schema its output is checked against). Only successful renders are kept,
so errors are always raised afresh. A cache that cannot be read or written is ignored.
"""

from __future__ import annotations

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
    """Where the rendered text of ``out_path`` is kept, or None when it is not under ``.dome``."""
    parts = Path(out_path).parts
    if ".dome" not in parts:
        return None
    root = Path(*parts[: parts.index(".dome")])
    name = hashlib.sha256(os.fspath(out_path).encode()).hexdigest()[:24]
    return root / ".dome" / "cache" / "render" / f"{name}.json"


def render_key(
    context: dict[str, Any], search_path: Iterable[Path], extra: Iterable[Path] = ()
) -> str:
    """The digest of a render's inputs: ``context``, every file under ``search_path`` (names and
    bytes), the rendering code and ``extra`` files (bytes). Raises OSError if one cannot be read."""
    digest = hashlib.sha256(json.dumps(context, default=repr).encode())
    for folder in search_path:
        digest.update(b"\0dir\0" + os.fsencode(folder))
        for path in sorted(_files(Path(folder))):
            digest.update(b"\0file\0" + os.fsencode(path.relative_to(folder)) + b"\0")
            digest.update(path.read_bytes())
    for path in (*_CODE, *extra):
        digest.update(b"\0code\0" + os.fsencode(path) + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    """Every file below ``folder``; OSError (so: no caching) for a symlinked folder in it,
    which Jinja would follow and a walk would not."""
    if not folder.is_dir():
        raise NotADirectoryError(folder)
    found = []
    for top, dirs, names in os.walk(folder):
        if any(os.path.islink(os.path.join(top, d)) for d in dirs):
            raise NotADirectoryError(f"{top}: a symlinked folder")
        found += [Path(top) / name for name in names]
    return found


def read_cached(entry: Path, key: str) -> str | None:
    """The text kept at ``entry`` for ``key``; None when missing, stale or unreadable."""
    text = kept(entry, key)
    return text if isinstance(text, str) else None

