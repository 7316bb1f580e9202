"""The last lines of a wrangler log, as shown in errors."""

from __future__ import annotations

import re
from pathlib import Path

from dome_tasks.local.wrangler import strip_ansi

__all__ = ["LOG_TAIL_LINES", "log_tail", "tail"]

LOG_TAIL_LINES = 40

_GO_DUMP = re.compile(
    r"^(goroutine \d+ \[.*\]:|\t.*|created by .*|[\w.*/()\[\]-]+\(.*\)( \+0x[0-9a-f]+)?)$"
)


def tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-blank lines, without Go goroutine dumps (esbuild's service prints one
    when wrangler exits under it, and it would bury wrangler's own error)."""
    kept = [line for line in text.splitlines() if line.strip() and not _GO_DUMP.match(line)]
    return "\n".join(kept[-lines:])


def log_tail(path: Path) -> str:
    try:
        return tail(strip_ansi(path.read_text(errors="replace")))
    except OSError:
        return "(no log)"
