"""What every task needs: settings from invoke config, the manifest, and the error boundary."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from invoke.exceptions import Exit

from dome_tasks.errors import DomeError

if TYPE_CHECKING:
    from invoke import Context

    from dome_tasks.manifest import Manifest

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Settings:
    """The ``dome:`` block of invoke configuration (invoke.yaml, ``INVOKE_DOME_*``), typed."""

    manifest: Path
    log_format: str = "text"  # text | json
    ledger: Path | None = None  # default: <manifest root>/.dome/ledger.jsonl
    assume_yes: bool = False  # dome.yes: confirm protected environments without asking

    @classmethod
    def from_context(cls, c: Context) -> Settings:
        dome = c.config.get("dome", {}) or {}
        manifest = dome.get("manifest") or "dome.yaml"
        ledger = dome.get("ledger")
        return cls(
            manifest=Path(manifest),
            log_format=str(dome.get("log_format", "text")),
            ledger=Path(ledger) if ledger else None,
            assume_yes=str(dome.get("yes", "")).lower() in ("1", "true", "yes"),
        )


def load_manifest(c: Context) -> Manifest:
    """Load and validate the manifest named by the settings (imports lazily: keeps --list fast)."""
    from dome_tasks.manifest import load

    return load(Settings.from_context(c).manifest)


def is_dry(c: Context, dry_run: bool = False) -> bool:
    """``--dry-run`` on the task, or invoke's own ``--dry``."""
    return bool(dry_run or c.config.run.dry)


def boundary(func: F) -> F:
    """Turn library errors into one clear message and a non-zero exit: no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DomeError as error:
            raise Exit(f"error: {error}", code=error.exit_code) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise Exit(code=130) from None

    return wrapper  # type: ignore[return-value]
