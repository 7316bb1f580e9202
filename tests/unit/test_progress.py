"""The progress board: states while a run goes on, and the summary as text, table or JSON."""

from __future__ import annotations

import io
import json
import re

import pytest

from dome_tasks.plan.steps import Step, WriteFile
from dome_tasks.progress import Board, Outcome


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def finished(board: Board) -> Board:
    board.done(Outcome("silo", "staging", "deployed", "silo-staging", "0a1b2c3d4e5f",
                       "https://silo-staging.x.workers.dev", "healthy", 1234))
    board.done(Outcome("api", "staging", "skipped", "api-staging", "99887766aa", None, None, 0))
    board.done(Outcome("web", "staging", "failed", "web-staging", note="build web failed"))
    board.not_run(["late", "silo"], "wave 1 failed")
    return board


def test_the_plain_summary_has_one_aligned_row_per_service():
    out = io.StringIO()
    board = finished(Board(out, ["silo", "api", "web", "late"], "staging"))
    board.summary()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("deploy to staging: 1 deployed, 1 skipped, 1 failed, 1 not run (")
    assert lines[1].split() == ["service", "environment", "result", "version", "url", "health",
                                "duration"]
    assert lines[2].split() == ["silo", "staging", "deployed", "0a1b2c3d",
                                "https://silo-staging.x.workers.dev", "healthy", "1.2s"]
    assert lines[3].split() == ["api", "staging", "skipped", "99887766", "-", "0.0s"]
    assert lines[4].split()[:3] == ["web", "staging", "failed"]
    assert lines[5].split()[:4] == ["late", "staging", "not", "run"]
    assert len({line.index("environment") for line in lines[1:2]}) == 1
    assert "  web: build web failed" in lines and "  late: wave 1 failed" in lines
    assert "\x1b[" not in out.getvalue()


def test_the_json_summary_is_machine_readable():
    out = io.StringIO()
    finished(Board(out, ["silo", "api", "web", "late"], "staging", fmt="json")).summary()
    data = json.loads(out.getvalue())
    assert data["ok"] is False
    assert data["counts"] == {"deployed": 1, "skipped": 1, "failed": 1, "not run": 1}
    assert [s["service"] for s in data["services"]] == ["silo", "api", "web", "late"]
    assert data["services"][0]["version"] == "0a1b2c3d4e5f" and data["services"][0]["duration_ms"] == 1234


def test_a_terminal_gets_a_live_board_and_a_table(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("TERM", raising=False)
    out = Terminal()
    board = Board.open(["silo", "api"], "staging", out=out)
    assert board.live
    with board:
        board.step(Step("build", "build silo", WriteFile(__file__, ""), "silo", "staging"))  # type: ignore[arg-type]
        board._live.refresh()
        board.done(Outcome("silo", "staging", "deployed", version="0a1b2c3d"))
        board.block("silo", "→ build silo\n")
    board.summary()
    text = out.getvalue()
    assert "building" in text  # the live row while it built
    assert "── silo: deployed ──" in text and "→ build silo" in text
    assert "deploy to staging: 1 deployed" in text
    assert not re.search(r"\x1b\[(3[0-7]|9[0-7]|38;)", text)  # NO_COLOR: no colour codes


def test_one_service_or_a_pipe_gets_no_live_board(monkeypatch):
    monkeypatch.delenv("TERM", raising=False)
    assert not Board.open(["silo"], "staging", out=Terminal()).live
    assert not Board.open(["silo", "api"], "staging", out=io.StringIO()).live
    monkeypatch.setenv("TERM", "dumb")
    assert not Board.open(["silo", "api"], "staging", out=Terminal()).live


def test_steps_map_to_what_a_service_is_doing():
    board = Board(io.StringIO(), ["silo"], "staging")
    for event, state in (("build", "building"), ("deploy", "uploading"), ("verify", "verifying"),
                         ("migrate", "migrating")):
        board.step(Step(event, event, WriteFile(__file__, ""), "silo", "staging"))  # type: ignore[arg-type]
        assert board._rows["silo"].state == state


LONG = "https://constellation-staging.my-team-with-a-long-name.workers.dev"


@pytest.mark.parametrize("columns", [80, 200])
def test_the_summary_fits_the_terminal_and_never_breaks_a_url(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.delenv("TERM", raising=False)
    board = Board(services=["constellation", "silo"], environment="staging", title="deploy")
    board.done(Outcome("constellation", "staging", "deployed", "constellation-staging",
                       "0123456789abcdef", LONG, "healthy", 1500))
    board.done(Outcome("silo", "staging", "deployed", "silo-staging", "fedcba9876543210",
                       "api-staging.example.com/*", "healthy", 900))
    out = Terminal()
    board.summary(out)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()  # colours take no room
    assert max(len(line) for line in lines) <= columns
    assert any(LONG in line for line in lines), "the URL is whole on one line"
    assert any("api-staging.example.com/*" in line for line in lines)
    if columns == 80:  # the list form: each service's URL on a line of its own
        assert f"    {LONG}" in lines
