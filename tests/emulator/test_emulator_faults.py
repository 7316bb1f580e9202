"""Injected faults as wrangler sees them (exit code, output file), and the tool's retries."""

from __future__ import annotations

import pytest

from dome_tasks.retry import RetryPolicy, classify, run_with_retries

pytestmark = pytest.mark.integration

VARS = '[vars]\nSERVICE_NAME = "silo"\n'
SERVICES = r"/workers/services/"
PUT_SCRIPT = r"/workers/scripts/[^/]+$"


@pytest.mark.parametrize(
    ("fault", "exit_code", "error_code", "kind"),
    [
        pytest.param(dict(path=SERVICES, status=502), 1, None, "server_error", id="502-html"),
        pytest.param(dict(path=SERVICES, status=401), 1, 10001, "auth", id="401"),
        pytest.param(dict(path=SERVICES, status=200, code=10000), 1, 10000, "auth", id="success-false-10000"),
        pytest.param(dict(path=SERVICES, drop=True), 1, None, "network", id="dropped"),
        pytest.param(
            dict(method="PUT", path=PUT_SCRIPT, status=429, retry_after=1), 1, 971, "rate_limited", id="429"
        ),
    ],
)
def test_fault_fails_the_deploy_and_is_classified(
    make_wrangler, emulator, fault, exit_code, error_code, kind
):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(**fault)

    run = wrangler("deploy", check=False)

    assert run.returncode == exit_code
    assert run.output.error_code == error_code
    failure = classify(run.attempt)
    assert failure is not None and failure.kind == kind
    assert failure.retryable == (kind in ("server_error", "network", "rate_limited"))
    if fault.get("code") == 10000:  # wrangler then runs whoami to help the user
        assert emulator.requests_matching("GET", r"^/user/tokens/verify$")
    if fault.get("status") == 502:
        assert "malformed response" in run.stderr and failure.status == 502


def test_wrangler_itself_retries_a_500_and_dropped_connections_on_the_upload(
    make_wrangler, emulator
):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, drop=True, times=1)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, status=500, times=1)

    run = wrangler("deploy")

    assert [r.status for r in emulator.requests_matching("PUT", PUT_SCRIPT)] == [0, 500, 200]
    assert run.output.deploy.version_id == emulator.state.worker("silo").current_version().id


def test_slow_responses_still_succeed(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(path=SERVICES, delay=1.0)

    run = wrangler("deploy")

    assert run.seconds >= 1.0
    assert emulator.requests_matching("GET", SERVICES)[0].fault


def test_tool_retries_a_429_on_the_upload_and_logs_it(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, status=429, retry_after=1, times=1)
    env = wrangler.env(WRANGLER_LOG="debug")  # request lines and statuses, no bodies
    sleeps: list[float] = []
    logs: list[str] = []

    result = run_with_retries(
        lambda: wrangler("deploy", env=env, check=False).attempt,
        RetryPolicy(base_delay=0.25),
        sleep=sleeps.append,
        log=logs.append,
    )

    assert result.ok and len(result.attempts) == 2
    assert logs == [
        f"retry 1/3 after 0.2s: HTTP 429 (API error 971) from PUT "
        f"/accounts/{emulator.account_id}/workers/scripts/silo"
    ]
    assert sleeps == [0.25]  # Retry-After is not visible with sanitized logs: backoff
    assert emulator.state.worker("silo").current_version()


def test_retry_after_is_learned_only_from_unsanitized_debug_logs(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, status=429, retry_after=7, times=None)
    env = wrangler.env(WRANGLER_LOG="debug", WRANGLER_LOG_SANITIZE="false")

    run = wrangler("deploy", env=env, check=False)

    failure = classify(run.attempt)
    assert failure is not None
    assert (failure.status, failure.retry_after, failure.method) == (429, 7.0, "PUT")
    assert RetryPolicy().delay(1, failure.retry_after) == 7.0


def test_tool_gives_up_on_a_500_forever_after_bounded_retries(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(path=SERVICES, status=500, times=None)
    logs: list[str] = []

    result = run_with_retries(
        wrangler.attempt_fn("deploy"), RetryPolicy(max_retries=1), sleep=lambda s: None, log=logs.append
    )

    assert not result.ok and result.final.exit_code == 1
    assert len(result.attempts) == 2
    assert [line.split(":")[0] for line in logs] == [
        "retry 1/1 after 1.0s",
        "giving up after 2 attempts",
    ]
    assert logs[0].endswith(f"API error 10013 (server error) from /accounts/{emulator.account_id}"
                            "/workers/services/silo")
    assert result.failure is not None and result.failure.code == 10013


def test_wrong_token_is_refused_and_never_retried(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    env = wrangler.env(CLOUDFLARE_API_TOKEN="not-the-token")
    logs: list[str] = []

    result = run_with_retries(
        lambda: wrangler("deploy", env=env, check=False).attempt, sleep=lambda s: None, log=logs.append
    )

    assert result.final.exit_code == 1 and len(result.attempts) == 1 and logs == []
    assert result.failure is not None and result.failure.kind == "auth"
    assert result.final.output.error_code == 10000
    assert "Authentication error" in result.final.stderr
    assert {r.status for r in emulator.requests} == {401}
    assert emulator.state.workers == {}
