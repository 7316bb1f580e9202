"""Task level, with invoke's MockContext: no process may run (MockContext.run would raise).

Dry runs print their plans; protected environments are refused without --yes; bad flags and
settings are one clear error; each fact is resolved once per run.
"""

from __future__ import annotations

import pytest
from invoke import Config, MockContext
from invoke.exceptions import Exit

from dome_tasks.cli import deploy as deploy_tasks
from dome_tasks.cli import lifecycle as lifecycle_tasks
from dome_tasks.manifest.loader import Manifest
from dome_tasks.render import config as render_module
from tests.helpers import SAMPLE


def mock(tmp_path, **dome) -> MockContext:
    settings = {
        "manifest": str(SAMPLE / "dome.yaml"),
        "ledger": str(tmp_path / "ledger.jsonl"),
        **dome,
    }
    return MockContext(config=Config(overrides={"dome": settings}))


def arrows(text: str) -> list[str]:
    return [line[2:] for line in text.splitlines() if line.startswith("→ ")]


def test_deploy_all_resolves_each_fact_once(tmp_path, monkeypatch, capsys):
    calls: dict[str, list] = {"resolve": [], "environment": [], "deploy_order": [], "render": []}
    inside_resolve = []

    def counted(name, original):
        def wrapper(self, *args, **kwargs):
            if not (name == "environment" and inside_resolve):
                calls[name].append(args)
            if name == "resolve":
                inside_resolve.append(True)
            try:
                return original(self, *args, **kwargs)
            finally:
                if name == "resolve":
                    inside_resolve.pop()

        return wrapper

    for name in ("resolve", "environment", "deploy_order"):
        monkeypatch.setattr(Manifest, name, counted(name, getattr(Manifest, name)))
    real_render = render_module.render_config
    monkeypatch.setattr(
        render_module,
        "render_config",
        lambda config, **kw: calls["render"].append(config.name) or real_render(config, **kw),
    )

    deploy_tasks.deploy_env(mock(tmp_path), "all", "stg", dry_run=True)

    services = ["silo", "constellation", "dome-api"]
    assert calls["environment"] == [("stg",)]  # the task's word, looked up once
    # dependency order of the services that deploy to staging: once
    assert calls["deploy_order"] == [(tuple(services),)]
    assert calls["resolve"] == [(s, "staging") for s in services]  # each merged config: once
    assert calls["render"] == [f"{s}-staging" for s in services]  # each rendered config: once
    out = capsys.readouterr().out
    assert arrows(out).count("deploy silo-staging (staging)") == 1


def test_dry_run_prints_the_whole_plan_and_runs_nothing(tmp_path, capsys):
    deploy_tasks.deploy_env(mock(tmp_path), "silo", "staging", dry_run=True, no_build=True)
    out = capsys.readouterr().out
    assert arrows(out) == [  # pending D1 migrations first, then the new code
        f"render silo-staging -> {SAMPLE}/.dome/build/staging/silo/wrangler.toml",
        "apply D1 migrations of silo-db-staging (staging)",
        "record migrate of silo-staging (success)",
        f"render silo-staging -> {SAMPLE}/.dome/build/staging/silo/wrangler.toml",
        "deploy silo-staging (staging)",
        "verify silo-staging",
        "record deploy of silo-staging",
    ]
    assert "GET the health URL wrangler reports must answer 200" in out
    assert "ledger: deploy, success or unhealthy as the health check finds (version_id=<new-version>)" in out
    assert "ledger: migrate success (extra={'database': 'silo-db-staging'})" in out
    assert not (tmp_path / "ledger.jsonl").exists()


def test_protected_environment_is_refused_without_yes(tmp_path):
    with pytest.raises(Exit) as info:
        deploy_tasks.deploy_env(mock(tmp_path), "silo", "prod", no_build=True)
    assert info.value.code == 1
    assert "refusing to deploy 1 service(s) (silo) to production" in info.value.message
    assert "--yes" in info.value.message and "INVOKE_DOME_YES=1" in info.value.message


def test_lifecycle_refusal_happens_before_anything_runs(tmp_path):
    with pytest.raises(Exit, match="production is protected"):
        lifecycle_tasks.rollback(mock(tmp_path), "silo", "production")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda c: lifecycle_tasks.canary(c, "silo", "staging", percent="abc", dry_run=True),
            "--percent 'abc' is not a whole number from 1 to 99",
        ),
        (
            lambda c: lifecycle_tasks.canary(c, "silo", "staging", percent="100", dry_run=True),
            "--percent '100' is not a whole number from 1 to 99",
        ),
        (lambda c: lifecycle_tasks.history(c, limit="x"), "--limit 'x' is not a whole number"),
        (
            lambda c: lifecycle_tasks.verify(c, "silo", "staging", deadline="soon", dry_run=True),
            "--deadline='soon' is not a number of seconds",
        ),
        (
            lambda c: lifecycle_tasks.rollback(c, "silo", "local", dry_run=True),
            "local runs under `wrangler dev`",
        ),
    ],
)
def test_bad_flags_are_one_clear_error(tmp_path, call, message):
    with pytest.raises(Exit) as info:
        call(mock(tmp_path))
    assert info.value.code == 2 and message in info.value.message


def test_a_bad_setting_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(Exit) as info:
        deploy_tasks.deploy_env(mock(tmp_path, log_format="xml"), "silo", "staging", dry_run=True)
    assert "log_format" in info.value.message and "text or json" in info.value.message


def test_settings_reach_the_dry_run(tmp_path, capsys):
    """A configured workers.dev subdomain shows in the verify step's URL."""
    lifecycle_tasks.verify(
        mock(tmp_path, workers_subdomain="acme"), "silo", "staging", dry_run=True
    )
    out = capsys.readouterr().out
    assert arrows(out) == ["verify silo-staging", "record verify of silo-staging"]
    assert "GET https://silo-staging.acme.workers.dev/health must answer 200" in out
    lifecycle_tasks.verify(mock(tmp_path), "silo", "staging", dry_run=True, subdomain="flag-wins")
    assert "silo-staging.flag-wins.workers.dev" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("task", "kwargs", "expected"),
    [
        (
            lifecycle_tasks.rollback,
            {},
            [
                "roll silo-staging back to the previous version",
                "read which version serves silo-staging now",
                "verify silo-staging",
                "record rollback of silo-staging",
            ],
        ),
        (
            lifecycle_tasks.rollback,
            {"version": "abcdef1234"},
            [
                "roll silo-staging back to abcdef12",
                "verify silo-staging",
                "record rollback of silo-staging",
            ],
        ),
        (
            lifecycle_tasks.canary,
            {"percent": "25"},
            [
                "upload a new version of silo-staging",
                "canary silo-staging: 25% to <new-version>, 75% to <old-version>",
                "record canary of silo-staging",
            ],
        ),
    ],
)
def test_lifecycle_dry_runs_print_their_plans(tmp_path, capsys, task, kwargs, expected):
    task(mock(tmp_path), "silo", "staging", dry_run=True, **kwargs)
    assert arrows(capsys.readouterr().out) == expected


def test_promote_dry_run_needs_a_canary_like_the_real_run(tmp_path):
    with pytest.raises(Exit, match="no canary in progress for silo-staging"):
        lifecycle_tasks.promote(mock(tmp_path), "silo", "staging", dry_run=True)
