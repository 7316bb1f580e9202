"""Collect manifest problems, each placed at a file line and key path, and raise them at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dome_tasks.errors import ManifestError

KeyPath = tuple  # tuple[str | int, ...]: ("services", "silo", "routes", 0)


def format_path(path: Sequence[str | int]) -> str:
    """``("services", "silo", "routes", 0)`` -> ``services.silo.routes[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class Problems:
    """An ordered, de-duplicated list of ``file:line: key.path: what`` messages."""

    def __init__(self, filename: str, lines: Mapping[KeyPath, int]):
        self.filename = filename
        self.lines = lines
        self._seen: dict[str, tuple[int, int]] = {}
        self._warnings: dict[str, tuple[int, int]] = {}

    def line_of(self, path: KeyPath) -> int:
        """The line of ``path``, or of its nearest ancestor that has one (1 for the root)."""
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return 1

    def add(self, path: KeyPath, what: str, *, line: int | None = None) -> None:
        """Record one problem; identical messages are kept once."""
        self._record(self._seen, path, what, line)

    def warn(self, path: KeyPath, what: str, *, line: int | None = None) -> None:
        """Record something accepted but worth knowing (a legacy key that is ignored)."""
        self._record(self._warnings, path, what, line)

    def _record(
        self, into: dict[str, tuple[int, int]], path: KeyPath, what: str, line: int | None
    ) -> None:
        if line is None:
            line = self.line_of(path)
        where = f"{self.filename}:{line}"
        message = f"{where}: {format_path(path)}: {what}" if path else f"{where}: {what}"
        if message not in into:
            into[message] = (line, len(into))

    def __bool__(self) -> bool:
        return bool(self._seen)

    @property
    def messages(self) -> list[str]:
        """Messages sorted by line, then in the order they were found."""
        return sorted(self._seen, key=self._seen.__getitem__)

    @property
    def warnings(self) -> list[str]:
        """Warnings, sorted like :attr:`messages`."""
        return sorted(self._warnings, key=self._warnings.__getitem__)

    def raise_if_any(self) -> None:
        if not self._seen:
            return
        messages = self.messages
        count = len(messages)
        error = ManifestError(
            "\n".join(messages),
            hint=f"{count} problem{'s' if count != 1 else ''} in {self.filename}; "
            "fix them all, then run again",
        )
        error.problems = tuple(messages)  # type: ignore[attr-defined]
        raise error
