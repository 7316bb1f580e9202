"""A value remembered in a JSON file under a key, used only while the key still matches.

The key holds everything the value was computed from, so a changed input is never served
stale. A cache that cannot be read or written is ignored: it never fails a run and never
decides anything a fresh computation would not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dome_tasks._atomic import write_atomic

__all__ = ["kept", "keep"]


def kept(path: Path, key: Any) -> Any | None:
    """The value kept at ``path`` for ``key``; None when missing, stale or unreadable."""
    try:
        entry = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(entry, dict) and entry.get("key") == key:
        return entry.get("value")
    return None


def keep(path: Path, key: Any, value: Any) -> None:
    """Remember ``value`` for ``key`` at ``path`` (atomically; a failure to write is ignored)."""
    try:
        write_atomic(Path(path), json.dumps({"key": key, "value": value}), durable=False)
    except (OSError, TypeError, ValueError):
        pass
