"""Where secret values come from: a dotenv file or the process environment.

Values are returned to the caller only; a problem names the file, the line and what is wrong,
never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from dome_tasks.errors import UsageError

__all__ = ["from_environ", "read_dotenv"]

_LINE = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def read_dotenv(path: Path | str) -> dict[str, str]:
    """``NAME=value`` lines (``export`` allowed, ``#`` comments, single or double quotes; a
    double-quoted value may hold ``\\n``); one clear error for anything else."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file", hint="give a dotenv file: NAME=value per line") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: cannot read it: {type(error).__name__}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            raise UsageError(f"{path}:{number}: not a NAME=value line",
                             hint="names are letters, digits and _; comments start with #")
        name, raw = match.groups()
        values[name] = _value(raw, f"{path}:{number}: {name}")
    return values


def _value(raw: str, where: str) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = _closing(raw, quote)
        if end is None:
            raise UsageError(f"{where}: the value's {quote} quote is not closed")
        rest = raw[end + 1 :].strip()
        if rest and not rest.startswith("#"):
            raise UsageError(f"{where}: text after the closing quote")
        inner = raw[1:end]
        if quote == '"':
            inner = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), inner)
        return inner
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def _closing(raw: str, quote: str) -> int | None:
    index = 1
    while index < len(raw):
        if raw[index] == "\\" and quote == '"':
            index += 2
            continue
        if raw[index] == quote:
            return index
        index += 1
    return None


def from_environ(names: Iterable[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The declared ``names`` that are set (non-empty) in ``environ``: CI's secrets of the same
    names."""
    return {name: environ[name] for name in names if environ.get(name)}
