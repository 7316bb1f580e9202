"""Times as dome-tasks writes and reads them: ISO 8601 UTC with milliseconds and ``Z``."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["format_time", "parse_time", "utc_now"]


def utc_now() -> str:
    """Now, as the ledger and the events write times."""
    return format_time(datetime.now(timezone.utc))


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time (``Z`` or an offset; a bare date means midnight UTC);
    ValueError when it is none."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
