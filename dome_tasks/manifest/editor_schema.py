"""The copy of dome.yaml's JSON Schema that editors read: ``.dome/dome.schema.json`` beside the
manifest, named by the manifest's first line (``# yaml-language-server: $schema=…``, resolved
relative to dome.yaml). It is the installed dome-tasks' own schema, so an editor checks the
manifest against the version that will load it; ``invoke import`` writes it, and every
task that loads the manifest refreshes it when it differs (an upgrade)."""

from __future__ import annotations

from pathlib import Path

from dome_tasks._atomic import write_atomic

__all__ = ["COPY", "MODELINE", "refresh"]

#: The installed schema (``dome_tasks.manifest.json_schema.PATH``, which generates it).
INSTALLED = Path(__file__).resolve().parent / "dome.schema.json"
#: Where the copy lives, relative to the manifest's folder.
COPY = Path(".dome") / "dome.schema.json"
#: The manifest's first line (yaml-language-server: VS Code's YAML extension, Neovim, Helix…).
MODELINE = f"# yaml-language-server: $schema={COPY.as_posix()}"


def refresh(root: Path, *, create: bool = False) -> bool:
    """Make ``root/.dome/dome.schema.json`` the installed schema; True when it was written.

    Without ``create``, only a project that already has ``.dome`` gets it (a read-only task in a
    fresh checkout writes nothing). Unreadable or unwritable: skipped (an editor aid only)."""
    target = Path(root) / COPY
    if not create and not target.parent.is_dir():
        return False
    try:
        wanted = INSTALLED.read_bytes()
        try:
            if target.read_bytes() == wanted:
                return False
        except FileNotFoundError:
            pass
        write_atomic(target, wanted, durable=False)
    except OSError:
        return False
    return True
