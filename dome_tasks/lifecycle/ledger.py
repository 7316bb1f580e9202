"""The deployment ledger: an append-only JSON Lines file, one record per lifecycle action.

Every deploy, rollback, canary step, promote, abort, verification and migration appends one
:class:`LedgerRecord`. A record is written with one ``write(2)`` on a file opened with ``O_APPEND``,
under an exclusive ``fcntl`` lock, then ``fsync``-ed: concurrent writers never interleave and
the file is never rewritten. Reading is tolerant: a torn or corrupt line (a crash mid-write, a
hand edit) is reported as a :class:`LedgerProblem` and skipped, never fatal.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from dome_tasks._atomic import exclusive
from dome_tasks._time import format_time, parse_time, utc_now
from dome_tasks.errors import DomeError

__all__ = [
    "FULL_TRAFFIC_KINDS",
    "KINDS",
    "OUTCOMES",
    "SCHEMA",
    "GitFacts",
    "Ledger",
    "LedgerError",
    "LedgerProblem",
    "LedgerRead",
    "LedgerRecord",
    "actor",
    "format_time",
    "git_facts",
    "last_healthy_version",
    "new_record_id",
    "open_canary",
    "parse_time",
    "select",
    "utc_now",
]

SCHEMA = 1
KINDS = ("deploy", "rollback", "canary", "promote", "abort", "verify", "migrate", "secret")
# success: the command worked (and verification, if run, passed)
# failure: the command itself failed (wrangler exited non-zero, …)
# unhealthy: the command worked, then verification failed (the version went live and was bad)
# interrupted: Ctrl-C or SIGTERM stopped it (wrangler's process group was stopped with dome)
# unknown: the change got no answer (deadline, dropped connection) and did not serve yet: it may
#   still land; the next read settles it with a record whose ``extra.settles`` names this one
OUTCOMES = ("success", "failure", "unhealthy", "interrupted", "unknown")
# After these kinds succeed, ``version_id`` serves 100% of the traffic (``secret``: the version
# a secret change made, read from the API after it; its ``from_version`` is the one it replaced).
FULL_TRAFFIC_KINDS = ("deploy", "rollback", "promote", "abort", "secret")


class LedgerError(DomeError):
    """The ledger cannot be written (permissions, disk) or a record is invalid."""


def new_record_id() -> str:
    """A fresh record id (16 hex digits): merging the shared history and a cache is by id."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class LedgerRecord:
    """One ledger line. ``version_id`` is the version serving (or meant to serve) after the action.

    Rollbacks and aborts also say where they came from (``from_version``) and went
    (``to_version``); canary steps carry ``percent`` (the new version's share of the traffic).
    """

    kind: str
    service: str
    environment: str
    outcome: str
    time: str = field(default_factory=utc_now)
    worker: str | None = None
    version_id: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    percent: int | None = None
    verified: bool | None = None  # None: verification did not run
    commit: str | None = None
    commit_time: str | None = None
    dirty: bool | None = None
    actor: str | None = None
    duration_ms: int | None = None
    reason: str | None = None
    automatic: bool = False  # e.g. the rollback after a failed verification
    extra: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_record_id)  # the same on every machine that holds it
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise LedgerError(f"unknown ledger record kind {self.kind!r}", hint=f"one of {KINDS}")
        if self.outcome not in OUTCOMES:
            raise LedgerError(f"unknown outcome {self.outcome!r}", hint=f"one of {OUTCOMES}")

    @property
    def moment(self) -> datetime:
        return parse_time(self.time)

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def to_json(self) -> str:
        """One line of JSON (no newline), keys in a stable order, empty values left out."""
        data = {k: v for k, v in asdict(self).items() if v is not None and v != {}}
        if not self.automatic:
            data.pop("automatic", None)
        return json.dumps(data, sort_keys=False, separators=(",", ":"), default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerRecord:
        """Build a record from a parsed line; unknown keys land in ``extra`` (forward-compatible)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        unknown = {k: v for k, v in data.items() if k not in known}
        if unknown:
            values["extra"] = {**dict(values.get("extra") or {}), **unknown}
        missing = [k for k in ("kind", "service", "environment", "outcome") if k not in values]
        if missing:
            raise ValueError(f"missing field(s): {', '.join(missing)}")
        if not values.get("id"):  # written before records had ids: derive a stable one
            canonical = json.dumps(dict(data), sort_keys=True, default=str).encode("utf-8")
            values["id"] = "h" + hashlib.sha256(canonical).hexdigest()[:15]
        return cls(**values)


@dataclass(frozen=True)
class LedgerProblem:
    """A line that could not be read; ``torn`` means it is the last line and lacks its newline."""

    line: int
    text: str
    error: str
    torn: bool = False

    def __str__(self) -> str:
        what = "torn last line (interrupted write?)" if self.torn else "unreadable line"
        return f"line {self.line}: {what}: {self.error}"


@dataclass(frozen=True)
class LedgerRead:
    records: tuple[LedgerRecord, ...]
    problems: tuple[LedgerProblem, ...] = ()


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # a link swapped in after the check is not followed


class Ledger:
    """The ledger file at ``path`` (created with its folder on first append): the local driver
    of :class:`~dome_tasks.lifecycle.record_store.RecordStore` (``put``, ``list``), records in
    the order written."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def append(self, record: LedgerRecord) -> LedgerRecord:
        """Append one record atomically: one O_APPEND write under a lock, then fsync."""
        self._write((record.to_json() + "\n").encode("utf-8"))
        return record

    def put(self, records: Iterable[LedgerRecord]) -> None:
        """Append several records with one write and one fsync (e.g. records pulled from the
        shared history into this cache)."""
        lines = "".join(record.to_json() + "\n" for record in records)
        if lines:
            self._write(lines.encode("utf-8"))

    def _write(self, line: bytes) -> None:
        for path in (self.path, self.lock_path):
            if os.path.islink(path):  # a link could send the history out of the repository
                raise LedgerError(
                    "the ledger is a symbolic link: dome-tasks does not write through it",
                    where=str(path),
                    hint=f"remove the link (or point dome.ledger in invoke.yaml at {os.path.realpath(path)})",
                )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with exclusive(self.lock_path):
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW, 0o644)
                try:
                    self._repair_torn_tail(fd)
                    written = os.write(fd, line)
                    if written != len(line):  # pragma: no cover - a full disk
                        raise OSError(f"short write: {written} of {len(line)} bytes")
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as error:
            raise LedgerError(
                f"cannot append to the ledger: {error}",
                where=str(self.path),
                hint="check the path (dome.ledger in invoke.yaml) and its permissions",
            ) from error

    def _repair_torn_tail(self, fd: int) -> None:
        """If the file ends without a newline (a torn write), start our record on a fresh line.

        Only a newline is added: the torn bytes stay where they are, and readers report them.
        """
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with open(self.path, "rb") as reader:
            reader.seek(size - 1)
            if reader.read(1) != b"\n":
                os.write(fd, b"\n")

    def read(self) -> LedgerRead:
        """All readable records, oldest first, and the problems met (never raises on content)."""
        if not self.path.exists():
            return LedgerRead(())
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        ends_clean = data.endswith(b"\n")
        if ends_clean:
            lines = lines[:-1]
        records: list[LedgerRecord] = []
        problems: list[LedgerProblem] = []
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="replace")
            try:
                payload = json.loads(text)
                if not isinstance(payload, dict):
                    raise ValueError("not a JSON object")  # noqa: TRY004 - reported as a bad line
                records.append(LedgerRecord.from_dict(payload))
            except (ValueError, TypeError, DomeError) as error:
                torn = number == len(lines) and not ends_clean
                problems.append(LedgerProblem(number, text[:200], str(error), torn=torn))
        return LedgerRead(tuple(records), tuple(problems))

    def list(self, environment: str | None = None, service: str | None = None) -> LedgerRead:
        """The records of *environment* (and *service* in it; None: all) in the order written,
        and every problem met."""
        read = self.read()
        return LedgerRead(tuple(select(read.records, service=service, environment=environment)),
                          read.problems)

    def records(
        self, service: str | None = None, environment: str | None = None
    ) -> tuple[LedgerRecord, ...]:
        return self.list(environment, service).records


def select(
    records: Iterable[LedgerRecord],
    *,
    service: str | None = None,
    environment: str | None = None,
    kinds: Iterable[str] | None = None,
    since: datetime | None = None,
) -> Iterator[LedgerRecord]:
    """Filter records by service, environment, kinds and time (``since`` inclusive)."""
    wanted = set(kinds) if kinds is not None else None
    for record in records:
        if service is not None and record.service != service:
            continue
        if environment is not None and record.environment != environment:
            continue
        if wanted is not None and record.kind not in wanted:
            continue
        if since is not None and record.moment < since:
            continue
        yield record


def last_healthy_version(
    records: Iterable[LedgerRecord], service: str, environment: str, *, exclude: Iterable[str] = ()
) -> str | None:
    """The newest version that verified healthy at 100% traffic (rollback's default target).

    Only successful, verified records of kinds that leave one version at 100% count
    (deploy, rollback, promote, abort); versions in ``exclude`` (e.g. the one live now) are
    skipped. A secret change made on top of such a version (``secret`` records, whose
    ``from_version`` it replaced: the same code with newer secrets) carries it forward: the
    target is then the newest version of that chain, so a rollback keeps the secrets.
    """
    skip = set(exclude)
    newer: dict[str, str] = {}  # a version -> the newest secret change made on top of it
    for record in reversed(list(select(records, service=service, environment=environment))):
        if record.kind == "secret" and record.ok and record.version_id and record.from_version:
            newest = newer.get(record.version_id, record.version_id)
            newer.setdefault(record.from_version, newest)
            continue
        if (
            record.kind in FULL_TRAFFIC_KINDS
            and record.ok
            and record.verified is True
            and record.version_id
        ):
            for version in (newer.get(record.version_id), record.version_id):
                if version and version not in skip:
                    return version
    return None


def open_canary(records: Iterable[LedgerRecord], service: str, environment: str) -> LedgerRecord | None:
    """The latest successful canary step not yet closed by a promote, abort, rollback or deploy."""
    for record in reversed(list(select(records, service=service, environment=environment))):
        if record.kind in ("promote", "abort", "rollback", "deploy") and record.outcome != "failure":
            return None
        if record.kind == "canary" and record.ok:
            return record
    return None


# --- who and what: git facts and the actor --------------------------------------------------


@dataclass(frozen=True)
class GitFacts:
    commit: str | None = None
    commit_time: str | None = None
    dirty: bool | None = None


def git_facts(cwd: Path | str, *, git: str = "git", timeout: float = 10.0) -> GitFacts:
    """HEAD's commit, its committer time and whether the tree is dirty (all None outside git)."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                [git, *args],
                cwd=str(cwd),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    head = run("log", "-1", "--format=%H%x00%cI")
    if not head or "\0" not in head:
        return GitFacts()
    commit, committed = head.strip().split("\0", 1)
    status = run("status", "--porcelain", "--untracked-files=no")
    commit_time = format_time(parse_time(committed)) if committed else None
    return GitFacts(commit, commit_time, None if status is None else bool(status.strip()))


# CI systems name the person or bot that triggered the run in these variables, first match wins.
_CI_ACTORS = (
    ("GITHUB_ACTOR", "github"),
    ("GITLAB_USER_LOGIN", "gitlab"),
    ("BUILDKITE_BUILD_CREATOR_EMAIL", "buildkite"),
    ("CIRCLE_USERNAME", "circleci"),
    ("BITBUCKET_STEP_TRIGGERER_UUID", "bitbucket"),
)


def actor(environ: Mapping[str, str] | None = None) -> str:
    """Who runs this: ``DOME_ACTOR``, else the CI actor (``github:alice``), else the local user."""
    env = os.environ if environ is None else environ
    if env.get("DOME_ACTOR"):
        return env["DOME_ACTOR"]
    for variable, system in _CI_ACTORS:
        if env.get(variable):
            return f"{system}:{env[variable]}"
    for variable in ("USER", "LOGNAME", "USERNAME"):
        if env.get(variable):
            return env[variable]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
