"""The lifecycle's decide functions: pure (observed state in, a plan out; nothing runs)."""

from __future__ import annotations

import dataclasses

import pytest

from dome_tasks.lifecycle.deploy import DeployOptions, DeployState, decide_deploy, decide_verify
from dome_tasks.lifecycle.ledger import LedgerRecord
from dome_tasks.lifecycle.migrate import decide_migrate
from dome_tasks.lifecycle.session import LifecycleError
from dome_tasks.lifecycle.traffic import (
    RollbackChoice,
    TrafficState,
    choose_rollback,
    decide_abort,
    decide_canary,
    decide_promote,
    decide_rollback,
)
from dome_tasks.manifest.loader import load
from dome_tasks.plan.rollout import LIVE, NEW, OLD
from dome_tasks.plan.steps import Command, Verify, WriteRecord
from dome_tasks.plan.target import resolve
from dome_tasks.tools import Tools
from tests.helpers import SAMPLE

TOOLS = Tools(wrangler="wrangler", just="/bin/just", just_recipes=frozenset({"build-pkg"}))


@pytest.fixture(scope="module")
def manifest():
    return load(SAMPLE / "dome.yaml")


@pytest.fixture(scope="module")
def silo(manifest):
    return resolve(manifest, ["silo"], "staging").targets[0]


def rec(kind, outcome="success", **fields) -> LedgerRecord:
    return LedgerRecord(
        kind=kind,
        service="silo",
        environment="staging",
        outcome=outcome,
        worker="silo-staging",
        **fields,
    )


def events(plan) -> list[str]:
    return [step.event for step in plan.steps]


def argv(step) -> list[str]:
    return list(step.action.argv[1:-2])  # without wrangler and --config PATH


def record_of(plan, index=-1) -> WriteRecord:
    return plan.steps[index].action


# --- deploy ----------------------------------------------------------------------------------


def test_deploy_builds_renders_deploys_verifies_and_records(silo, manifest):
    plan = decide_deploy(silo, DeployState(), DeployOptions(), tools=TOOLS, root=manifest.root)
    assert events(plan) == ["build", "render", "deploy", "verify", "record"]
    record = record_of(plan)
    assert (record.kind, record.outcome, record.fields["version_id"]) == ("deploy", None, NEW)
    (failed,) = plan.on_failure
    assert (failed.action.kind, failed.action.outcome) == ("deploy", "failure")


def test_deploy_options_drop_build_and_verify(silo, manifest):
    plan = decide_deploy(
        silo,
        DeployState(),
        DeployOptions(build=False, verify=False),
        tools=TOOLS,
        root=manifest.root,
    )
    assert events(plan) == ["render", "deploy", "record"]


def test_health_path_null_skips_the_check_unless_a_health_url_is_given(silo, manifest):
    def planned(**config):
        target = dataclasses.replace(silo, config=dataclasses.replace(silo.config, **config))
        plan = decide_deploy(target, DeployState(), DeployOptions(build=False), tools=TOOLS,
                             root=manifest.root)
        return events(plan)

    assert planned(health_path=None) == ["render", "deploy", "record"]
    assert planned(health_path=None, health_url="https://api.example.com/up") == [
        "render", "deploy", "verify", "record"]


def test_verify_uses_the_configured_subdomain_then_the_learned_one(silo, manifest):
    def url(state, subdomain):
        plan = decide_deploy(
            silo,
            state,
            DeployOptions(build=False),
            tools=TOOLS,
            root=manifest.root,
            subdomain=subdomain,
        )
        check = plan.steps[-2].action
        assert isinstance(check, Verify) and not check.required
        return check.url

    assert url(DeployState(), None) is None  # learned from wrangler's output at run time
    assert url(DeployState("learned"), None) == "https://silo-staging.learned.workers.dev/health"
    assert url(DeployState("learned"), "set") == "https://silo-staging.set.workers.dev/health"


def test_verify_alone_requires_a_url_and_records_the_live_version(silo):
    plan = decide_verify(silo, "v1", smoke=False, subdomain="acme")
    check, record = (step.action for step in plan.steps)
    assert check.required and not check.smoke
    assert (record.kind, record.fields["version_id"]) == ("verify", "v1")


# --- rollback --------------------------------------------------------------------------------


HISTORY = (
    rec("deploy", version_id="v1", verified=True),
    rec("deploy", version_id="v2", verified=True),
    rec("deploy", "unhealthy", version_id="v3", verified=False),
)


def test_rollback_goes_to_the_last_healthy_version_that_is_not_live():
    live = TrafficState("silo", "staging", HISTORY, (("v2", 100.0),))
    assert choose_rollback(live) == RollbackChoice("v2", "v1")
    bad_live = TrafficState("silo", "staging", HISTORY, (("v3", 100.0),))
    assert choose_rollback(bad_live) == RollbackChoice("v3", "v2")
    assert choose_rollback(bad_live, "v1") == RollbackChoice("v3", "v1")
    assert choose_rollback(bad_live, exclude=("v2",)) == RollbackChoice("v3", "v1")
    assert choose_rollback(TrafficState("silo", "staging")) == RollbackChoice(None, None)


def test_rollback_to_a_chosen_version(silo):
    plan = decide_rollback(silo, RollbackChoice("v3", "v2"), reason="bad", learned="acme")
    assert events(plan) == ["rollback", "verify", "record"]
    assert argv(plan.steps[0]) == ["rollback", "v2", "--message", "bad", "-y"]
    fields = record_of(plan).fields
    assert (fields["version_id"], fields["from_version"], fields["to_version"]) == (
        "v2",
        "v3",
        "v2",
    )
    assert plan.on_failure[0].action.outcome == "failure"


def test_rollback_without_a_known_version_reads_what_wrangler_picked(silo):
    plan = decide_rollback(
        silo, RollbackChoice(None, None), reason="r", automatic=True, verify=False
    )
    assert events(plan) == ["rollback", "status", "record"]
    assert argv(plan.steps[0]) == ["rollback", "--message", "r", "-y"]
    fields = record_of(plan).fields
    assert fields["version_id"] == fields["to_version"] == LIVE and fields["automatic"]


# --- canary / promote / abort ----------------------------------------------------------------


def test_a_first_canary_uploads_then_splits_against_the_live_version(silo):
    plan = decide_canary(silo, TrafficState("silo", "staging", HISTORY[:1], (("v1", 100.0),)), 10)
    assert events(plan) == ["upload", "canary", "record"]
    assert argv(plan.steps[1])[:4] == ["versions", "deploy", f"{NEW}@10%", "v1@90%"]
    fields = record_of(plan).fields
    assert (fields["version_id"], fields["from_version"], fields["percent"]) == (NEW, "v1", 10)


def test_a_dry_run_canary_shows_placeholders(silo):
    plan = decide_canary(silo, TrafficState("silo", "staging"), 10)
    assert argv(plan.steps[1])[:4] == ["versions", "deploy", f"{NEW}@10%", f"{OLD}@90%"]


def test_a_running_canary_moves_without_uploading_and_keeps_its_commit(silo):
    running = rec("canary", version_id="v2", from_version="v1", percent=10, commit="abc")
    state = TrafficState("silo", "staging", (*HISTORY[:1], running), (("v2", 10.0), ("v1", 90.0)))
    plan = decide_canary(silo, state, 50)
    assert events(plan) == ["canary", "record"]
    assert argv(plan.steps[0])[:4] == ["versions", "deploy", "v2@50%", "v1@50%"]
    assert record_of(plan).fields["commit"] == "abc"


@pytest.mark.parametrize(
    ("live", "message"),
    [
        ((), "has no deployment yet"),
        ((("v1", 50.0), ("v9", 50.0)), "already splits traffic"),
    ],
)
def test_canary_refuses_what_it_cannot_split(silo, live, message):
    with pytest.raises(LifecycleError, match=message):
        decide_canary(silo, TrafficState("silo", "staging", (), live), 10)


def test_promote_then_abort(silo):
    running = rec("canary", version_id="v2", from_version="v1", percent=10)
    promote = decide_promote(silo, running, subdomain="acme")
    assert events(promote) == ["promote", "verify", "record"]
    assert argv(promote.steps[0])[:3] == ["versions", "deploy", "v2@100%"]
    assert record_of(promote).fields["to_version"] == "v2"
    abort = decide_abort(silo, running, reason="r", automatic=True)
    assert events(abort) == ["abort", "record"]
    assert argv(abort.steps[0])[:3] == ["versions", "deploy", "v1@100%"]
    fields = record_of(abort).fields
    assert (fields["version_id"], fields["from_version"], fields["automatic"]) == ("v1", "v2", True)


# --- migrate ---------------------------------------------------------------------------------


def test_migrations_one_plan_per_database_each_recorded(manifest):
    plans = decide_migrate(resolve(manifest, None, "production"))
    assert [events(plan) for plan in plans] == [["render"], ["migrate", "record"]]
    migrate, record = plans[1].steps
    assert isinstance(migrate.action, Command) and "--remote" in migrate.action.argv
    assert record.action.fields["extra"] == {"database": "silo-db"}
    assert plans[1].on_failure[0].action.outcome == "failure"
