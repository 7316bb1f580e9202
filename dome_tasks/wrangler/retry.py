"""Retrying failed wrangler commands: classify a failure, back off, log every retry.

What wrangler does itself: 4.20 to 4.86 never retry a 429 and ignore Retry-After; they
retry 5xx and network errors (3 attempts, 0 s then 1 s) only on the script upload,
`POST .../versions` and the workers.dev subdomain call. 4.164 also retries a 429 on those
calls, waiting out Retry-After (so a single 429 no longer reaches dome). Everything else fails
on the first error with exit code 1. So the tool retries what is transient (429, 5xx, dropped
connections), never auth (10000/10001/401/403) or SQL errors, and only commands that are
safe to repeat. A migration that fails on a 5xx, a 429 or a dropped connection is transient
too (D1 records applied migrations, so applying again resumes where it stopped); a SQL error
(code 7500, SQLITE_*) is not. A deploy whose upload went through ("Uploaded NAME" on stdout)
before a later call failed is never repeated as a whole: the new version may already be live.
A command killed at its deadline is not repeated either.

What can be learned from a failed run:
* the output file's `command-failed` record: the API error code (971 = rate limited,
  10013 = internal error, 10000 = auth) and the API path in its message;
* stderr: "Received a malformed response from the API ... GET /path -> 502 Bad Gateway"
  (non-JSON bodies), "fetch failed" (network), "Migration ... failed" (SQL);
* with `WRANGLER_LOG=debug`: every request line and response status on stdout
  (`-- START CF API REQUEST: PUT http://...`, `-- START CF API RESPONSE: Too Many Requests 429`).
  Response headers, and so Retry-After, are printed only with `WRANGLER_LOG_SANITIZE=false`,
  which also prints request bodies (secret values), so the tool does not normally see
  Retry-After and falls back to exponential backoff. wrangler's debug log file is not a
  usable source either (it exits before flushing its last entries), and dome turns it off.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Literal

from dome_tasks.wrangler._ansi import strip_ansi
from dome_tasks.wrangler.output import WranglerOutput

__all__ = [
    "Attempt",
    "Failure",
    "HttpExchange",
    "RetryPolicy",
    "RetryResult",
    "classify",
    "is_safe_to_repeat",
    "parse_debug_log",
    "parse_retry_after",
    "run_with_retries",
    "strip_ansi",
]

Kind = Literal[
    "rate_limited", "server_error", "network", "auth", "sql", "client_error", "timeout", "unknown"
]

AUTH_CODES = frozenset({1000, 9106, 9109, 10000, 10001})
RATE_LIMIT_CODES = frozenset({971, 10429})
SERVER_ERROR_CODES = frozenset({10013})
SQL_CODES = frozenset({7500})

_API_PATH = re.compile(r"A request to the Cloudflare API \((?P<path>[^)]*)\) failed")
_MALFORMED = re.compile(r"(?P<method>[A-Z]+) (?P<path>/\S*) -> (?P<status>\d{3})")
_CODE = re.compile(r"\[code: (?P<code>\d+)\]")
_DEBUG_REQUEST = re.compile(r"-- START CF API REQUEST: (?P<method>[A-Z]+) (?P<url>\S+)")
_DEBUG_RESPONSE = re.compile(r"-- START CF API RESPONSE: .*?(?P<status>\d{3})\s*$")
_DEBUG_RETRY_AFTER = re.compile(r'"retry-after":\s*"(?P<value>[^"]+)"', re.IGNORECASE)
# How wrangler (undici) reports a connection that failed, was refused, reset or cut mid-answer.
NETWORK_ERRORS = re.compile(
    r"fetch failed|A fetch request failed|other side closed|socket hang up|ECONNRESET|"
    r"ECONNREFUSED|EPIPE|ETIMEDOUT|UND_ERR_\w+|^\s*(?:✘ \[ERROR\] )?terminated\s*$",
    re.MULTILINE,
)
_MIGRATION_FAILED = re.compile(r"Migration (?P<name>\S+) failed")
_UPLOADED = re.compile(r"^Uploaded \S+ \(", re.MULTILINE)



def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date)."""
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


@dataclass(frozen=True)
class HttpExchange:
    """One API call seen in `WRANGLER_LOG=debug` output."""

    method: str
    path: str
    status: int | None = None
    retry_after: float | None = None


def parse_debug_log(text: str) -> list[HttpExchange]:
    """The API calls printed by `WRANGLER_LOG=debug`, in order (paths without `/client/v4`)."""
    out: list[HttpExchange] = []
    for line in strip_ansi(text).splitlines():
        request = _DEBUG_REQUEST.search(line)
        if request:
            path = re.sub(r"^https?://[^/]+", "", request["url"])
            path = re.sub(r"^/client/v4", "", path)
            out.append(HttpExchange(request["method"], path))
            continue
        if not out:
            continue
        response = _DEBUG_RESPONSE.search(line)
        if response:
            last = out[-1]
            out[-1] = HttpExchange(last.method, last.path, int(response["status"]))
            continue
        retry_after = _DEBUG_RETRY_AFTER.search(line)
        if retry_after and out[-1].status is not None:
            last = out[-1]
            seconds = parse_retry_after(retry_after["value"])
            out[-1] = HttpExchange(last.method, last.path, last.status, seconds)
    return out


@dataclass(frozen=True)
class Attempt:
    """What one wrangler run left behind."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    output: WranglerOutput = field(default_factory=WranglerOutput)
    timed_out: bool = False  # killed at its deadline

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class Failure:
    """A classified failure; `retryable` says whether waiting can help. `after_upload`: the
    upload had gone through before the failure (the new version may be live)."""

    kind: Kind
    retryable: bool
    code: int | None = None
    status: int | None = None
    method: str | None = None
    path: str | None = None
    retry_after: float | None = None
    message: str = ""
    after_upload: bool = False

    def describe(self) -> str:
        """E.g. `HTTP 429 from PUT /accounts/a/workers/scripts/silo`."""
        if self.kind == "network":
            what = "network error (connection failed or dropped)"
        elif self.kind == "timeout":
            what = "no answer before the deadline"
        elif self.status is not None:
            what = f"HTTP {self.status}"
            if self.code is not None:
                what += f" (API error {self.code})"
        elif self.code is not None:
            what = f"API error {self.code} ({self.kind.replace('_', ' ')})"
        else:
            what = self.kind.replace("_", " ")
        where = " ".join(p for p in (self.method, self.path) if p)
        return f"{what} from {where}" if where else what


def _kind_for(status: int | None, code: int | None) -> Kind:
    if code in AUTH_CODES or status in (401, 403):
        return "auth"
    if code in SQL_CODES:
        return "sql"
    if status == 429 or code in RATE_LIMIT_CODES:
        return "rate_limited"
    if (status is not None and status >= 500) or code in SERVER_ERROR_CODES:
        return "server_error"
    if status is not None or code is not None:
        return "client_error"
    return "unknown"


def classify(attempt: Attempt) -> Failure | None:
    """None for success, else what went wrong and whether it is worth retrying."""
    if attempt.ok:
        return None
    failure = _classify(attempt)
    if _UPLOADED.search(strip_ansi(attempt.stdout)):
        failure = replace(failure, after_upload=True)
    return failure


def _classify(attempt: Attempt) -> Failure:
    if attempt.timed_out:
        return Failure("timeout", False, message="killed at the command deadline")
    failed = attempt.output.failure
    code = failed.code if failed else None
    message = failed.message if failed else ""
    text = strip_ansi(f"{attempt.stderr}\n{attempt.stdout}\n{message}")
    if code is None:
        match = _CODE.search(strip_ansi(attempt.stderr))
        code = int(match["code"]) if match else None
    path_match = _API_PATH.search(message) or _API_PATH.search(text)
    path = path_match["path"] if path_match else None
    method: str | None = None
    status: int | None = None
    retry_after: float | None = None
    failed_calls = [x for x in parse_debug_log(attempt.stdout) if x.status and x.status >= 400]
    if failed_calls:
        last = failed_calls[-1]
        method, status, retry_after = last.method, last.status, last.retry_after
        path = path or last.path
    if "Received a malformed response from the API" in text:
        malformed = _MALFORMED.search(text)
        if malformed:
            method, path, status = malformed["method"], malformed["path"], int(malformed["status"])
        return _failure(_kind_for(status, None), status, None, method, path, retry_after, message)
    if code in SQL_CODES or "SQLITE_" in text:
        return Failure("sql", False, code, status, method, path, None, message or "SQL error")
    if code is None and status is None and NETWORK_ERRORS.search(text):
        return Failure("network", True, None, None, method, path, None, message or "fetch failed")
    if code is None and status is None and _MIGRATION_FAILED.search(text):
        return Failure("sql", False, None, None, method, path, None, message or "SQL error")
    if code is None and (
        "Not logged in" in text or "necessary to set a CLOUDFLARE_API_TOKEN" in text
    ):
        return Failure("auth", False, None, None, method, path, None, "not logged in")
    return _failure(_kind_for(status, code), status, code, method, path, retry_after, message)


def _failure(
    kind: Kind,
    status: int | None,
    code: int | None,
    method: str | None,
    path: str | None,
    retry_after: float | None,
    message: str,
) -> Failure:
    retryable = kind in ("rate_limited", "server_error", "network")
    return Failure(kind, retryable, code, status, method, path, retry_after, message)


_VALUE_FLAGS = frozenset(
    {
        "--env",
        "-e",
        "--config",
        "-c",
        "--message",
        "-m",
        "--name",
        "--tag",
        "--script",
        "--compatibility-date",
        "--outdir",
        "--var",
        "--define",
        "--persist-to",
        "--cwd",
    }
)
_SAFE = {
    ("deploy",),
    ("versions", "upload"),
    ("versions", "deploy"),
    ("versions", "list"),
    ("versions", "view"),
    ("deployments", "list"),
    ("deployments", "status"),
    ("whoami",),
    ("secret", "put"),
    ("secret", "bulk"),
    ("secret", "list"),
    ("secret", "delete"),
    ("d1", "migrations", "apply"),
    ("d1", "migrations", "list"),
    ("d1", "list"),
    ("d1", "info"),
    ("kv", "namespace", "list"),
    ("r2", "bucket", "list"),
    ("queues", "list"),
}


def _positionals(argv: Sequence[str]) -> list[str]:
    words = list(argv)
    for index, word in enumerate(words):
        if word.rsplit("/", 1)[-1] in ("wrangler", "wrangler.js", "wrangler.cmd"):
            words = words[index + 1 :]
            break
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
        elif word.startswith("-"):
            skip = word in _VALUE_FLAGS
        else:
            out.append(word)
    return out


def is_safe_to_repeat(argv: Sequence[str]) -> bool:
    """Whether running the command again after a failure cannot do harm.

    Repeating a deploy of the same bundle, a `versions deploy` of the same split, a
    `secret put`, or `d1 migrations apply` (applied migrations are recorded) is safe. A
    `rollback` without a version id is not: each run steps one deployment further back.
    Arbitrary SQL (`d1 execute`) and creations that fail when repeated are not.
    """
    words = _positionals(argv)
    if words[:1] == ["rollback"]:
        return len(words) >= 2
    return any(tuple(words[: len(key)]) == key for key in _SAFE)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff: base * multiplier**(n-1), capped; Retry-After wins."""

    max_retries: int = 3
    base_delay: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def backoff(self, retry: int) -> float:
        return min(self.max_delay, self.base_delay * self.multiplier ** (retry - 1))

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        return self.backoff(retry)


@dataclass(frozen=True)
class RetryResult:
    final: Attempt
    attempts: tuple[Attempt, ...]
    failure: Failure | None

    @property
    def ok(self) -> bool:
        return self.final.ok


def run_with_retries(
    attempt_fn: Callable[[], Attempt],
    policy: RetryPolicy | None = None,
    *,
    safe_to_repeat: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
    landed: Callable[[Attempt], bool] | None = None,
) -> RetryResult:
    """Run `attempt_fn` until it succeeds, fails for good, or retries run out.

    Logs `retry 1/3 after 1.0s: HTTP 429 from PUT /accounts/...` before every retry.
    `landed(attempt)` True means the failed command already changed what serves (a deploy that
    went live before a later call failed): it is not repeated (see lifecycle.reconcile).
    """
    policy = policy or RetryPolicy()
    attempts: list[Attempt] = []
    retry = 0
    while True:
        attempt = attempt_fn()
        attempts.append(attempt)
        failure = classify(attempt)
        if failure is None:
            return RetryResult(attempt, tuple(attempts), None)
        if not failure.retryable:
            return RetryResult(attempt, tuple(attempts), failure)
        if failure.after_upload:
            log(f"not retrying (the upload went through; the new version may be live): "
                f"{failure.describe()}")
            return RetryResult(attempt, tuple(attempts), failure)
        if not safe_to_repeat:
            log(f"not retrying (command is not safe to repeat): {failure.describe()}")
            return RetryResult(attempt, tuple(attempts), failure)
        if retry >= policy.max_retries:
            log(f"giving up after {len(attempts)} attempts: {failure.describe()}")
            return RetryResult(attempt, tuple(attempts), failure)
        if landed is not None and landed(attempt):
            log(f"not retrying: the new version went live before this failed: {failure.describe()}")
            return RetryResult(attempt, tuple(attempts), failure)
        retry += 1
        wait = policy.delay(retry, failure.retry_after)
        log(f"retry {retry}/{policy.max_retries} after {wait:.1f}s: {failure.describe()}")
        sleep(wait)
