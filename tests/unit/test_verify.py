"""Health URL resolution, the retrying GET (fake clock and a real 127.0.0.1 server), smoke commands."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dome_tasks.model import Route, WorkerConfig
from dome_tasks.verify import (
    HealthTarget,
    HttpAnswer,
    VerifyError,
    VerifyPolicy,
    check_health,
    health_target,
    http_get,
    verify,
)


def config(**kw) -> WorkerConfig:
    base = dict(service="silo", environment="staging", name="silo-staging", service_dir=Path("/tmp"),
                main="src/index.js", compatibility_date="2025-01-01")
    base.update(kw)
    return WorkerConfig(**base)


def test_explicit_health_url_wins() -> None:
    target = health_target(config(health_url="https://status.example.com/ok",
                                  routes=(Route("api.example.com/*"),)), subdomain="acme")
    assert (target.url, target.source) == ("https://status.example.com/ok", "health_url")


def test_first_usable_route_host() -> None:
    routes = (Route("*.example.com/*"), Route("api.example.com/v1/*"), Route("other.example.com/*"))
    target = health_target(config(routes=routes), subdomain="acme")
    assert (target.url, target.source) == ("https://api.example.com/v1/health", "route")
    custom = health_target(config(routes=(Route("silo.example.com", custom_domain=True),)))
    assert custom.url == "https://silo.example.com/health"


def test_workers_dev_subdomain() -> None:
    target = health_target(config(health_path="status"), subdomain="acme")
    assert (target.url, target.source) == ("https://silo-staging.acme.workers.dev/status", "workers.dev")


def test_no_url_is_a_clear_error() -> None:
    with pytest.raises(VerifyError, match="no health URL") as info:
        health_target(config())
    assert "--subdomain" in str(info.value)


def test_base_url_override_keeps_the_host() -> None:
    target = health_target(config(), subdomain="acme", base_url="http://127.0.0.1:9999/")
    assert target.url == "http://127.0.0.1:9999/health"
    assert target.host == "silo-staging.acme.workers.dev" and target.source == "override"
    assert target.public_url == "https://silo-staging.acme.workers.dev/health"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def scripted(*statuses: int):
    calls = []

    def fetch(url, *, timeout, host=None):
        calls.append((url, timeout, host))
        return HttpAnswer(statuses[min(len(calls) - 1, len(statuses) - 1)], "x")

    return fetch, calls


TARGET = HealthTarget("http://h/health", "route")


def test_retries_with_exponential_backoff_until_200() -> None:
    clock = Clock()
    fetch, calls = scripted(0, 503, 500, 200)
    result = check_health(TARGET, VerifyPolicy(deadline_s=60, initial_delay_s=0.5), fetch=fetch,
                          sleep=clock.sleep, clock=clock)
    assert result.ok and result.attempts == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_gives_up_at_the_deadline() -> None:
    clock = Clock()
    fetch, calls = scripted(500)
    policy = VerifyPolicy(deadline_s=10, initial_delay_s=1, factor=2, max_delay_s=4)
    result = check_health(TARGET, policy, fetch=fetch, sleep=clock.sleep, clock=clock)
    assert not result.ok
    assert clock.sleeps == [1, 2, 4]  # the next wait (4) would pass the 10 s deadline
    assert result.attempts == 4 and "500" in result.detail and "4 attempt(s)" in result.detail
    assert all(timeout <= 5 for _, timeout, _ in calls)


def test_max_attempts_caps_tries() -> None:
    clock = Clock()
    fetch, calls = scripted(404)
    result = check_health(TARGET, VerifyPolicy(max_attempts=2), fetch=fetch, sleep=clock.sleep, clock=clock)
    assert not result.ok and len(calls) == 2


@pytest.fixture
def server() -> Iterator[tuple[str, dict]]:
    """A real HTTP server on 127.0.0.1 whose answers the test scripts by Host header."""
    answers: dict[str, list[int]] = {}
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            host = self.headers.get("Host", "")
            seen.append(f"{host}{self.path}")
            queue = answers.get(host, [404])
            status = queue.pop(0) if len(queue) > 1 else queue[0]
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", {"answers": answers, "seen": seen}
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_real_http_with_host_override(server) -> None:
    base, box = server
    box["answers"]["silo-staging.acme.workers.dev"] = [503, 200]
    fast = VerifyPolicy(deadline_s=5, initial_delay_s=0.01)
    result = verify(config(), subdomain="acme", base_url=base, policy=fast)
    assert result.ok and result.checks[0].attempts == 2
    assert box["seen"][-1] == "silo-staging.acme.workers.dev/health"


def test_real_http_red_and_unreachable(server) -> None:
    base, box = server
    box["answers"]["silo-staging.acme.workers.dev"] = [500]
    quick = VerifyPolicy(deadline_s=0.3, initial_delay_s=0.05)
    assert not verify(config(), subdomain="acme", base_url=base, policy=quick).ok
    assert http_get("http://127.0.0.1:9/health", timeout=1).status == 0


def test_redirect_is_not_success(server) -> None:
    base, box = server
    box["answers"]["r.example"] = [302]
    assert http_get(base + "/health", timeout=2, host="r.example").status == 302


def test_smoke_commands_run_after_a_green_health_check(server, tmp_path: Path) -> None:
    base, box = server
    box["answers"]["silo-staging.acme.workers.dev"] = [200]
    ok = (sys.executable, "-c", "import os,sys; sys.exit(0 if os.environ['DOME_HOST'] and "
          "os.environ['DOME_SERVICE']=='silo' else 3)")
    bad = (sys.executable, "-c", "import sys; print('smoke broke'); sys.exit(4)")
    never = (sys.executable, "-c", "raise SystemExit(9)")
    result = verify(config(smoke=(ok, bad, never), service_dir=tmp_path), subdomain="acme", base_url=base,
                    policy=VerifyPolicy(deadline_s=2))
    assert not result.ok
    assert [c.ok for c in result.checks] == [True, True, False]  # stops at the first failure
    assert "exit 4" in result.checks[2].detail and "smoke broke" in result.checks[2].detail
    missing = verify(config(smoke=(("no-such-binary-xyz",),), service_dir=tmp_path), subdomain="acme",
                     base_url=base, policy=VerifyPolicy(deadline_s=2))
    assert "command not found" in missing.checks[1].detail
