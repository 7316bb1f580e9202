"""The ledger: append-only JSON Lines, atomic appends, tolerant reads, git facts, actor."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
from pathlib import Path

import pytest

from dome_tasks.lifecycle.ledger import (
    GitFacts,
    Ledger,
    LedgerError,
    LedgerRecord,
    actor,
    git_facts,
    last_healthy_version,
    open_canary,
    parse_time,
)


def rec(kind: str = "deploy", outcome: str = "success", **kw) -> LedgerRecord:
    kw.setdefault("service", "silo")
    kw.setdefault("environment", "staging")
    return LedgerRecord(kind=kind, outcome=outcome, **kw)


def test_append_then_read_round_trips(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sub" / "ledger.jsonl")
    first = ledger.append(rec(version_id="v1", verified=True, commit="abc", dirty=False,
                              duration_ms=1500, actor="alice", time="2026-01-01T10:00:00.000Z"))
    second = ledger.append(rec("rollback", version_id="v0", from_version="v1", to_version="v0",
                               automatic=True, reason="verification failed"))
    read = ledger.read()
    assert read.problems == ()
    assert read.records == (first, second)


def test_one_line_per_record_and_no_empty_fields(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append(rec(version_id="v1"))
    lines = (tmp_path / "l.jsonl").read_text().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["kind"] == "deploy" and data["version_id"] == "v1" and data["schema"] == 1
    assert "from_version" not in data and "extra" not in data and "automatic" not in data


def test_appends_never_rewrite_existing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    ledger.append(rec(version_id="v1"))
    before = path.read_bytes()
    ledger.append(rec(version_id="v2"))
    assert path.read_bytes().startswith(before)


def test_torn_last_line_is_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    ledger.append(rec(version_id="v1"))
    with open(path, "ab") as handle:
        handle.write(b'{"kind":"deploy","service":"si')  # a crash mid-write
    read = ledger.read()
    assert [r.version_id for r in read.records] == ["v1"]
    assert len(read.problems) == 1 and read.problems[0].torn and read.problems[0].line == 2
    assert "torn" in str(read.problems[0])
    # the next append starts on a fresh line, the torn bytes stay (never rewritten)
    ledger.append(rec(version_id="v2"))
    read = ledger.read()
    assert [r.version_id for r in read.records] == ["v1", "v2"]
    assert len(read.problems) == 1 and not read.problems[0].torn


def test_garbage_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text('not json\n[1,2]\n{"kind":"nope","service":"a","environment":"b","outcome":"success"}\n'
                    '{"kind":"deploy","service":"a","environment":"b","outcome":"success","future":1}\n')
    read = Ledger(path).read()
    assert len(read.records) == 1 and read.records[0].extra == {"future": 1}
    assert [p.line for p in read.problems] == [1, 2, 3]


def test_missing_ledger_reads_empty(tmp_path: Path) -> None:
    assert Ledger(tmp_path / "none.jsonl").read().records == ()


def test_invalid_records_are_refused() -> None:
    with pytest.raises(LedgerError):
        rec("bogus")
    with pytest.raises(LedgerError):
        rec(outcome="meh")


def test_unwritable_ledger_is_a_dome_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="cannot append"):
        Ledger(blocker / "ledger.jsonl").append(rec())


def _writer(path: str, worker: int, count: int) -> None:
    ledger = Ledger(path)
    for n in range(count):
        ledger.append(rec(version_id=f"w{worker}-{n}", extra={"pad": "x" * 3000}))


def test_concurrent_writers_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    procs = [multiprocessing.Process(target=_writer, args=(str(path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    read = Ledger(path).read()
    assert read.problems == ()
    assert len(read.records) == 100
    assert len({r.version_id for r in read.records}) == 100


def test_last_healthy_version_skips_unverified_unhealthy_and_current() -> None:
    records = [
        rec(version_id="v1", verified=True),
        rec(version_id="v2", verified=True),
        rec(version_id="v3", outcome="unhealthy", verified=False),
        rec(version_id="v4"),  # not verified
        rec("canary", version_id="v5", percent=10, verified=True),  # never at 100%
        rec(version_id="v9", verified=True, environment="production"),
    ]
    assert last_healthy_version(records, "silo", "staging") == "v2"
    assert last_healthy_version(records, "silo", "staging", exclude={"v2"}) == "v1"
    assert last_healthy_version(records, "constellation", "staging") is None


def test_open_canary() -> None:
    canary = rec("canary", version_id="new", from_version="old", percent=10)
    assert open_canary([rec(version_id="old"), canary], "silo", "staging") == canary
    assert open_canary([canary, rec("promote", version_id="new")], "silo", "staging") is None
    assert open_canary([canary, rec("abort", version_id="old")], "silo", "staging") is None
    failed_promote = rec("promote", outcome="failure", version_id="new")
    assert open_canary([canary, failed_promote], "silo", "staging") == canary


def test_git_facts_in_a_real_repository(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "T")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    env_date = "2026-03-04T05:06:07+02:00"
    subprocess.run(["git", "commit", "-qm", "one"], cwd=tmp_path, check=True, capture_output=True,
                   env={"GIT_COMMITTER_DATE": env_date, "GIT_AUTHOR_DATE": env_date,
                        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    facts = git_facts(tmp_path)
    assert facts.commit and len(facts.commit) == 40
    assert facts.commit_time == "2026-03-04T03:06:07.000Z"
    assert facts.dirty is False
    (tmp_path / "a.txt").write_text("2")
    assert git_facts(tmp_path).dirty is True


def test_git_facts_outside_git_and_without_git(tmp_path: Path) -> None:
    assert git_facts(tmp_path) == GitFacts()
    assert git_facts(tmp_path, git="/nonexistent/git") == GitFacts()


def test_actor_prefers_explicit_then_ci_then_user() -> None:
    assert actor({"DOME_ACTOR": "deploy-bot", "GITHUB_ACTOR": "x"}) == "deploy-bot"
    assert actor({"GITHUB_ACTOR": "alice", "USER": "runner"}) == "github:alice"
    assert actor({"USER": "bob"}) == "bob"


def test_parse_time_accepts_z_offsets_and_dates() -> None:
    assert parse_time("2026-01-01T00:00:00Z") == parse_time("2026-01-01T01:00:00+01:00")
    assert parse_time("2026-01-01").isoformat() == "2026-01-01T00:00:00+00:00"


def test_a_symlinked_ledger_is_not_followed_out_of_the_repository(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "stolen.jsonl"
    outside.parent.mkdir()
    outside.write_text("")
    ledger_path = tmp_path / "repo" / ".dome" / "ledger.jsonl"
    ledger_path.parent.mkdir(parents=True)
    ledger_path.symlink_to(outside)
    record = LedgerRecord(kind="deploy", service="silo", environment="staging", outcome="success")
    with pytest.raises(LedgerError) as caught:
        Ledger(ledger_path).append(record)
    assert "symbolic link" in caught.value.message and str(outside) in (caught.value.hint or "")
    assert outside.read_text() == ""  # nothing written through the link
