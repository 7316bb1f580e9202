"""Post-deploy verification (deployment guide 5.4): a health check and optional smoke commands.

The health URL of a service in an environment is, in order: the manifest's explicit
``health_url``; else the host of the first route (a pattern without a wildcard host, or a
custom domain) plus ``health_path``; else ``https://<worker>.<subdomain>.workers.dev`` plus
``health_path``, where the account's workers.dev subdomain is given by the caller. A *base URL
override* (tests against the emulator, a local stack, a proxy) sends the request to another
origin while keeping the real host in the ``Host`` header, like ``curl --resolve``.

The check is a GET that must answer 200. It is retried with exponential backoff until an
overall deadline; sleep, clock and the HTTP call are injectable so unit tests run instantly.

Verification never raises once it has a target: a malformed URL, a crash in the HTTP client or
in a smoke command counts as *unhealthy* with its reason, so the automatic rollback of a
protected environment always runs and a record is always written. URLs are checked earlier
too: :func:`url_problem` and :func:`route_problem` when the manifest is loaded,
:func:`require_url` for ``--base-url`` at the task boundary.
"""

from __future__ import annotations

import http.client
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from dome_tasks.errors import DomeError, Interrupted, UsageError
from dome_tasks.manifest.urls import route_problem, url_problem  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    from dome_tasks.manifest.model import WorkerConfig

__all__ = [
    "CheckResult",
    "HealthTarget",
    "HttpAnswer",
    "VerifyError",
    "VerifyPolicy",
    "VerifyResult",
    "check_health",
    "health_target",
    "http_get",
    "require_url",
    "route_problem",
    "run_smoke",
    "url_problem",
    "verify",
]


class VerifyError(DomeError):
    """Verification could not even start (no URL to check), or it failed."""

    exit_code = 1


# --- URL checks (the manifest loader and the task boundary call these) ------------------------

def require_url(value: str, *, what: str = "--base-url") -> str:
    """``value`` when it is a usable URL, else a :class:`UsageError` naming ``what``."""
    problem = url_problem(value)
    if problem:
        raise UsageError(f"{what}: {problem}", hint="e.g. http://127.0.0.1:8788 or https://proxy.example.com")
    return value


@dataclass(frozen=True)
class HealthTarget:
    """Where to GET: ``url`` to connect to, ``host`` to send (when overridden), and why."""

    url: str
    source: str  # health_url | route | workers.dev | override
    host: str | None = None  # Host header when the URL was re-pointed by a base-URL override
    public_url: str | None = None  # the URL users reach (same as url without an override)


def health_target(
    config: WorkerConfig,
    *,
    subdomain: str | None = None,
    base_url: str | None = None,
) -> HealthTarget:
    """The health URL of ``config`` (one service in one environment); see the module docstring."""
    path = config.health_path or "/"
    if not path.startswith("/"):
        path = "/" + path
    if config.health_url:
        public, source = config.health_url, "health_url"
    else:
        origin = _route_origin(config)
        if origin:
            public, source = origin + path, "route"
        elif subdomain:
            public, source = f"https://{config.name}.{subdomain}.workers.dev{path}", "workers.dev"
        else:
            raise VerifyError(
                f"no health URL for {config.name}: no health_url, no route, no workers.dev subdomain",
                hint="set health_url for the service in dome.yaml, or pass --subdomain "
                "(your account's <name>.workers.dev)",
            )
    if not base_url:
        return HealthTarget(public, source, None, public)
    parts = urlsplit(public)
    target = base_url.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return HealthTarget(target, "override", parts.netloc, public)


def _route_origin(config: WorkerConfig) -> str | None:
    """``https://host[/prefix]`` from the first usable route, None if none is usable."""
    for route in config.routes:
        link = route_link(route.pattern)
        if link:
            return link
    return None


def route_link(pattern: str) -> str | None:
    """``https://host[/prefix]`` for a route pattern or custom domain (None: a wildcard host)."""
    pattern = pattern.strip()
    if "://" in pattern:
        pattern = pattern.split("://", 1)[1]
    host, _, rest = pattern.partition("/")
    if not host or "*" in host:
        return None
    prefix = rest.split("*", 1)[0].rstrip("/")
    return f"https://{host}" + (f"/{prefix}" if prefix else "")


def serves_workers_dev(config: WorkerConfig) -> bool:
    """Does wrangler put the worker on workers.dev? (``workers_dev``, by default: no routes.)"""
    return config.workers_dev if config.workers_dev is not None else not config.routes


def worker_urls(config: WorkerConfig, subdomain: str | None) -> list[str]:
    """Where the worker serves, from its config: each custom domain (``https://domain``) and
    route pattern as written, then its workers.dev URL (when on, and the subdomain is known)."""
    urls = [f"https://{r.pattern.strip()}" if r.custom_domain else r.pattern.strip()
            for r in config.routes]
    if serves_workers_dev(config) and subdomain:
        urls.append(f"https://{config.name}.{subdomain}.workers.dev")
    return urls


@dataclass(frozen=True)
class VerifyPolicy:
    """How hard to try: until ``deadline_s`` overall, each GET bounded by ``request_timeout_s``.

    Waits between attempts grow ``initial_delay_s * factor**n`` up to ``max_delay_s``, and never
    past the deadline. ``max_attempts`` caps the attempts (0: no cap besides the deadline).
    """

    deadline_s: float = 30.0
    request_timeout_s: float = 5.0
    initial_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 8.0
    max_attempts: int = 0
    smoke_timeout_s: float = 120.0

    def delays(self) -> Callable[[int], float]:
        return lambda n: min(self.max_delay_s, self.initial_delay_s * self.factor**n)


@dataclass(frozen=True)
class HttpAnswer:
    status: int  # 0: no answer (connection refused, timeout, DNS)
    detail: str = ""


def http_get(url: str, *, timeout: float, host: str | None = None) -> HttpAnswer:
    """One GET without redirects; never raises for HTTP, network or URL errors."""
    try:
        request = urllib.request.Request(url, method="GET", headers={"User-Agent": "dome-tasks-verify"})
        if host:
            request.add_header("Host", host)
        opener = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=timeout) as response:
            return HttpAnswer(response.status, response.reason or "")
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, str(error.reason))
    except urllib.error.URLError as error:
        return HttpAnswer(0, str(error.reason))
    except (OSError, ValueError, http.client.HTTPException) as error:
        return HttpAnswer(0, _describe(error))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a redirect is an answer (3xx), not success


@dataclass(frozen=True)
class CheckResult:
    name: str  # "health" or the smoke command line
    ok: bool
    detail: str
    attempts: int = 1
    duration_ms: int = 0


@dataclass(frozen=True)
class VerifyResult:
    target: HealthTarget | None
    checks: tuple[CheckResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def summary(self) -> str:
        return "; ".join(f"{c.name}: {'ok' if c.ok else 'FAILED'} ({c.detail})" for c in self.checks)


def check_health(
    target: HealthTarget,
    policy: VerifyPolicy = VerifyPolicy(),
    *,
    fetch: Callable[..., HttpAnswer] = http_get,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """GET until 200 or the deadline; the result says how many attempts and the last answer."""
    started = clock()
    deadline = started + policy.deadline_s
    delay = policy.delays()
    attempt = 0
    answer = HttpAnswer(0, "not tried")
    while True:
        remaining = deadline - clock()
        timeout = max(0.1, min(policy.request_timeout_s, remaining))
        answer = fetch(target.url, timeout=timeout, host=target.host)
        attempt += 1
        if answer.status == 200:
            return CheckResult("health", True, f"GET {_shown(target)} -> 200", attempt,
                               _ms(clock() - started))
        wait = delay(attempt - 1)
        out_of_attempts = policy.max_attempts and attempt >= policy.max_attempts
        if out_of_attempts or clock() + wait >= deadline:
            break
        sleep(wait)
    got = f"{answer.status} {answer.detail}".strip() if answer.status else f"no answer ({answer.detail})"
    return CheckResult(
        "health",
        False,
        f"GET {_shown(target)} -> {got} after {attempt} attempt(s) in {clock() - started:.1f}s",
        attempt,
        _ms(clock() - started),
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _shown(target: HealthTarget) -> str:
    if target.host:
        return f"{target.url} (Host: {target.host})"
    return target.url


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def run_smoke(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> CheckResult:
    """Run one smoke command (argv, no shell); exit 0 passes. Output is kept short."""
    import shlex

    from dome_tasks import process
    from dome_tasks.errors import CommandFailed

    started = clock()
    name = shlex.join(argv)
    try:  # its own process group, stopped with dome on Ctrl-C/SIGTERM (a wave's thread too)
        done = process.run(list(argv), cwd=cwd, env=env, timeout=timeout)
    except CommandFailed:
        return CheckResult(name, False, f"command not found: {argv[0]}", 1, _ms(clock() - started))
    if done.timed_out:
        return CheckResult(name, False, f"timed out after {timeout:g}s", 1, _ms(clock() - started))
    tail = (done.stderr or done.stdout or "").strip().splitlines()[-3:]
    detail = f"exit {done.returncode}" + (": " + " | ".join(tail) if tail and done.returncode else "")
    return CheckResult(name, done.returncode == 0, detail, 1, _ms(clock() - started))


def verify(
    config: WorkerConfig,
    *,
    subdomain: str | None = None,
    base_url: str | None = None,
    policy: VerifyPolicy = VerifyPolicy(),
    smoke: bool = True,
    environ: Mapping[str, str] | None = None,
    fetch: Callable[..., HttpAnswer] = http_get,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> VerifyResult:
    """The health check, then (only if it passed) each smoke command of the service.

    Smoke commands run in the service folder with ``DOME_HEALTH_URL``, ``DOME_BASE_URL``,
    ``DOME_SERVICE``, ``DOME_ENVIRONMENT`` and ``DOME_WORKER`` set.

    Raises :class:`VerifyError` only when there is no URL to check at all; anything that goes
    wrong after that (a malformed URL, an exception anywhere) is an unhealthy result.
    """
    target = health_target(config, subdomain=subdomain, base_url=base_url)
    checks: list[CheckResult] = []
    try:
        _verify_checks(config, target, checks, policy=policy, smoke=smoke, environ=environ,
                       fetch=fetch, sleep=sleep, clock=clock)
    except Interrupted:  # Ctrl-C/SIGTERM passed on to a wave's thread: not a result at all
        raise
    except Exception as error:  # noqa: BLE001 - a crash is an unhealthy result, never a traceback
        name = "smoke" if checks and checks[0].ok else "health"
        checks.append(CheckResult(name, False, f"verification failed: {_describe(error)}"))
    return VerifyResult(target, tuple(checks))


def _describe(error: BaseException) -> str:
    """``BadStatusLine: garbage``: the exception's class and the first line of its text."""
    text = str(error).strip().splitlines()[0].strip("'\" ") if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _verify_checks(
    config: WorkerConfig,
    target: HealthTarget,
    checks: list[CheckResult],
    *,
    policy: VerifyPolicy,
    smoke: bool,
    environ: Mapping[str, str] | None,
    fetch: Callable[..., HttpAnswer],
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Append the health check, then the smoke commands, to ``checks`` (may raise midway)."""
    problem = url_problem(target.url) or url_problem(target.public_url or target.url)
    if problem:
        checks.append(CheckResult("health", False, f"cannot GET: {problem}"))
        return
    checks.append(check_health(target, policy, fetch=fetch, sleep=sleep, clock=clock))
    if smoke and checks[0].ok and config.smoke:
        base = dict(os.environ if environ is None else environ)
        base.update(
            {
                "DOME_HEALTH_URL": target.url,
                "DOME_BASE_URL": _origin(target.url),
                "DOME_SERVICE": config.service,
                "DOME_ENVIRONMENT": config.environment,
                "DOME_WORKER": config.name,
            }
        )
        if target.host:
            base["DOME_HOST"] = target.host
        for argv in config.smoke:
            result = run_smoke(argv, cwd=config.service_dir, env=base,
                               timeout=policy.smoke_timeout_s, clock=clock)
            checks.append(result)
            if not result.ok:
                break
