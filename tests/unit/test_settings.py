"""Settings: every ``dome.*`` key declared, read once, validated, with clear precedence."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from invoke import Config, Context

from dome_tasks.collection import namespace
from dome_tasks.errors import UsageError
from dome_tasks.settings import DECLARED, Settings


def context(
    dome: dict | None = None,
    environ: dict[str, str] | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> Context:
    """A context configured the way invoke configures a task: the collection's defaults, then
    invoke.yaml-style overrides, then ``INVOKE_DOME_*`` from the environment."""
    if monkeypatch is not None:
        for key, value in (environ or {}).items():
            monkeypatch.setenv(key, value)
    config = Config(
        defaults={"dome": dict(namespace("dome.yaml").configuration()["dome"])},
        overrides={"dome": dome} if dome else None,
    )
    config.load_shell_env()
    return Context(config)


def test_every_key_the_code_reads_is_declared_in_the_collection():
    declared = namespace("m.yaml").configuration()["dome"]
    assert (
        set(declared)
        == set(DECLARED)
        == {
            "manifest",
            "log_format",
            "ledger",
            "yes",
            "verify_deadline",
            "workers_subdomain",
            "health_base_url",
            "justfile",
            "prefix",
            "history",
            "no_wait",
            "lock_timeout",
            "command_timeout",
        }
    )
    assert Path(declared["manifest"]).name == "m.yaml"


def test_defaults():
    settings = Settings.read(context(), environ={})
    assert settings.manifest.is_absolute() and settings.manifest.name == "dome.yaml"
    assert replace(settings, manifest=Path("dome.yaml")) == Settings(manifest=Path("dome.yaml"))
    assert settings.verify_deadline == 30.0 and settings.log_format == "text"
    assert settings.ledger_path(Path("/ws")) == Path("/ws/.dome/ledger.jsonl")


@pytest.mark.parametrize(
    ("key", "text", "field", "expected"),
    [
        ("VERIFY_DEADLINE", "1.5", "verify_deadline", 1.5),
        ("LOG_FORMAT", "json", "log_format", "json"),
        ("WORKERS_SUBDOMAIN", "acme", "workers_subdomain", "acme"),
        ("HEALTH_BASE_URL", "http://127.0.0.1:9/", "health_base_url", "http://127.0.0.1:9"),
        ("YES", "1", "assume_yes", True),
        ("YES", "false", "assume_yes", False),
        ("LEDGER", "/tmp/l.jsonl", "ledger", Path("/tmp/l.jsonl")),
        ("MANIFEST", "other.yaml", "manifest", Path("other.yaml")),
    ],
)
def test_each_key_is_reachable_from_its_invoke_environment_variable(
    monkeypatch, key, text, field, expected
):
    c = context(environ={f"INVOKE_DOME_{key}": text}, monkeypatch=monkeypatch)
    assert getattr(Settings.read(c), field) == expected


def test_precedence_level_by_level(monkeypatch):
    notes = io.StringIO()
    # 4. default
    assert Settings.read(context(), environ={}).verify_deadline == 30.0
    # 3. the deprecated DOME_* variable beats the default, with a note naming the new one
    legacy = {"DOME_VERIFY_DEADLINE": "5"}
    assert Settings.read(context(), environ=legacy, notes=notes).verify_deadline == 5.0
    assert "DOME_VERIFY_DEADLINE is deprecated; set INVOKE_DOME_VERIFY_DEADLINE" in notes.getvalue()
    # 2. invoke's configuration (invoke.yaml or INVOKE_DOME_*) beats the old variable
    configured = context({"verify_deadline": 7})
    assert Settings.read(configured, environ=legacy).verify_deadline == 7.0
    # 1. the task's flag beats everything
    assert Settings.read(configured, environ=legacy, verify_deadline="9").verify_deadline == 9.0


def test_the_flag_yes_or_the_setting_confirms():
    assert Settings.read(context(), environ={}, yes=True).assume_yes
    assert Settings.read(context({"yes": True}), environ={}).assume_yes


@pytest.mark.parametrize(
    ("key", "text", "named", "valid"),
    [
        (
            "VERIFY_DEADLINE",
            "abc",
            "INVOKE_DOME_VERIFY_DEADLINE='abc' is not a number of seconds",
            "a positive number",
        ),
        ("VERIFY_DEADLINE", "-3", "INVOKE_DOME_VERIFY_DEADLINE='-3'", "a positive number"),
        ("LOG_FORMAT", "xml", "INVOKE_DOME_LOG_FORMAT='xml' is not a log format", "text or json"),
        ("YES", "maybe", "INVOKE_DOME_YES='maybe' is not a yes/no value", "1, true, yes"),
        (
            "HEALTH_BASE_URL",
            "127.0.0.1:8788",
            "INVOKE_DOME_HEALTH_BASE_URL",
            "http://127.0.0.1:8788",
        ),
        ("WORKERS_SUBDOMAIN", "a b", "INVOKE_DOME_WORKERS_SUBDOMAIN", "my-team"),
    ],
)
def test_an_invalid_value_names_the_key_and_the_valid_values(monkeypatch, key, text, named, valid):
    c = context(environ={f"INVOKE_DOME_{key}": text}, monkeypatch=monkeypatch)
    with pytest.raises(UsageError) as info:
        Settings.read(c)
    assert named in str(info.value) and valid in str(info.value)


def test_invalid_values_from_the_other_sources_name_their_source():
    with pytest.raises(UsageError, match=r"dome.log_format \(invoke configuration\)='xml'"):
        Settings.read(context({"log_format": "xml"}), environ={})
    with pytest.raises(UsageError, match="--log-format='xml'"):
        Settings.read(context(), environ={}, log_format="xml")
    with pytest.raises(UsageError, match="DOME_LOG_FORMAT='xml'"):  # no longer silently accepted
        Settings.read(context(), environ={"DOME_LOG_FORMAT": "xml"}, notes=io.StringIO())
    # ... and DOME_LOG_FORMAT=json is no longer ignored
    json = Settings.read(context(), environ={"DOME_LOG_FORMAT": "json"}, notes=io.StringIO())
    assert json.log_format == "json"


def test_record_keys_default_and_validate(monkeypatch):
    settings = Settings.read(context(), environ={})
    assert settings.shared_history and not settings.no_wait
    assert settings.lock_timeout is None and settings.command_timeout == 600.0
    configured = Settings.read(
        context(environ={"INVOKE_DOME_HISTORY": "off", "INVOKE_DOME_LOCK_TIMEOUT": "90",
                         "INVOKE_DOME_COMMAND_TIMEOUT": "120"}, monkeypatch=monkeypatch),
        environ={},
    )
    assert not configured.shared_history
    assert configured.lock_timeout == 90 and configured.command_timeout == 120
    assert Settings.read(context(), no_wait=True, environ={}).no_wait
    with pytest.raises(UsageError, match="lock_timeout.*'soon' is not a number of seconds"):
        Settings.read(context(environ={"INVOKE_DOME_LOCK_TIMEOUT": "soon"},
                              monkeypatch=monkeypatch), environ={})


def test_a_base_url_with_a_space_names_the_flag_and_the_position():
    with pytest.raises(UsageError, match="--base-url: 'http://h/a b' contains a space at position 11"):
        Settings.read(context(), health_base_url="http://h/a b", environ={})
