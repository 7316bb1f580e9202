"""Retry classification, backoff and the retry loop, on recorded wrangler output."""

from __future__ import annotations

import pytest

from dome_tasks.wrangler.output import parse_output
from dome_tasks.wrangler.retry import (
    Attempt,
    RetryPolicy,
    classify,
    is_safe_to_repeat,
    parse_debug_log,
    parse_retry_after,
    run_with_retries,
)

API = "/accounts/acc1/workers/scripts/silo"
RED = "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m"


def failed(code: int | None, message: str, stderr: str = "", stdout: str = "") -> Attempt:
    record = {"type": "command-failed", "version": 1, "message": message}
    if code is not None:
        record["code"] = code
    import json

    return Attempt(1, stdout, stderr, parse_output(json.dumps(record)))


def api_failed(code: int, path: str = API) -> Attempt:
    msg = f"A request to the Cloudflare API ({path}) failed."
    return failed(code, msg, stderr=f"{RED} {msg}\n\n  Boom [code: {code}]\n")


@pytest.mark.parametrize(
    ("attempt", "kind", "retryable"),
    [
        (api_failed(971), "rate_limited", True),
        (api_failed(10013), "server_error", True),
        (api_failed(10000), "auth", False),
        (api_failed(10001), "auth", False),
        (api_failed(10153), "client_error", False),
        (failed(None, "fetch failed", stderr="✘ [ERROR] fetch failed"), "network", True),
        (
            failed(
                None,
                "Received a malformed response from the API",
                stderr="✘ [ERROR] Received a malformed response from the API\n  <html>\n"
                "  GET /accounts/acc1/workers/services/silo -> 502 Bad Gateway\n",
            ),
            "server_error",
            True,
        ),
        (
            failed(
                None,
                'near "creat": syntax error: SQLITE_ERROR [code: 7500]',
                stderr="✘ [ERROR] Migration 0002_broken.sql failed with the following errors:\n"
                '✘ [ERROR] near "creat": syntax error: SQLITE_ERROR [code: 7500]\n',
            ),
            "sql",
            False,
        ),
        (Attempt(1, "", '✘ [ERROR] Could not resolve "./missing"'), "unknown", False),
    ],
)
def test_classify(attempt, kind, retryable):
    failure = classify(attempt)
    assert failure is not None
    assert (failure.kind, failure.retryable) == (kind, retryable)


def test_classify_success_is_none():
    assert classify(Attempt(0)) is None


def test_malformed_response_names_method_path_and_status():
    failure = classify(
        failed(
            None,
            "Received a malformed response from the API",
            stderr="  GET /accounts/a/workers/services/silo -> 502 Bad Gateway\n",
        )
    )
    assert failure.describe() == "HTTP 502 from GET /accounts/a/workers/services/silo"


def test_classify_uses_the_code_from_stderr_when_the_output_file_is_missing():
    attempt = Attempt(
        1, "", f"{RED} A request to the Cloudflare API ({API}) failed.\n  x [code: 971]"
    )
    failure = classify(attempt)
    assert (failure.kind, failure.path) == ("rate_limited", API)


DEBUG = """\
-- START CF API REQUEST: GET http://127.0.0.1:1/client/v4/accounts/a/workers/services/silo
-- START CF API RESPONSE: Not Found 404
-- START CF API REQUEST: PUT http://127.0.0.1:1/client/v4/accounts/a/workers/scripts/silo
-- START CF API RESPONSE: Too Many Requests 429
HEADERS: {
  "content-type": "application/json",
  "retry-after": "3",
}
"""


def test_parse_debug_log():
    calls = parse_debug_log(DEBUG)
    assert [(c.method, c.path, c.status, c.retry_after) for c in calls] == [
        ("GET", "/accounts/a/workers/services/silo", 404, None),
        ("PUT", "/accounts/a/workers/scripts/silo", 429, 3.0),
    ]


def test_debug_log_gives_status_method_and_retry_after():
    attempt = api_failed(971, "/accounts/a/workers/scripts/silo")
    failure = classify(Attempt(1, DEBUG, attempt.stderr, attempt.output))
    assert (
        failure.describe() == "HTTP 429 (API error 971) from PUT /accounts/a/workers/scripts/silo"
    )
    assert failure.retry_after == 3.0


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None


def test_backoff_is_exponential_bounded_and_retry_after_wins():
    policy = RetryPolicy(base_delay=1, multiplier=2, max_delay=5, max_retry_after=30)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(1, retry_after=600) == 30


@pytest.mark.parametrize(
    ("argv", "safe"),
    [
        (["wrangler", "deploy", "--env", "staging"], True),
        (["node_modules/.bin/wrangler", "versions", "deploy", "a@90%", "b@10%", "--yes"], True),
        (["wrangler", "d1", "migrations", "apply", "silo-db", "--remote"], True),
        (["wrangler", "secret", "put", "API_KEY", "--env", "staging"], True),
        (["wrangler", "rollback", "abc", "-m", "x", "-y"], True),
        (["wrangler", "rollback", "-m", "x", "-y"], False),
        (["wrangler", "d1", "execute", "db", "--remote", "--command", "delete from t"], False),
        (["wrangler", "kv", "namespace", "create", "x"], False),
    ],
)
def test_is_safe_to_repeat(argv, safe):
    assert is_safe_to_repeat(argv) is safe


def scripted(*attempts: Attempt):
    queue = list(attempts)
    return lambda: queue.pop(0)


def test_run_with_retries_logs_each_retry_and_succeeds():
    logs: list[str] = []
    sleeps: list[float] = []
    result = run_with_retries(
        scripted(api_failed(971), api_failed(10013), Attempt(0)),
        RetryPolicy(max_retries=4, base_delay=2),
        sleep=sleeps.append,
        log=logs.append,
    )
    assert result.ok and len(result.attempts) == 3
    assert sleeps == [2, 4]
    assert logs == [
        f"retry 1/4 after 2.0s: API error 971 (rate limited) from {API}",
        f"retry 2/4 after 4.0s: API error 10013 (server error) from {API}",
    ]


def test_run_with_retries_never_retries_auth_or_unsafe_commands():
    logs: list[str] = []
    result = run_with_retries(scripted(api_failed(10000)), sleep=lambda s: None, log=logs.append)
    assert not result.ok and len(result.attempts) == 1 and logs == []
    assert result.failure.kind == "auth"
    result = run_with_retries(
        scripted(api_failed(971)), safe_to_repeat=False, sleep=lambda s: None, log=logs.append
    )
    assert len(result.attempts) == 1
    assert logs == [
        f"not retrying (command is not safe to repeat): API error 971 (rate limited) from {API}"
    ]


def test_run_with_retries_is_bounded():
    result = run_with_retries(
        scripted(*[api_failed(10013)] * 5),
        RetryPolicy(max_retries=2),
        sleep=lambda s: None,
        log=lambda m: None,
    )
    assert len(result.attempts) == 3 and result.failure.code == 10013


def test_sanitized_debug_log_hides_retry_after():
    sanitized = (
        "-- START CF API REQUEST: PUT http://127.0.0.1:1/client/v4/accounts/a/workers/scripts/s\n"
        "-- START CF API RESPONSE: Too Many Requests 429\n"
        "HEADERS: omitted; set WRANGLER_LOG_SANITIZE=false to include sanitized data\n"
    )
    [call] = parse_debug_log(sanitized)
    assert (call.status, call.retry_after) == (429, None)


MIGRATION = "✘ [ERROR] Migration 0002_more.sql failed with the following errors:\n"


@pytest.mark.parametrize(
    ("line", "kind", "retryable"),
    [
        ("✘ [ERROR] An unknown error has occurred [code: 10013]", "server_error", True),
        ("✘ [ERROR] Please wait and consider throttling your request speed [code: 971]",
         "rate_limited", True),
        ("✘ [ERROR] other side closed", "network", True),
        ('✘ [ERROR] near "x": syntax error: SQLITE_ERROR [code: 7500]', "sql", False),
        ("✘ [ERROR] UNIQUE constraint failed: d1_migrations.name", "sql", False),
    ],
)
def test_migration_failures_are_transient_unless_sql(line, kind, retryable):
    message = line.removeprefix("✘ [ERROR] ")
    failure = classify(failed(None, message, stderr=MIGRATION + line + "\n"))
    assert (failure.kind, failure.retryable) == (kind, retryable)


def test_after_the_upload_a_deploy_is_not_repeated():
    attempt = failed(
        10013, "A request to the Cloudflare API (/accounts/a/workers/subdomain) failed.",
        stderr="x [code: 10013]", stdout="Uploaded silo (0.3 sec)\n",
    )
    failure = classify(attempt)
    assert failure.retryable and failure.after_upload
    logs: list[str] = []
    result = run_with_retries(lambda: attempt, sleep=lambda s: None, log=logs.append)
    assert len(result.attempts) == 1
    assert len(logs) == 1 and logs[0].startswith("not retrying (the upload went through")
    assert "/accounts/a/workers/subdomain" in logs[0]


def test_a_timed_out_attempt_is_not_retried():
    attempt = Attempt(-15, "", "", timed_out=True)
    assert not attempt.ok
    failure = classify(attempt)
    assert (failure.kind, failure.retryable) == ("timeout", False)
    result = run_with_retries(lambda: attempt, sleep=lambda s: None, log=lambda m: None)
    assert len(result.attempts) == 1
