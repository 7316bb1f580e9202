"""Injected faults as wrangler sees them (exit code, output file), and the tool's retries."""

from __future__ import annotations

import pytest
from emulator_helpers import OLDEST

from dome_tasks.wrangler.retry import RetryPolicy, classify, run_with_retries

pytestmark = pytest.mark.integration

VARS = '[vars]\nSERVICE_NAME = "silo"\n'
SERVICES = r"/workers/services/"
PUT_SCRIPT = r"/workers/scripts/[^/]+$"


@pytest.mark.parametrize(
    ("fault", "exit_code", "error_code", "kind"),
    [
        pytest.param({"path": SERVICES, "status": 502}, 1, None, "server_error", id="502-html"),
        pytest.param({"path": SERVICES, "status": 401}, 1, 10001, "auth", id="401"),
        pytest.param(
            {"path": SERVICES, "status": 200, "code": 10000},
            1,
            10000,
            "auth",
            id="success-false-10000",
        ),
        pytest.param({"path": SERVICES, "drop": True}, 1, None, "network", id="dropped"),
        pytest.param(
            # persistent: wrangler >= 4.1xx retries a 429 itself (Retry-After), then gives up
            {"method": "PUT", "path": PUT_SCRIPT, "status": 429, "retry_after": 1, "times": None},
            1,
            971,
            "rate_limited",
            id="429",
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


def test_wrangler_itself_retries_5xx_and_drops_on_the_upload_and_waits_out_slowness(
    make_wrangler, emulator
):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(path=SERVICES, delay=1.0)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, drop=True, times=1)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, status=500, times=1)

    run = wrangler("deploy")

    assert [r.status for r in emulator.requests_matching("PUT", PUT_SCRIPT)] == [0, 500, 200]
    assert run.output.deploy.version_id == emulator.state.worker("silo").current_version().id
    assert run.seconds >= 1.0 and emulator.requests_matching("GET", SERVICES)[0].fault


def test_tool_retries_a_429_honouring_retry_after_from_unsanitized_debug_logs(
    make_wrangler, emulator
):
    """The oldest supported wrangler (4.20) never retries a 429: dome does, after Retry-After."""
    wrangler = make_wrangler(VARS, binary=OLDEST)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, status=429, retry_after=7, times=1)
    env = wrangler.env(WRANGLER_LOG="debug", WRANGLER_LOG_SANITIZE="false")
    sleeps: list[float] = []
    logs: list[str] = []

    result = run_with_retries(
        lambda: wrangler("deploy", env=env, check=False).attempt,
        RetryPolicy(base_delay=0.25),
        sleep=sleeps.append,
        log=logs.append,
    )

    assert result.ok and len(result.attempts) == 2
    assert result.attempts[0].exit_code != 0  # wrangler 4.20 did not retry it itself
    assert logs == [
        (
            f"retry 1/3 after 7.0s: HTTP 429 from PUT "
            f"/accounts/{emulator.account_id}/workers/scripts/silo"
        )
    ]
    assert sleeps == [7.0]
    assert emulator.state.worker("silo").current_version()


def test_the_pinned_wrangler_retries_a_429_itself_so_dome_does_not(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(method="PUT", path=PUT_SCRIPT, status=429, retry_after=1, times=1)
    logs: list[str] = []

    result = run_with_retries(wrangler.attempt_fn("deploy"), RetryPolicy(base_delay=0.25),
                              sleep=lambda s: None, log=logs.append)

    assert result.ok and len(result.attempts) == 1 and logs == []  # one wrangler run
    assert [r.status for r in emulator.requests_matching("PUT", PUT_SCRIPT)] == [429, 200]


def test_tool_gives_up_on_a_500_forever_after_bounded_retries(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    emulator.faults.add(path=SERVICES, status=500, times=None)
    logs: list[str] = []

    result = run_with_retries(
        wrangler.attempt_fn("deploy"),
        RetryPolicy(max_retries=1),
        sleep=lambda s: None,
        log=logs.append,
    )

    assert not result.ok and result.final.exit_code == 1
    assert len(result.attempts) == 2
    assert [line.split(":")[0] for line in logs] == [
        "retry 1/1 after 1.0s",
        "giving up after 2 attempts",
    ]
    assert logs[0].endswith(
        f"API error 10013 (server error) from /accounts/{emulator.account_id}/workers/services/silo"
    )
    assert result.failure is not None and result.failure.code == 10013


def test_wrong_token_is_refused_and_never_retried(make_wrangler, emulator):
    wrangler = make_wrangler(VARS)
    env = wrangler.env(CLOUDFLARE_API_TOKEN="not-the-token")
    logs: list[str] = []

    result = run_with_retries(
        lambda: wrangler("deploy", env=env, check=False).attempt,
        sleep=lambda s: None,
        log=logs.append,
    )

    assert result.final.exit_code == 1 and len(result.attempts) == 1 and logs == []
    assert result.failure is not None and result.failure.kind == "auth"
    assert result.final.output.error_code == 10000
    assert "Authentication error" in result.final.stderr
    assert {r.status for r in emulator.requests} == {401}
    assert emulator.state.workers == {}
