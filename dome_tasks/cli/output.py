"""``--json``: exactly one JSON document on stdout, every human line on stderr.

:func:`json_output` wraps a task's work: while it runs, ``print`` (the task's, the runner's,
the commands' streamed output) goes to stderr; the task hands its result to
:meth:`JsonDocument.send`, which writes ``{"schema_version": 1, "kind": KIND, …}`` to the real
stdout. When a :class:`~dome_tasks.errors.DomeError` ends the task before it sent anything, the
document says so (``{"ok": false, "error": …}``) and the error is raised as usual (message on
stderr, non-zero exit). The documents are described in docs/json.md.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["SCHEMA_VERSION", "JsonDocument", "json_output"]

#: Raised when a field is removed or changes meaning; new fields do not change it.
SCHEMA_VERSION = 1


class JsonDocument:
    """The one document of a ``--json`` run (``kind`` names its shape in docs/json.md)."""

    def __init__(self, kind: str, stream: TextIO) -> None:
        self.kind, self.stream, self.sent = kind, stream, False

    def send(self, payload: dict[str, Any]) -> None:
        """Write the document (once: a second call is a bug, and is refused)."""
        if self.sent:
            raise RuntimeError(f"the {self.kind} document was already written")
        self.sent = True
        document = {"schema_version": SCHEMA_VERSION, "kind": self.kind, **payload}
        self.stream.write(json.dumps(document, indent=2, default=str) + "\n")
        self.stream.flush()


@contextlib.contextmanager
def json_output(enabled: bool, kind: str) -> Iterator[JsonDocument | None]:
    """With *enabled*: stdout goes to stderr inside the block; the yielded document goes to
    stdout. Without: yields None and changes nothing."""
    if not enabled:
        yield None
        return
    from dome_tasks.errors import DomeError

    document = JsonDocument(kind, sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield document
    except DomeError as error:
        if not document.sent:
            from dome_tasks.events import Redactor

            document.send({"ok": False, "error": Redactor.from_environ().text(error.message)})
        raise
