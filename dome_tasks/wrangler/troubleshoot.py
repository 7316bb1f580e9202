"""Classify a wrangler failure into the deployment guide's troubleshooting cases (section 9.1).

Inputs are what wrangler leaves behind: its stderr/stdout (ANSI colour and all) and the
``command-failed`` records it writes to ``WRANGLER_OUTPUT_FILE_PATH``, which carry the
Cloudflare API error ``code``. API codes are the most reliable signal and are read first; text
patterns are the fallback. The caller prints :func:`explain` under wrangler's own message and
keeps wrangler's exit code. A failure that came after a successful upload ("Uploaded NAME" on
stdout) is its own case: the new version may be live, so the remedy is to look, not to redo.
A D1 migration failure is a SQL error only with code 7500 / SQLITE_*; 5xx, 429 and dropped
connections during a migration are API problems (transient).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dome_tasks.wrangler._ansi import strip_ansi

__all__ = [
    "CASES",
    "TRANSIENT",
    "Case",
    "Diagnosis",
    "classify",
    "error_codes",
    "explain",
    "failure_records",
    "strip_ansi",
]

_CODE = re.compile(r"\[code: (\d+)\]")
_API_PATH = re.compile(r"A request to the Cloudflare API \(([^)]*)\) failed")
_WORKER_IN_PATH = re.compile(r"/workers/(?:scripts|services)/([^/?)\s]+)")
_MIGRATION = re.compile(r"Migration (\S+) failed")
_STATUS_ROW = re.compile(r"│\s*(\S+\.sql)\s*│(?:\s*(\S+)\s*│)?")
_UPLOADED = re.compile(r"^Uploaded \S+ \(", re.MULTILINE)


@dataclass(frozen=True)
class Case:
    """One troubleshooting case: its key, title, guide section and remedies."""

    key: str
    title: str
    section: str | None  # the deployment guide's section; None for dome-tasks' own cases
    remedies: tuple[str, ...]


AUTH = Case(
    "authentication",
    "Wrangler authentication issue",
    "9.1.1",
    (
        "Run `wrangler login` to authenticate (in CI: set CLOUDFLARE_API_TOKEN)",
        "Check that you have the correct permissions in Cloudflare",
    ),
)
NOT_FOUND = Case(
    "resource-not-found",
    "Resource binding issue (resource not found)",
    "9.1.2",
    (
        "Verify that the resource exists in the Cloudflare dashboard",
        "Check that the resource ID is correct in `wrangler.toml` (in dome.yaml: it is rendered)",
        "Ensure you have the correct permissions for the resource",
    ),
)
CONFIG = Case(
    "configuration",
    "Environment variable or configuration issue",
    "9.1.3",
    (
        "Check that all required environment variables are set",
        "Verify that environment variables have the correct values",
        "Ensure secrets are set for the correct environment",
    ),
)
SERVICE_BINDING = Case(
    "service-binding",
    "Service binding issue",
    "9.1.4",
    (
        "Verify that the service exists and is deployed",
        "Check that the service name is correct in `wrangler.toml` (deploy dependencies first)",
        "Ensure you have the correct permissions for the service",
    ),
)
SQL = Case(
    "sql",
    "D1 migration failed (SQL error)",
    None,
    (
        "Fix the SQL in the migration wrangler names; migrations before it stay applied",
        "Re-run the migration task: applied migrations are skipped",
    ),
)
AFTER_UPLOAD = Case(
    "after-upload",
    "A call after the upload failed (the new version may be live)",
    None,
    (
        (
            "Check what serves now with `invoke status SERVICE ENV` before deploying again: "
            "the upload went through"
        ),
        (
            "dome did not repeat the deploy (that would upload yet another version); "
            "if the status shows the old version, deploy again"
        ),
    ),
)
BUNDLE = Case(
    "bundle",
    "wrangler could not bundle the worker (a module it imports is missing)",
    None,
    (
        "Install the workspace's dependencies at the repository root (`npm ci`, "
        "`pnpm install --frozen-lockfile`, …)",
        "If the missing file is a build output, build first (`build:` in dome.yaml, or a "
        "`just build-pkg SERVICE` recipe); `--no-build` skips that",
    ),
)
RATE_LIMITED = Case(
    "rate-limited",
    "Cloudflare API rate limit",
    None,
    ("Wait a minute and run the command again (wrangler does not retry 429 answers)",),
)
NETWORK = Case(
    "network",
    "Cannot reach the Cloudflare API",
    None,
    (
        "Check the network connection, proxy and firewall",
        "If CLOUDFLARE_API_BASE_URL is set, check that it points at a running API",
    ),
)
API_ERROR = Case(
    "api-error",
    "Cloudflare API error (server side)",
    None,
    (
        "Run the command again: the API may be having a transient problem",
        "Exit 1 may mean partially applied: check `status` before retrying a deploy",
    ),
)

CASES: tuple[Case, ...] = (
    AUTH, NOT_FOUND, CONFIG, SERVICE_BINDING, SQL, BUNDLE, RATE_LIMITED, NETWORK, API_ERROR,
    AFTER_UPLOAD,
)
# Cases where the same command may well succeed when run again.
TRANSIENT = frozenset({RATE_LIMITED, NETWORK, API_ERROR})

_CODE_CASES: dict[int, Case] = {
    1000: AUTH,  # "Account API Token" on /user/tokens/verify
    9106: AUTH,
    9109: AUTH,
    10000: AUTH,
    10001: AUTH,
    10006: NOT_FOUND,  # R2 bucket does not exist
    10007: NOT_FOUND,  # script not found
    10090: NOT_FOUND,  # service not found
    7404: NOT_FOUND,  # D1 database not found
    7500: SQL,
    971: RATE_LIMITED,
    10013: API_ERROR,
}

# Text fallbacks, most specific first (service binding before the generic "not found").
_TEXT_CASES: tuple[tuple[re.Pattern[str], Case], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.MULTILINE), case)
    for pattern, case in (
        (r"service binding", SERVICE_BINDING),
        (r"service not found|could not resolve service", SERVICE_BINDING),
        (r"authentication error|must be logged in|not logged in|unable to authenticate", AUTH),
        (r"necessary to set a CLOUDFLARE_API_TOKEN|invalid api token|oauth", AUTH),
        (r"SQLITE_", SQL),
        (r"fetch failed|ECONNREFUSED|ENOTFOUND|connectivity issue", NETWORK),
        (r"other side closed|socket hang up|ECONNRESET|UND_ERR_|^\s*terminated\s*$", NETWORK),
        (r"Migration \S+ failed", SQL),
        (r"Build failed with \d+ errors?|Could not resolve \"", BUNDLE),
        (r"missing required environment variable|invalid configuration", CONFIG),
        (r"processing .*configuration|entry-point|no such file|could not resolve", CONFIG),
        (r"unexpected fields found|is not a valid|should have a|ParseError|invalid TOML", CONFIG),
        (r"could not find binding|resource not found|does not exist|couldn't find", NOT_FOUND),
        (r"not found", NOT_FOUND),
        (r"throttling|rate limit|too many requests", RATE_LIMITED),
        (r"malformed response|unknown error has occurred|service unavailable", API_ERROR),
    )
)


@dataclass(frozen=True)
class Diagnosis:
    """The case, the evidence, and what makes its remedies concrete: the migration file that
    failed (``migration``, a path when known) and how often dome already retried."""

    case: Case
    evidence: str  # the line (or record) that decided it
    code: int | None = None
    migration: str | None = None
    retries: int = 0

    @property
    def remedies(self) -> tuple[str, ...]:
        remedies = self.case.remedies
        if self.case is SQL and self.migration:
            remedies = (f"Fix the SQL in {self.migration}; migrations before it stay applied",
                        *remedies[1:])
        if self.case in TRANSIENT and self.retries:
            what = "network error" if self.case is NETWORK else "Cloudflare API error"
            times = "time" if self.retries == 1 else "times"
            again = ("run the migration task again: applied migrations are skipped"
                     if self.migration else "run the command again")
            remedies = (f"{what}, retried {self.retries} {times}; {again}", *remedies)
        return remedies

    def with_context(self, *, migration: str | None = None, retries: int = 0) -> Diagnosis:
        return replace(self, migration=migration or self.migration, retries=retries)



def failure_records(source: Iterable[Mapping[str, Any]] | str | Path | None) -> list[dict[str, Any]]:
    """The ``command-failed`` records among parsed records, NDJSON text, or an NDJSON file."""
    if source is None:
        return []
    if isinstance(source, Path):
        source = source.read_text(encoding="utf-8", errors="replace") if source.exists() else ""
    if isinstance(source, str):
        parsed: list[Mapping[str, Any]] = []
        for line in source.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict):
                parsed.append(item)
        source = parsed
    return [dict(r) for r in source if r.get("type") == "command-failed"]


def error_codes(text: str) -> list[int]:
    """The ``[code: N]`` numbers wrangler printed, in order."""
    return [int(n) for n in _CODE.findall(strip_ansi(text))]


def error_lines(text: str) -> list[str]:
    """The ``✘ [ERROR]`` headline(s) and the indented lines under them, ANSI stripped."""
    lines = strip_ansi(text).splitlines()
    out: list[str] = []
    inside = False
    for line in lines:
        if "[ERROR]" in line:
            inside = True
            out.append(line.split("[ERROR]", 1)[1].strip())
        elif inside and line.startswith((" ", "\t")) and line.strip():
            if "If you think this is a bug" not in line:
                out.append(line.strip())
        elif inside and not line.strip():
            continue
        else:
            inside = False
    return out


def classify(
    stderr: str = "",
    stdout: str = "",
    records: Iterable[Mapping[str, Any]] | str | Path | None = None,
    *,
    worker: str | None = None,
) -> Diagnosis | None:
    """Which case the failure is, or None when nothing matches.

    ``worker`` is the worker that was being acted on: a "not found" about *another* worker
    (a service binding target) becomes the service-binding case. A transient failure after
    the upload becomes the after-upload case. ``migration`` is the file wrangler names.
    """
    diagnosis = _classify(stderr, stdout, records, worker)
    if diagnosis is None:
        return None
    if diagnosis.case in TRANSIENT and _UPLOADED.search(strip_ansi(stdout)):
        diagnosis = replace(diagnosis, case=AFTER_UPLOAD)
    named = _MIGRATION.search(strip_ansi(stderr))
    failed = named.group(1) if named else _unfinished_migration(strip_ansi(stdout))
    return replace(diagnosis, migration=failed) if failed else diagnosis


def _unfinished_migration(stdout: str) -> str | None:
    """The first migration to apply that is not marked ✅: wrangler 4.1xx names no failed file
    on stderr; it lists the migrations to apply, then prints the status table (✅ done,
    🕒 running) before each one after the first runs."""
    status: dict[str, str] = {}
    for name, mark in _STATUS_ROW.findall(stdout):
        status[name] = mark or status.get(name, "")
    return next((name for name, mark in status.items() if "✅" not in mark), None)


def _classify(
    stderr: str,
    stdout: str,
    records: Iterable[Mapping[str, Any]] | str | Path | None,
    worker: str | None,
) -> Diagnosis | None:
    errors_text = "\n".join(error_lines(stderr) + error_lines(stdout))
    failed = failure_records(records)
    for record in failed:
        message = str(record.get("message", ""))
        code = record.get("code")
        codes = [code] if isinstance(code, int) else error_codes(message)
        for code in codes:
            if code in _CODE_CASES:
                context = "\n".join([message, errors_text])
                return Diagnosis(_refine(_CODE_CASES[code], context, worker), message, code)
    for code in error_codes(stderr + "\n" + stdout):
        if code in _CODE_CASES:
            return Diagnosis(_refine(_CODE_CASES[code], errors_text, worker), errors_text, code)
    messages = [str(r.get("message", "")) for r in failed]
    focused = "\n".join([errors_text, *messages]).strip()
    everything = strip_ansi(stderr + "\n" + stdout)
    for haystack in (focused, everything):  # error lines first, then all output
        for pattern, case in _TEXT_CASES:
            match = pattern.search(haystack)
            if match:
                line = next((ln for ln in haystack.splitlines() if pattern.search(ln)), match.group(0))
                return Diagnosis(_refine(case, haystack, worker), line.strip())
    return None


def _refine(case: Case, text: str, worker: str | None) -> Case:
    """A not-found about a different worker than ours is a service binding problem."""
    if case is not NOT_FOUND:
        return case
    if re.search(r"service binding|service not found", text, re.IGNORECASE):
        return SERVICE_BINDING
    if worker:
        for path in _API_PATH.findall(text) or [text]:
            for name in _WORKER_IN_PATH.findall(path):
                if name != worker:
                    return SERVICE_BINDING
        named = re.search(r"This Worker \(([^)]+)\) does not exist", text)
        if named and named.group(1) != worker:
            return SERVICE_BINDING
    return case


def explain(diagnosis: Diagnosis) -> str:
    """The remedy block printed under wrangler's own message."""
    case = diagnosis.case
    source = f" (deployment guide {case.section})" if case.section else ""
    code = f" [code: {diagnosis.code}]" if diagnosis.code is not None else ""
    lines = [f"dome: this looks like: {case.title}{source}{code}", "  Solutions:"]
    lines += [f"  - {remedy}" for remedy in diagnosis.remedies]
    return "\n".join(lines)
