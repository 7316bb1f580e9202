"""The runner's lanes: one wave's services side by side, each one's output in one block."""

from __future__ import annotations

import io
import threading

import pytest

from dome_tasks.runner import Lane, default_jobs, run_lanes


def test_lanes_run_at_once_and_each_ones_lines_stay_together():
    meet = threading.Barrier(3, timeout=30)  # opens only when all three lanes run at once

    def work(name):
        def body(out):
            print(f"{name} starts", file=out)
            meet.wait()
            print(f"{name} ends", file=out)
            return name.upper()
        return body

    out = io.StringIO()
    results = run_lanes([Lane(n, work(n)) for n in ("a", "b", "c")], jobs=3, out=out)

    assert [(r.name, r.value, r.ok) for r in results] == [("a", "A", True), ("b", "B", True),
                                                         ("c", "C", True)]
    lines = out.getvalue().splitlines()
    assert sorted(lines) == sorted(f"{n} {w}" for n in "abc" for w in ("starts", "ends"))
    for name in "abc":  # a lane's two lines are adjacent: never interleaved with another's
        assert lines.index(f"{name} ends") == lines.index(f"{name} starts") + 1


def test_one_job_runs_in_order_straight_to_the_stream():
    seen = []
    out = io.StringIO()

    def body(name):
        def run(stream):
            assert stream is out  # no buffer: the output streams as it comes
            seen.append(name)
        return run

    run_lanes([Lane(n, body(n)) for n in ("a", "b")], jobs=1, out=out)
    assert seen == ["a", "b"]


def test_after_a_failure_lanes_not_yet_started_do_not_start():
    ran = []

    def fail(out):
        ran.append("a")
        raise RuntimeError("a broke")

    results = run_lanes(
        [Lane("a", fail), Lane("b", lambda out: ran.append("b"))], jobs=1, out=io.StringIO()
    )
    assert ran == ["a"]
    assert str(results[0].error) == "a broke" and results[0].started
    assert not results[1].started and results[1].error is None and not results[1].ok


def test_a_failing_lane_does_not_stop_the_ones_running_beside_it():
    meet = threading.Barrier(2, timeout=30)

    def fail(out):
        meet.wait()
        raise RuntimeError("a broke")

    def work(out):
        meet.wait()
        return "b done"

    blocks = []
    results = run_lanes([Lane("a", fail), Lane("b", work)], jobs=2, out=io.StringIO(),
                        block=lambda name, text: blocks.append(name))
    assert results[1].value == "b done" and isinstance(results[0].error, RuntimeError)
    assert sorted(blocks) == ["a", "b"]


def test_blocks_go_to_the_callback_whole():
    got = {}
    run_lanes(
        [Lane(n, lambda out, n=n: out.write(f"{n}1\n{n}2\n")) for n in ("a", "b")],
        jobs=2, out=io.StringIO(), block=got.__setitem__,
    )
    assert got == {"a": "a1\na2\n", "b": "b1\nb2\n"}


@pytest.mark.parametrize("jobs", [1, 4])
def test_results_keep_the_lanes_order(jobs):
    results = run_lanes([Lane(str(i), lambda out, i=i: i) for i in range(6)], jobs=jobs,
                        out=io.StringIO())
    assert [r.value for r in results] == list(range(6))


def test_default_jobs_is_the_usable_cores():
    assert default_jobs() >= 1


def test_a_lanes_log_lines_go_to_its_block_and_count_in_the_one_summary():
    from dome_tasks.events import EventLog

    shared, block = io.StringIO(), io.StringIO()
    log = EventLog(shared, "text")
    lane = log.routed(block)
    lane.emit("deploy", service="silo", outcome="success")
    log.emit("deploy", service="api", outcome="success")
    assert "silo" in block.getvalue() and "silo" not in shared.getvalue()
    assert log.summary().counters == {"deploy.success": 2}
    log.emit_summary()  # text output ends with the progress summary: no `[dome] run` line
    assert "[dome] run" not in shared.getvalue()

    machine = EventLog(shared, "json")
    assert machine.routed(block) is machine  # JSON lines stay one stream
    machine.emit_summary()
    assert '"event":"run"' in shared.getvalue()


def test_a_live_display_gets_blocks_even_one_lane_at_a_time():
    got = {}
    out = io.StringIO()
    run_lanes([Lane(n, lambda s, n=n: s.write(f"{n}\n")) for n in ("a", "b")], jobs=1, out=out,
              block=got.__setitem__, buffer=True)
    assert got == {"a": "a\n", "b": "b\n"} and out.getvalue() == ""
