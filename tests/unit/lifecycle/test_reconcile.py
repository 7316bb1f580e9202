"""Reconciliation: the pure decision, the live reader against the emulator, and the retry hook."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dome_tasks.cloudflare.api import ApiFailure, CloudflareApi
from dome_tasks.lifecycle.reconcile import (
    LiveDeployment,
    Reconciled,
    Reconciler,
    expected_after,
    failed_after_going_live,
    read_live,
    reconcile,
)
from dome_tasks.plan.steps import Command
from dome_tasks.testing.emulator import Emulator
from dome_tasks.testing.emulator.state import Worker
from dome_tasks.wrangler.output import FailedCommandRecord, WranglerOutput
from dome_tasks.wrangler.retry import Attempt, RetryPolicy, run_with_retries

OLD = LiveDeployment("d-old", (("v-old", 100.0),))
NEW = LiveDeployment("d-new", (("v-new", 100.0),))
SPLIT = LiveDeployment("d-split", (("v-new", 10.0), ("v-old", 90.0)))
NOTHING = LiveDeployment(None)


def test_a_deploy_whose_version_is_live_is_a_success() -> None:
    got = reconcile("v-new", NEW, before=OLD)
    assert (got.outcome, got.version_id, got.went_live, got.warning) == ("success", "v-new", True, None)
    assert got.extra() == {}


def test_a_failure_after_the_new_version_went_live_is_recorded_as_live() -> None:
    # the subdomain call failed after the upload: wrangler wrote no version id, exit 1
    got = reconcile(None, NEW, before=OLD, command_ok=False)
    assert (got.outcome, got.version_id, got.went_live) == ("success", "v-new", True)
    assert got.warning.startswith("wrangler failed after it went live")
    known = reconcile("v-new", NEW, before=OLD, command_ok=False)
    assert known.ok and "recorded as live (not repeated)" in known.warning


def test_a_first_deploy_of_a_new_worker_counts_as_a_change() -> None:
    got = reconcile(None, NEW, before=NOTHING, command_ok=False)
    assert got.ok and got.version_id == "v-new"


def test_a_failure_that_changed_nothing_is_a_failure() -> None:
    got = reconcile(None, OLD, before=OLD, command_ok=False)
    assert (got.outcome, got.version_id, got.went_live, got.warning) == ("failure", None, False, None)
    assert got.extra() == {"live": "v-old@100%"}


def test_wrangler_exit_0_with_nothing_new_live_is_a_failure() -> None:
    # Ctrl-C mid-upload: wrangler exits 0, reports no version, nothing changed
    got = reconcile(None, OLD, before=OLD, command_ok=True)
    assert got.outcome == "failure" and got.version_id is None
    assert got.warning == "wrangler exited 0 but nothing new went live; v-old@100% serves"
    claimed = reconcile("v-new", OLD, before=OLD)
    assert claimed.outcome == "failure" and "v-new@100% is not live" in claimed.warning


def test_another_deploy_in_between_is_not_recorded_as_ours() -> None:
    theirs = LiveDeployment("d-theirs", (("v-theirs", 100.0),))
    got = reconcile("v-new", theirs, before=OLD)
    assert got.outcome == "failure" and "v-theirs@100% serves" in got.warning


def test_canary_splits_are_compared_exactly() -> None:
    assert reconcile({"v-new": 10, "v-old": 90}, SPLIT, before=OLD).ok
    moved_anyway = reconcile({"v-new": 10, "v-old": 90}, SPLIT, before=OLD, command_ok=False)
    assert moved_anyway.ok and moved_anyway.version_id == "v-new"  # the canary's new version
    assert "v-new@10%, v-old@90% went live" in moved_anyway.warning
    wrong = reconcile({"v-new": 50, "v-old": 50}, SPLIT, before=SPLIT)
    assert wrong.outcome == "failure" and "v-new@10%, v-old@90% serves" in wrong.warning


def test_unknown_live_state_records_what_wrangler_said_with_a_warning() -> None:
    got = reconcile("v-new", None, before=OLD)
    assert got.ok and got.version_id == "v-new" and "could not read what serves" in got.warning
    silent = reconcile(None, None, before=None)  # wrangler exit 0: its word is all there is
    assert silent.ok and silent.version_id is None
    failed = reconcile(None, None, before=OLD, command_ok=False)
    assert failed.outcome == "failure" and failed.went_live is None


def test_without_api_access_wrangler_decides_without_warnings() -> None:
    blind = Reconciler(None)
    assert blind.after("silo", "v-new", None, command_ok=True) == Reconciled(
        "success", "v-new", None, None, None)
    assert blind.after("silo", None, None, command_ok=False).outcome == "failure"


def test_unknown_before_state_and_a_failed_command() -> None:
    assert reconcile("v-new", NEW, before=None, command_ok=False).ok
    unsure = reconcile(None, NEW, before=None, command_ok=False)
    assert unsure.outcome == "failure" and "unknown" in unsure.warning


# --- the retry hook ---------------------------------------------------------------------------

WRANGLER = "/w/node_modules/.bin/wrangler"
DEPLOY = (WRANGLER, "deploy", "--config", "/w/.dome/build/staging/silo/wrangler.toml")


def failed_on(path: str) -> Attempt:
    message = f"A request to the Cloudflare API (/accounts/a1/{path}) failed."
    return Attempt(1, "", f"✘ [ERROR] {message}\n\n  An unknown error has occurred [code: 10013]",
                   WranglerOutput((FailedCommandRecord(message, 10013),)))


@pytest.mark.parametrize(
    ("path", "live"),
    [
        ("workers/subdomain", True),
        ("workers/scripts/silo-staging/subdomain", True),
        ("workers/scripts/silo-staging/script-settings", True),
        ("workers/scripts/silo-staging/schedules", True),
        ("workers/scripts/silo-staging/versions", False),  # the upload itself
        ("workers/scripts/silo-staging/deployments", False),  # uploaded, not deployed
        ("workers/services/silo-staging", False),
    ],
)
def test_failed_after_going_live_reads_the_failed_path(path: str, live: bool) -> None:
    assert failed_after_going_live(DEPLOY, failed_on(path)) is live


def test_only_deploys_are_judged() -> None:
    rollback = (WRANGLER, "rollback", "v1", "--config", "x")
    assert not failed_after_going_live(rollback, failed_on("workers/subdomain"))
    assert not failed_after_going_live(DEPLOY, Attempt(0))


def test_the_retry_loop_does_not_repeat_a_deploy_that_went_live() -> None:
    attempts, logged = [], []

    def attempt() -> Attempt:
        attempts.append(1)
        return failed_on("workers/subdomain")

    result = run_with_retries(attempt, RetryPolicy(max_retries=3), sleep=lambda s: None,
                              log=logged.append,
                              landed=lambda a: failed_after_going_live(DEPLOY, a))
    assert len(attempts) == 1 and not result.ok
    assert logged == [("not retrying: the new version went live before this failed: "
                      "API error 10013 (server error) from /accounts/a1/workers/subdomain")]
    # without the hook the same failure is retried (it is a 5xx)
    attempts.clear()
    run_with_retries(attempt, RetryPolicy(max_retries=2), sleep=lambda s: None, log=logged.append)
    assert len(attempts) == 3


# --- the reader, against the emulator ---------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def test_read_live_follows_the_emulators_deployments(emulator) -> None:
    api = CloudflareApi.from_environ(emulator.env())
    assert read_live(api, "silo-staging") == LiveDeployment(None)  # no such worker yet
    worker = emulator.state.workers.setdefault("silo-staging", Worker("silo-staging"))
    one = worker.add_version({}, {})
    two = worker.add_version({}, {})
    worker.deploy([{"version_id": one.id, "percentage": 100}])
    first = read_live(api, "silo-staging")
    assert first.traffic == ((one.id, 100.0),) and first.id == worker.deployments[0].id
    worker.deploy([{"version_id": one.id, "percentage": 70}, {"version_id": two.id, "percentage": 30}])
    split = read_live(api, "silo-staging")
    assert split.traffic == ((one.id, 70.0), (two.id, 30.0)) and split.id != first.id


def test_an_unreadable_live_state_is_unknown_not_an_error(emulator) -> None:
    api = CloudflareApi.from_environ(emulator.env())
    emulator.faults.add(path="/deployments$", status=500, times=None)
    with pytest.raises(ApiFailure) as caught:
        read_live(api, "silo-staging")
    assert caught.value.transient and caught.value.status == 500
    assert Reconciler(api).live("silo-staging") is None
    assert Reconciler(None).live("silo-staging") is None


def test_the_probe_notices_a_changed_deployment_even_without_a_known_path(emulator, tmp_path) -> None:
    config = tmp_path / "wrangler.toml"
    config.write_text('name = "silo-staging"\n')
    worker = emulator.state.workers.setdefault("silo-staging", Worker("silo-staging"))
    worker.deploy([{"version_id": worker.add_version({}, {}).id, "percentage": 100}])
    probe = Reconciler(CloudflareApi.from_environ(emulator.env())).probe(
        Command((WRANGLER, "deploy", "--config", str(config)), wrangler=True))
    dropped = Attempt(1, "", "✘ [ERROR] fetch failed")  # a dropped connection: no path known
    assert probe(dropped) is False  # nothing changed yet: a retry is safe
    worker.deploy([{"version_id": worker.add_version({}, {}).id, "percentage": 100}])
    assert probe(dropped) is True  # the deploy went live before the connection dropped
    assert Reconciler(None).probe(Command((WRANGLER, "whoami"))) is None


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("deploy", {"version_id": "v2"}, "v2"),
        ("deploy", {"version_id": "<new-version>"}, None),  # not learned: unknown
        ("rollback", {"version_id": "v1", "to_version": "v1"}, "v1"),
        ("rollback", {"to_version": "<live-version>"}, None),  # wrangler picks: unknown
        ("canary", {"version_id": "v2", "from_version": "v1", "percent": 10},
         {"v2": 10.0, "v1": 90.0}),
        ("canary", {"version_id": "<new-version>", "from_version": "v1", "percent": 10}, None),
        ("promote", {"version_id": "v2", "to_version": "v2"}, "v2"),
        ("abort", {"version_id": "v1", "from_version": "v2", "to_version": "v1"}, "v1"),
    ],
)
def test_what_a_record_says_should_serve(kind, fields, expected) -> None:
    placeholders = frozenset({"<new-version>", "<live-version>", "<old-version>"})
    assert expected_after(kind, fields, placeholders=placeholders) == expected


# --- unknown outcomes, settled on the next read ------------------------------------------------


def _unknown(version: str = "v-new", **extra: object):
    from dome_tasks.lifecycle.ledger import LedgerRecord

    return LedgerRecord(kind="deploy", service="silo", environment="staging", outcome="unknown",
                        worker="silo-staging", version_id=version,
                        extra={"in_flight": version, **extra})


def test_an_unknown_activation_that_landed_is_settled_as_a_success_naming_it() -> None:
    from dome_tasks.lifecycle.reconcile import settle
    from dome_tasks.testing.truth import recorded_live

    unknown = _unknown(digest="abc")
    (settled,) = settle([unknown], lambda worker: NEW)
    assert (settled.outcome, settled.version_id, settled.extra["settles"]) == (
        "success", "v-new", unknown.id)
    assert settled.extra["digest"] == "abc"  # the no-op skip can trust it
    assert recorded_live([unknown], "silo", "staging") == "unknown"
    assert recorded_live([unknown, settled], "silo", "staging") == "v-new"
    assert settle([unknown, settled], lambda worker: NEW) == []  # settled once


def test_an_unknown_activation_that_did_not_land_is_settled_as_a_failure() -> None:
    from dome_tasks.lifecycle.reconcile import settle

    (settled,) = settle([_unknown()], lambda worker: OLD)
    assert (settled.outcome, settled.version_id) == ("failure", None)
    assert settled.extra["live"] == "v-old@100%"
    assert settle([_unknown()], lambda worker: None) == []  # unreadable: stays unknown
