"""Cloudflare credentials, found where wrangler finds them, in wrangler's order.

1. ``CLOUDFLARE_API_TOKEN`` (or the older ``CF_API_TOKEN``): CI, and laptops that set one.
2. ``CLOUDFLARE_API_KEY`` with ``CLOUDFLARE_EMAIL``: a global API key.
3. The OAuth token that ``wrangler login`` stored in wrangler's config folder: most laptops.
   The folder is wrangler's own choice: ``~/.wrangler`` when that folder exists, else
   ``$XDG_CONFIG_HOME/.wrangler`` or the platform default (``~/.config/.wrangler`` on Linux,
   ``~/Library/Preferences/.wrangler`` on macOS); the file is ``config/default.toml``
   (``config/<name>.toml`` under ``WRANGLER_API_ENVIRONMENT=<name>``).

A login token lives about an hour. An expired one is renewed by wrangler itself
(``wrangler auth token --json`` refreshes it and writes it back), once per process: dome-tasks
never writes wrangler's file. Without a wrangler to ask, an expired login counts as none.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from dome_tasks._time import parse_time

__all__ = [
    "LOGIN",
    "Credentials",
    "find_credentials",
    "login_file",
    "read_login",
    "stored_login",
    "wrangler_near",
]

LOGIN = "wrangler login"
REFRESH_TIMEOUT_S = 30.0
_SLACK_S = 60  # a token this close to expiry is treated as expired: a deploy outlives it
_refreshed: dict[tuple[str, str], str | None] = {}  # (file, expired token) -> renewed token
_refresh_lock = threading.Lock()


@dataclass(frozen=True)
class Credentials:
    """What to send to the API. ``source`` names where it came from, for messages; ``renew``
    (an expired login) asks wrangler for the token on first use."""

    value: str = field(repr=False)
    source: str
    email: str | None = field(default=None, repr=False)  # with a global API key as the value
    renew: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)

    @property
    def token(self) -> str | None:
        """The token or key to send (None: an expired login that wrangler could not renew)."""
        return self.renew() if self.renew is not None else self.value

    def headers(self) -> dict[str, str] | None:
        token = self.token
        if not token:
            return None
        if self.email:
            return {"X-Auth-Key": token, "X-Auth-Email": self.email}
        return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class StoredLogin:
    """The OAuth token of ``wrangler login`` as its file holds it."""

    path: Path
    token: str = field(repr=False)
    expires: datetime | None  # None: the file gives no time, so wrangler treats it as expired
    refreshable: bool

    def fresh(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(timezone.utc)
        return self.expires is not None and (self.expires - now).total_seconds() > _SLACK_S


def find_credentials(
    environ: Mapping[str, str], *, wrangler: str | None = None
) -> Credentials | None:
    """The credentials wrangler would use under ``environ`` (None: there are none).

    ``wrangler``: the executable that renews an expired login, run on the token's first use
    (never otherwise)."""
    token = environ.get("CLOUDFLARE_API_TOKEN") or environ.get("CF_API_TOKEN")
    if token:
        return Credentials(token, "CLOUDFLARE_API_TOKEN")
    key, email = environ.get("CLOUDFLARE_API_KEY"), environ.get("CLOUDFLARE_EMAIL")
    if key and email:
        return Credentials(key, "CLOUDFLARE_API_KEY", email)
    login = stored_login(environ)
    if login is None:
        return None
    if login.fresh():
        return Credentials(login.token, LOGIN)
    if wrangler is None or not login.refreshable:
        return None
    return Credentials("", LOGIN, renew=functools.partial(_renew, login, wrangler, dict(environ)))


def wrangler_near(root: Path) -> str | None:
    """The wrangler that would renew an expired login for the project at ``root`` (if any)."""
    from dome_tasks.errors import DomeError
    from dome_tasks.tools import find_wrangler

    try:
        return find_wrangler(root)
    except DomeError:
        return None


def stored_login(environ: Mapping[str, str]) -> StoredLogin | None:
    """The login ``wrangler login`` left under ``environ``'s home and settings, if any."""
    return read_login(login_file(environ))


def read_login(path: Path) -> StoredLogin | None:
    """The login a wrangler login file holds (None: no file, or no token in it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    token = data.get("oauth_token")
    if not isinstance(token, str) or not token:
        return None
    refresh = data.get("refresh_token")
    return StoredLogin(path, token, _expiry(data.get("expiration_time")),
                       isinstance(refresh, str) and bool(refresh))


def login_file(environ: Mapping[str, str], *, platform: str | None = None) -> Path:
    """Where wrangler keeps its login under ``environ`` (the file may not exist)."""
    platform = platform or sys.platform
    home = Path(environ.get("HOME") or Path.home())
    legacy = home / ".wrangler"
    if legacy.is_dir():
        folder = legacy
    else:
        config_home = environ.get("XDG_CONFIG_HOME")
        if not config_home:
            if platform == "darwin":
                config_home = str(home / "Library" / "Preferences")
            elif platform.startswith("win"):
                app_data = environ.get("APPDATA") or str(home / "AppData" / "Roaming")
                config_home = str(Path(app_data) / "xdg.config")
            else:
                config_home = str(home / ".config")
        folder = Path(config_home) / ".wrangler"
    api_environment = environ.get("WRANGLER_API_ENVIRONMENT") or "production"
    name = "default.toml" if api_environment == "production" else f"{api_environment}.toml"
    return folder / "config" / name


def _renew(login: StoredLogin, wrangler: str, environ: Mapping[str, str]) -> str | None:
    """Ask wrangler for a current token (it refreshes and stores it); once per expired token."""
    key = (str(login.path), login.token)
    with _refresh_lock:
        if key not in _refreshed:
            _refreshed[key] = _ask_wrangler(wrangler, environ)
        return _refreshed[key]


def _ask_wrangler(wrangler: str, environ: Mapping[str, str]) -> str | None:
    # `auth token --json` prints no banner, so wrangler makes no update check here.
    from dome_tasks.tools import with_node

    env = with_node({k: v for k, v in environ.items()
                     if k not in ("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN")})
    env.update(WRANGLER_SEND_METRICS="false", WRANGLER_SEND_ERROR_REPORTS="false", CI="1",
               NO_COLOR="1", WRANGLER_WRITE_LOGS="false")
    try:
        done = subprocess.run(
            [wrangler, "auth", "token", "--json"], env=env, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=REFRESH_TIMEOUT_S, check=False,
            cwd=os.path.dirname(wrangler) or None,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        answer = json.loads(done.stdout[done.stdout.find("{"):])
    except ValueError:
        return None
    token = answer.get("token") if isinstance(answer, dict) else None
    return token if answer.get("type") == "oauth" and isinstance(token, str) and token else None


def _expiry(value: object) -> datetime | None:
    if isinstance(value, datetime):  # TOML datetimes arrive parsed
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None
