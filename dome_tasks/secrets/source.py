"""Where secret values come from: a dotenv file or the process environment.

In the environment, a variable of the secret's own name wins; ``DOME_SECRETS`` may hold more
as one dotenv document (how a reusable CI workflow receives secrets it cannot name).

Values are returned to the caller only; a problem names the file, the line and what is wrong,
never the value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from dome_tasks.errors import UsageError

__all__ = ["DOTENV_VARIABLE", "from_environ", "parse_dotenv", "read_dotenv"]

DOTENV_VARIABLE = "DOME_SECRETS"

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
    return parse_dotenv(text, str(path))


def parse_dotenv(text: str, where: str) -> dict[str, str]:
    """The ``NAME=value`` lines of *text*; a problem names *where* and the line, never a value."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.fullmatch(stripped)
        if match is None:
            raise UsageError(f"{where}:{number}: not a NAME=value line",
                             hint="names are letters, digits and _; comments start with #")
        name, raw = match.groups()
        values[name] = _value(raw, f"{where}:{number}: {name}")
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
    names, else the ones ``$DOME_SECRETS`` (a dotenv document) gives."""
    document = environ.get(DOTENV_VARIABLE, "")
    bundled = parse_dotenv(document, f"${DOTENV_VARIABLE}") if document.strip() else {}
    found = {name: environ.get(name) or bundled.get(name, "") for name in names}
    return {name: value for name, value in found.items() if value}
