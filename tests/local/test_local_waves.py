"""Starting several services: a wave's services side by side, waves one after the other, a
failure stopping the waves after it. Real processes and HTTP, with the stand-in wrangler."""

from __future__ import annotations

import _thread
import threading
import time

import psutil
import pytest
from fake_wrangler import calls, fake_env, fake_service

from dome_tasks.local import StackFailed, StartupFailed, start_stack, start_wave, status, stop


@pytest.fixture
def env(tmp_path):
    env = fake_env(tmp_path, "29100-29119", health_timeout=40, stop_timeout=5)
    yield env
    stop(env)


def test_services_of_one_wave_start_side_by_side(env, tmp_path):
    # Each waits for the other to have started before it serves: one after the other, the
    # first would never become healthy.
    a = fake_service(tmp_path, "a", wait_for=["b-local"])
    b = fake_service(tmp_path, "b", wait_for=["a-local"])
    seen = []
    outcomes = start_wave(env, [a, b], jobs=2, on_done=seen.append)
    assert [o.service for o in outcomes] == ["a", "b"]
    assert sorted(o.service for o in seen) == ["a", "b"]  # each reported once, as it finished
    first, second = (o.record for o in outcomes)
    # both processes were running before either was healthy
    assert max(first.started_at, second.started_at) < min(first.ready_at, second.ready_at)
    assert first.port != second.port
    assert [(s.service, s.state, s.healthy) for s in status(env)] == [
        ("a", "running", True),
        ("b", "running", True),
    ]


def test_a_service_without_a_health_check_is_up_and_healthy_once_it_answers_at_all(env, tmp_path):
    """``health_path: null``: a worker answering 404 on / is up, and `status` says healthy."""
    import dataclasses

    plain = dataclasses.replace(fake_service(tmp_path, "plain", status=404), health_path="/",
                                ready_on_any_status=True)
    (outcome,) = start_wave(env, [plain], jobs=1)
    assert outcome.error is None and outcome.record is not None
    assert [(s.service, s.state, s.healthy) for s in status(env)] == [("plain", "running", True)]


def test_jobs_1_boots_one_at_a_time(env, tmp_path):
    services = [fake_service(tmp_path, name, delay="0.2") for name in ("a", "b", "c")]
    start_wave(env, services, jobs=1)
    # each wrangler dev is launched only once the one before it serves
    events = [(c["argv"][0], c["name"]) for c in calls(env)]
    assert events == [(step, f"{name}-local") for name in "abc" for step in ("dev", "serving")]


@pytest.mark.parametrize("boot_ahead", [True, False], ids=["boot-ahead", "strict"])
def test_a_wave_is_checked_only_once_the_one_before_is_healthy(env, tmp_path, boot_ahead):
    # silo serves late; the others would be healthy long before it if they were asked
    waves = [
        [fake_service(tmp_path, "silo", delay="1.0")],
        [fake_service(tmp_path, "c1"), fake_service(tmp_path, "c2")],
        [fake_service(tmp_path, "api")],
    ]
    seen = []
    records = {
        r.service: r
        for r in start_stack(env, waves, jobs=4, boot_ahead=boot_ahead, on_done=seen.append)
    }
    assert list(records) == ["silo", "c1", "c2", "api"]
    assert records["silo"].ready_at <= min(records["c1"].ready_at, records["c2"].ready_at)
    assert max(records["c1"].ready_at, records["c2"].ready_at) <= records["api"].ready_at
    assert [o.wave for o in seen] == [0, 1, 1, 2]  # reported wave by wave
    if not boot_ahead:  # nothing of a wave is launched before the one before it is healthy
        assert records["silo"].ready_at <= min(records["c1"].started_at, records["c2"].started_at)
        assert max(records["c1"].ready_at, records["c2"].ready_at) <= records["api"].started_at


def test_a_later_wave_boots_while_an_earlier_one_comes_up(env, tmp_path):
    # silo serves only once api (a wave later) has booted: that needs boot-ahead
    waves = [
        [fake_service(tmp_path, "silo", wait_for=["api-local"])],
        [fake_service(tmp_path, "api")],
    ]
    records = {r.service: r for r in start_stack(env, waves, jobs=2)}
    assert records["api"].started_at < records["silo"].ready_at <= records["api"].ready_at


def test_a_booted_service_waiting_for_its_wave_frees_its_job_slot(env, tmp_path):
    # 2 slots: silo (booting until api2 has booted) and api1 (booted, waiting for silo's
    # wave). If api1 kept its slot, api2 could never boot and silo never serve.
    waves = [
        [fake_service(tmp_path, "silo", wait_for=["api2-local"])],
        [fake_service(tmp_path, "api1")],
        [fake_service(tmp_path, "api2")],
    ]
    records = start_stack(env, waves, jobs=2)
    assert [r.service for r in records] == ["silo", "api1", "api2"]


def test_ports_follow_the_dependency_order_whichever_boots_first(env, tmp_path):
    waves = [[fake_service(tmp_path, "silo", delay="0.5")], [fake_service(tmp_path, "api")]]
    records = {r.service: r for r in start_stack(env, waves, jobs=2)}
    assert (records["silo"].port, records["api"].port) == (29100, 29101)


@pytest.mark.parametrize("boot_ahead", [True, False], ids=["boot-ahead", "strict"])
def test_a_failure_stops_the_waves_after_it(env, tmp_path, boot_ahead):
    good = fake_service(tmp_path, "good", delay="0.3")
    broken = fake_service(tmp_path, "broken", fail="boom: cannot start")
    later = fake_service(tmp_path, "later")
    last = fake_service(tmp_path, "last")
    seen = []
    with pytest.raises(StackFailed) as failed:
        start_stack(
            env,
            [[good, broken], [later], [last]],
            jobs=4,
            boot_ahead=boot_ahead,
            on_done=seen.append,
        )
    error = failed.value
    assert [o.service for o in error.failures] == ["broken"]
    assert isinstance(error.failures[0].error, StartupFailed)
    assert "boom: cannot start" in str(error)
    assert error.not_started == ["later", "last"]
    assert "not started (an earlier wave failed): later, last" in str(error)
    assert sorted(o.describe().split(" after ")[0].split(" in ")[0] for o in seen) == [
        "broken: FAILED",
        "good: ready at http://127.0.0.1:29100",
        "last: not started (an earlier wave failed)",
        "later: not started (an earlier wave failed)",
    ]
    # the healthy peer of the failed service stays up; the failed one and the later waves
    # left nothing behind
    assert [(s.service, s.state, s.healthy) for s in status(env)] == [("good", "running", True)]
    assert [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(
            f"{n}/wrangler.toml" in " ".join(p.info["cmdline"] or [])
            for n in ("broken", "later", "last")
        )
    ] == []
    if not boot_ahead:
        assert [c["name"] for c in calls(env) if c["argv"][0] == "dev"].count("later-local") == 0


def test_ctrl_c_stops_the_whole_wave(env, tmp_path):
    quick = fake_service(tmp_path, "quick")
    stuck = fake_service(tmp_path, "stuck", wait_for=["never-local"])

    def press_ctrl_c_once_both_run():
        deadline = time.monotonic() + 30
        while not (env.record_path("stuck").exists() and _healthy_record(env, "quick")):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c_once_both_run, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        start_wave(env, [quick, stuck], jobs=2)
    assert list((env.state_dir / "run").glob("*.json")) == []
    assert [
        p
        for p in psutil.process_iter(["cmdline"])
        if str(env.wrangler) in " ".join(p.info["cmdline"] or [])
    ] == []


def _healthy_record(env, name) -> bool:
    import json

    try:
        return json.loads(env.record_path(name).read_text()).get("ready_at") is not None
    except (OSError, ValueError):
        return False


def test_migrations_are_skipped_when_nothing_changed(env, tmp_path):
    silo = fake_service(tmp_path, "silo", d1=True)
    migrations = silo.config.parent / "migrations"
    (migrations / "0001_init.sql").write_text("create table t (k text);\n")

    def applies() -> int:
        return sum(1 for c in calls(env) if c["argv"][:2] == ["d1", "migrations"])

    [first] = start_wave(env, [silo])
    assert [(m.applied, m.skipped) for m in first.migrations] == [(("0001_init.sql",), False)]
    assert applies() == 1

    [again] = start_wave(env, [silo])  # a redeploy: wrangler is not asked
    assert [(m.applied, m.skipped) for m in again.migrations] == [((), True)]
    assert applies() == 1

    (migrations / "0002_more.sql").write_text("create table u (k text);\n")
    [added] = start_wave(env, [silo])
    assert [m.applied for m in added.migrations] == [("0002_more.sql",)]
    assert applies() == 2

    for database in (env.state_dir / "v3" / "d1").rglob("*.sqlite"):
        database.unlink()  # the local data was wiped: everything is applied again
    [wiped] = start_wave(env, [silo])
    assert [m.applied for m in wiped.migrations] == [("0001_init.sql", "0002_more.sql")]
    assert applies() == 3


@pytest.mark.parametrize("garbage", ["not json", '{"silo-db": {"digest": 1}}', '{"silo-db": []}'])
def test_a_damaged_migration_stamp_means_apply_again(env, tmp_path, garbage):
    silo = fake_service(tmp_path, "silo", d1=True)
    (silo.config.parent / "migrations" / "0001_init.sql").write_text("create table t (k text);\n")
    start_wave(env, [silo])
    env.migrated_path("silo").write_text(garbage)
    [again] = start_wave(env, [silo])
    assert [(m.database, m.skipped) for m in again.migrations] == [("silo-db", False)]
    assert sum(1 for c in calls(env) if c["argv"][:2] == ["d1", "migrations"]) == 2


def test_ready_in_is_each_services_own_time_not_the_wait_for_earlier_waves(env, tmp_path):
    waves = [[fake_service(tmp_path, "slow", delay="2.0")], [fake_service(tmp_path, "quick")]]
    seen = []
    start_stack(env, waves, jobs=2, on_done=seen.append)
    slow, quick = seen
    assert quick.seconds < slow.seconds - 1.0, "quick waited for slow, and says so separately"
    assert quick.waited >= 1.0
    assert " (after waiting " in quick.describe() and " (after waiting " not in slow.describe()
