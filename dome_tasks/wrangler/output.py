"""Read the NDJSON records wrangler writes to `WRANGLER_OUTPUT_FILE_PATH`.

wrangler 4.86.0 writes one `wrangler-session` record per run, then (on success) one of
`deploy`, `version-upload`, `version-deploy`, or (on failure) `command-failed` carrying
the API error `code` when the failure was an API error. `rollback`, `secret *` and `d1 *`
write no result record. `version-deploy.version_traffic` is always `{}` (a wrangler bug).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DeployRecord",
    "FailedCommandRecord",
    "VersionDeployRecord",
    "VersionUploadRecord",
    "WranglerOutput",
    "WranglerSession",
    "parse_output",
    "read_output",
]


@dataclass(frozen=True)
class WranglerSession:
    wrangler_version: str
    command_line_args: tuple[str, ...]


@dataclass(frozen=True)
class DeployRecord:
    worker_name: str
    version_id: str
    worker_tag: str | None = None
    targets: tuple[str, ...] = ()
    environment: str | None = None


@dataclass(frozen=True)
class VersionUploadRecord:
    worker_name: str
    version_id: str
    worker_tag: str | None = None
    preview_url: str | None = None


@dataclass(frozen=True)
class VersionDeployRecord:
    worker_name: str
    deployment_id: str | None
    worker_tag: str | None = None


@dataclass(frozen=True)
class FailedCommandRecord:
    """`code` is the Cloudflare API error code, None for non-API failures (network, SQL)."""

    message: str
    code: int | None = None


OutputRecord = WranglerSession | DeployRecord | VersionUploadRecord | VersionDeployRecord | FailedCommandRecord


@dataclass(frozen=True)
class WranglerOutput:
    """All records of one output file, in order; unknown types are kept raw."""

    records: tuple[OutputRecord, ...] = ()
    unknown: tuple[dict[str, Any], ...] = field(default=())

    def _last(self, kind: type) -> Any:
        found = [r for r in self.records if isinstance(r, kind)]
        return found[-1] if found else None

    @property
    def deploy(self) -> DeployRecord | None:
        return self._last(DeployRecord)

    @property
    def version_upload(self) -> VersionUploadRecord | None:
        return self._last(VersionUploadRecord)

    @property
    def version_deploy(self) -> VersionDeployRecord | None:
        return self._last(VersionDeployRecord)

    @property
    def failure(self) -> FailedCommandRecord | None:
        return self._last(FailedCommandRecord)

    @property
    def version_id(self) -> str | None:
        """The version a `deploy` or `versions upload` produced."""
        for record in reversed(self.records):
            if isinstance(record, (DeployRecord, VersionUploadRecord)):
                return record.version_id
        return None

    @property
    def worker_name(self) -> str | None:
        for record in reversed(self.records):
            name = getattr(record, "worker_name", None)
            if name:
                return name
        return None

    @property
    def error_code(self) -> int | None:
        failure = self.failure
        return failure.code if failure else None


def _record(raw: dict[str, Any]) -> OutputRecord | None:
    kind = raw.get("type")
    if kind == "wrangler-session":
        return WranglerSession(
            str(raw.get("wrangler_version", "")), tuple(raw.get("command_line_args", []))
        )
    if kind == "deploy":
        return DeployRecord(
            worker_name=raw["worker_name"],
            version_id=raw["version_id"],
            worker_tag=raw.get("worker_tag"),
            targets=tuple(raw.get("targets") or ()),
            environment=raw.get("wrangler_environment"),
        )
    if kind == "version-upload":
        return VersionUploadRecord(
            worker_name=raw["worker_name"],
            version_id=raw["version_id"],
            worker_tag=raw.get("worker_tag"),
            preview_url=raw.get("preview_url"),
        )
    if kind == "version-deploy":
        return VersionDeployRecord(
            worker_name=raw["worker_name"],
            deployment_id=raw.get("deployment_id"),
            worker_tag=raw.get("worker_tag"),
        )
    if kind == "command-failed":
        code = raw.get("code")
        return FailedCommandRecord(message=str(raw.get("message", "")), code=int(code) if code else None)
    return None


def parse_output(text: str) -> WranglerOutput:
    """Parse NDJSON text; blank, truncated or non-object lines are skipped."""
    records: list[OutputRecord] = []
    unknown: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            continue
        if not isinstance(raw, dict):
            continue
        try:
            record = _record(raw)
        except (KeyError, TypeError, ValueError):
            record = None
        if record is None:
            unknown.append(raw)
        else:
            records.append(record)
    return WranglerOutput(tuple(records), tuple(unknown))


def read_output(path: Path | str) -> WranglerOutput:
    """Parse the output file; a missing file (wrangler died early) gives no records."""
    try:
        return parse_output(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return WranglerOutput()
