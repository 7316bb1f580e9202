"""wrangler colours its output even with NO_COLOR (its error boxes): strip that before reading it."""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")


def strip_ansi(text: str) -> str:
    """*text* (None counts as empty) without ANSI colour, cursor and hyperlink sequences."""
    return _ANSI.sub("", text or "")
