"""Health URL resolution, the retrying GET (fake clock and a real 127.0.0.1 server), smoke commands."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dome_tasks.errors import UsageError
from dome_tasks.lifecycle.verify import (
    HealthTarget,
    HttpAnswer,
    VerifyError,
    VerifyPolicy,
    check_health,
    health_target,
    http_get,
    require_url,
    route_problem,
    url_problem,
    verify,
)
from dome_tasks.manifest.model import Route, WorkerConfig


def config(**kw) -> WorkerConfig:
    base = {"service": "silo", "environment": "staging", "name": "silo-staging", "service_dir": Path("/tmp"),
                "main": "src/index.js", "compatibility_date": "2025-01-01"}
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
    fetch, _calls = scripted(0, 503, 500, 200)
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
        def do_GET(self) -> None:
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
    ok = (sys.executable, "-c", ("import os,sys; sys.exit(0 if os.environ['DOME_HOST'] and "
          "os.environ['DOME_SERVICE']=='silo' else 3)"))
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


# --- URLs are checked up front; verification never crashes ----------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://api.example.com/health", "http://127.0.0.1:8788", "https://[::1]:8443/x?a=b",
     "https://bücher.example/health", "https://api.example.com/a%20b"],
)
def test_usable_urls_pass(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("https://api.example.com/my health", "contains a space at position 27"),
        ("https://exa mple.com/health", "contains a space"),
        ("https://api.example.com/\thealth", "contains a tab"),
        ("api.example.com/health", "must start with https://"),
        ("ftp://api.example.com/", "must start with https://"),
        ("https:///health", "has no host"),
        ("http://host:abc/", "not a valid URL"),
        ("http://[::1/x", "not a valid URL"),
        ("https://user:pw@api.example.com/", "must not carry credentials"),
        ("https://api_example!.com/", "is not a valid host name"),
        ("", "must be a URL"),
    ],
)
def test_unusable_urls_say_why(url: str, complaint: str) -> None:
    problem = url_problem(url)
    assert problem is not None and complaint in problem


@pytest.mark.parametrize(
    ("pattern", "custom", "complaint"),
    [
        ("api.example.com/*", False, None),
        ("*.example.com/v1/*", False, None),
        ("*example.com/*", False, None),
        ("https://api.example.com/*", False, None),
        ("api.example.com/my path/*", False, "contains a space"),
        ("/api/*", False, "has no host"),
        ("api.*.example.com/*", False, "a leading '*' is the only wildcard"),
        ("silo.example.com", True, None),
        ("silo.example.com/*", True, "must be a bare host name"),
        ("ftp://api.example.com/*", False, "only http:// or https://"),
    ],
)
def test_route_patterns(pattern: str, custom: bool, complaint: str | None) -> None:
    problem = route_problem(pattern, custom_domain=custom)
    assert (problem is None) if complaint is None else (problem is not None and complaint in problem)


def test_manifest_rejects_a_space_in_health_url_and_routes_with_file_and_line(problems) -> None:
    found = problems(
        """\
        silo:
          health_url: "https://silo.example.com/he alth"
          routes:
            - api.example.com/my path/*
            - {pattern: "ok.example.com /*", zone_name: example.com}
        """
    )
    assert found[0].startswith("dome.yaml:11: services.silo.health_url: ")
    assert "contains a space" in found[0] and "%20" in found[0]
    assert found[1].startswith("dome.yaml:13: services.silo.routes[0]: route ")
    assert found[2].startswith("dome.yaml:14: services.silo.routes[1].pattern: route ")
    assert len(found) == 3


def test_base_url_is_checked_at_the_task_boundary() -> None:
    assert require_url("http://127.0.0.1:8788") == "http://127.0.0.1:8788"
    with pytest.raises(UsageError) as caught:
        require_url("http://127.0.0.1:87 88")
    assert str(caught.value).startswith("--base-url: 'http://127.0.0.1:87 88' contains a space")
    assert "hint: e.g. http://127.0.0.1:8788" in str(caught.value)


def test_http_get_never_raises_on_a_malformed_url() -> None:
    for url in ("http://127.0.0.1:9/he alth", "http://host:abc/", "http://[::1/x"):
        answer = http_get(url, timeout=0.5)
        assert answer.status == 0 and answer.detail


def test_a_space_in_the_base_url_is_unhealthy_not_a_crash() -> None:
    fetch, calls = scripted(200)
    result = verify(config(), subdomain="acme", base_url="http://127.0.0.1:1/with space",
                    fetch=fetch)
    assert not result.ok and calls == []  # nothing was sent
    assert "cannot GET" in result.summary() and "contains a space" in result.summary()


def test_a_space_in_a_route_reaching_verification_is_unhealthy() -> None:
    result = verify(config(routes=(Route("api.example.com/my path/*"),)), fetch=scripted(200)[0])
    assert not result.ok and "contains a space" in result.summary()


def test_any_exception_inside_verification_is_an_unhealthy_result(tmp_path: Path) -> None:
    def exploding(url, *, timeout, host=None):
        raise RuntimeError("the HTTP client blew up")

    result = verify(config(), subdomain="acme", fetch=exploding)
    assert not result.ok and result.target is not None
    assert result.checks[-1].detail == "verification failed: RuntimeError: the HTTP client blew up"

    def ok(url, *, timeout, host=None):
        return HttpAnswer(200, "OK")

    # a smoke command whose argv cannot even be run (embedded NUL) fails the smoke step only
    result = verify(config(smoke=(("echo", "a\0b"),), service_dir=tmp_path), subdomain="acme",
                    fetch=ok)
    assert [c.ok for c in result.checks] == [True, False]
    assert result.checks[1].name == "smoke" and "ValueError" in result.checks[1].detail
