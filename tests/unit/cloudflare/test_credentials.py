"""Credentials as wrangler finds them: tokens, keys, and the login `wrangler login` stored."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi
from dome_tasks.cloudflare.credentials import LOGIN, find_credentials, login_file
from dome_tasks.events import Redactor
from dome_tasks.testing.emulator import Emulator
from tests.helpers import ROOT

WRANGLER = str(ROOT / "node_modules" / ".bin" / "wrangler")
FRESH = "2999-01-01T00:00:00.000Z"
EXPIRED = "2020-01-01T00:00:00.000Z"


def home_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), **extra}


def write_login(environ: dict[str, str], token: str, expires: str | None,
                refresh: str = "emulator-refresh-token") -> Path:
    path = login_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f'oauth_token = "{token}"', f'refresh_token = "{refresh}"', 'scopes = ["account:read"]']
    if expires:
        lines.append(f'expiration_time = "{expires}"')
    path.write_text("\n".join(lines) + "\n")
    return path


def test_wrangler_s_order_token_then_key_then_login(tmp_path) -> None:
    env = home_env(tmp_path)
    write_login(env, "login-token-123", FRESH)
    assert find_credentials(env).source == LOGIN
    assert find_credentials(env).headers() == {"Authorization": "Bearer login-token-123"}
    keyed = find_credentials({**env, "CLOUDFLARE_API_KEY": "k" * 37, "CLOUDFLARE_EMAIL": "a@b.c"})
    assert keyed.headers() == {"X-Auth-Key": "k" * 37, "X-Auth-Email": "a@b.c"}
    token = find_credentials({**env, "CLOUDFLARE_API_KEY": "k" * 37, "CLOUDFLARE_EMAIL": "a@b.c",
                              "CLOUDFLARE_API_TOKEN": "tok-456789"})
    assert (token.source, token.token) == ("CLOUDFLARE_API_TOKEN", "tok-456789")
    assert find_credentials(home_env(tmp_path / "nobody")) is None


@pytest.mark.parametrize(("platform", "extra", "expected"), [
    ("linux", {}, "home/.config/.wrangler/config/default.toml"),
    ("darwin", {}, "home/Library/Preferences/.wrangler/config/default.toml"),
    ("linux", {"XDG_CONFIG_HOME": "xdg"}, "xdg/.wrangler/config/default.toml"),
    ("darwin", {"XDG_CONFIG_HOME": "xdg"}, "xdg/.wrangler/config/default.toml"),
    ("linux", {"WRANGLER_API_ENVIRONMENT": "staging"}, "home/.config/.wrangler/config/staging.toml"),
])
def test_the_login_file_is_where_wrangler_keeps_it(tmp_path, platform, extra, expected) -> None:
    env = home_env(tmp_path, **{k: str(tmp_path / v) if k == "XDG_CONFIG_HOME" else v
                                for k, v in extra.items()})
    assert login_file(env, platform=platform) == tmp_path / expected


def test_a_legacy_home_wrangler_folder_wins_as_in_wrangler(tmp_path) -> None:
    env = home_env(tmp_path, XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    (tmp_path / "home" / ".wrangler").mkdir(parents=True)
    assert login_file(env, platform="darwin") == tmp_path / "home/.wrangler/config/default.toml"


def test_a_fresh_login_runs_no_wrangler(tmp_path) -> None:
    env = home_env(tmp_path)
    write_login(env, "login-token-123", FRESH)
    credentials = find_credentials(env, wrangler=str(tmp_path / "no-such-wrangler"))
    assert credentials.token == "login-token-123"


def test_an_expired_login_without_a_wrangler_counts_as_none(tmp_path) -> None:
    env = home_env(tmp_path)
    write_login(env, "old-token-123", EXPIRED)
    assert find_credentials(env) is None
    write_login(env, "old-token-123", None)  # no time at all: wrangler treats it as expired
    assert find_credentials(env) is None


def test_an_expired_login_is_renewed_by_wrangler_once(tmp_path) -> None:
    with Emulator() as emulator:
        env = {**emulator.login_env(), **home_env(tmp_path)}
        path = write_login(env, "old-token-123", EXPIRED)
        api = CloudflareApi.from_environ(env, wrangler=WRANGLER)
        assert api is not None and api.credentials.source == LOGIN
        assert emulator.requests_matching(path="oauth2") == []  # nothing run until it is used
        threads = [threading.Thread(target=api.get, args=("/user/tokens/verify",))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.status for r in emulator.requests_matching("POST", "/oauth2/token$")] == [200]
        verified = emulator.requests_matching("GET", "/user/tokens/verify$")
        assert [r.status for r in verified] == [200] * 4
        assert f'oauth_token = "{emulator.token}"' in path.read_text()  # wrangler stored it
        assert emulator.requests_matching(path="^/npm/") == []  # and made no update check


def test_a_login_wrangler_cannot_renew_is_one_clear_error(tmp_path) -> None:
    with Emulator() as emulator:
        env = {**emulator.login_env(), **home_env(tmp_path)}
        write_login(env, "old-token-123", EXPIRED, refresh="revoked-refresh")
        api = CloudflareApi.from_environ(env, wrangler=WRANGLER)
        with pytest.raises(ApiFailure) as failure:
            api.call("GET", "/workers/scripts")
        assert "the token of `wrangler login` has expired" in failure.value.message
        assert failure.value.hint == "run `wrangler login` again"
        assert "old-token-123" not in str(failure.value)


def test_the_login_token_is_redacted(tmp_path) -> None:
    env = home_env(tmp_path)
    write_login(env, "login-token-123", FRESH)
    assert Redactor.from_environ(env)("sent login-token-123") == "sent ***"


def test_doctor_names_the_login_it_found_and_whether_it_is_current(tmp_path, monkeypatch) -> None:
    from dome_tasks.cli.doctor import credentials_check

    for name in ("CLOUDFLARE_API_TOKEN", "CF_API_TOKEN", "CLOUDFLARE_API_KEY", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert credentials_check().ok is False
    path = write_login(home_env(tmp_path), "login-token-123", FRESH)
    check = credentials_check()
    assert check.ok and check.detail == f"wrangler login ({path}), valid until 2999-01-01 00:00 UTC"
    write_login(home_env(tmp_path), "login-token-123", EXPIRED)
    assert "expired: wrangler renews it on the next run" in credentials_check().detail
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "tok-456789")
    assert credentials_check().detail == "CLOUDFLARE_API_TOKEN is set"


def test_a_login_renewed_during_the_run_is_redacted_from_then_on(tmp_path) -> None:
    env = home_env(tmp_path)
    path = write_login(env, "expired-token-123", EXPIRED)
    redactor = Redactor.from_environ(env)
    assert redactor("old expired-token-123") == "old ***"
    write_login(env, "renewed-token-456", FRESH)  # what wrangler writes when it renews
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    assert redactor("wrangler echoed renewed-token-456") == "wrangler echoed ***"
    assert redactor("old expired-token-123") == "old ***"  # still masked too


def test_with_a_token_set_the_stored_login_is_masked_too(tmp_path) -> None:
    env = home_env(tmp_path, CLOUDFLARE_API_TOKEN="tok-456789")
    write_login(env, "login-token-123", FRESH)
    assert Redactor.from_environ(env)("tok-456789 login-token-123") == "*** ***"
