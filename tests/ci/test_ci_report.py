"""The CI deploy's report (summary table, deployment URL) and the commit label of versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from ci_helpers import commit, git

from dome_tasks.ci.github import append_outputs
from dome_tasks.ci.label import MESSAGE_BYTES, commit_label, label_for
from dome_tasks.ci.report import primary_url, service_reports, summary_markdown
from dome_tasks.errors import UsageError
from dome_tasks.lifecycle.ledger import LedgerRecord

SHA = "0123456789abcdef0123456789abcdef01234567"
WORKERS = {"silo": "silo-staging", "api": "api-staging", "web": "web-staging"}


def deploy(service: str, outcome: str = "success", **fields: object) -> LedgerRecord:
    return LedgerRecord(kind="deploy", service=service, environment="staging", outcome=outcome,
                  worker=WORKERS[service], **fields)


def test_each_service_gets_its_version_url_and_health() -> None:
    records = [
        deploy("silo", version_id="v-silo", verified=True,
               extra={"targets": ["Producer for silo-jobs-staging"],  # wrangler's free text
                      "urls": ["https://silo-staging.acme.workers.dev"]}),
        deploy("api", version_id="v-api", verified=None),
        LedgerRecord(kind="verify", service="other", environment="staging", outcome="success"),
    ]
    rows = service_reports(["silo", "api", "web"], WORKERS, records)
    assert [(r.service, r.worker, r.version, r.url, r.health, r.ok) for r in rows] == [
        ("silo", "silo-staging", "v-silo", "https://silo-staging.acme.workers.dev", "healthy", True),
        ("api", "api-staging", "v-api", "", "not checked", True),
        ("web", "web-staging", "", "", "not deployed", False),
    ]
    assert primary_url(rows) == "https://silo-staging.acme.workers.dev"


def test_a_failed_or_rolled_back_deploy_is_reported_as_such() -> None:
    records = [
        deploy("silo", "failure", reason="wrangler exited 1: Authentication error [code: 10000]"),
        deploy("api", "unhealthy", version_id="v-bad", verified=False, reason="GET /health: 500"),
        LedgerRecord(kind="rollback", service="api", environment="staging", outcome="success",
               version_id="v-good", to_version="v-good", from_version="v-bad"),
    ]
    rows = service_reports(["silo", "api"], WORKERS, records)
    assert rows[0].health == "deploy failed: wrangler exited 1: Authentication error [code: 10000]"
    assert rows[1].health == "unhealthy: GET /health: 500; rolled back to v-good"
    assert not rows[0].ok and not rows[1].ok
    text = summary_markdown("staging", rows, label_for(SHA, "Fix it"))
    assert text.startswith("### Deploy to staging: 2 of 2 failed\n")
    assert f"Commit `{SHA}` (version tag `{SHA[:12]}`)." in text
    assert "| silo | silo-staging | — | — | ❌ deploy failed: wrangler exited 1" in text
    assert "| api | api-staging | `v-bad` | — | ❌ unhealthy: GET /health: 500; rolled back" in text


def test_the_table_escapes_pipes_and_newlines() -> None:
    rows = service_reports(["silo"], WORKERS, [deploy("silo", "failure", reason="a | b\nc")])
    line = summary_markdown("staging", rows).splitlines()[-1]
    assert line.endswith("❌ deploy failed: a \\| b c |")
    assert summary_markdown("staging", []).startswith("### Deploy to staging: 0 deployed")


def test_label_is_the_short_sha_and_a_message_within_cloudflares_limit() -> None:
    label = label_for(SHA, "Add the thing\n\nLong body")
    assert label.tag == SHA[:12]
    assert label.message == f"{SHA} Add the thing"
    assert label.args() == ("--tag", SHA[:12], "--message", f"{SHA} Add the thing")
    long = label_for(SHA, "é" * 200)
    assert len(long.message.encode("utf-8")) <= MESSAGE_BYTES and long.message.endswith("...")
    long.message.encode("utf-8").decode("utf-8")  # cut on a character boundary


def test_commit_label_reads_head_and_is_none_outside_git(repo: Path, tmp_path: Path) -> None:
    commit(repo, "Ship it")
    label = commit_label(repo)
    assert label is not None
    assert label.message == f"{git(repo, 'rev-parse', 'HEAD')} Ship it"
    assert commit_label(tmp_path / "nowhere") is None


def test_outputs_are_appended_and_refuse_newlines(tmp_path: Path) -> None:
    out = tmp_path / "output"
    append_outputs({"url": "https://a.example", "ledger": "/x/ledger.jsonl"}, out)
    append_outputs({"url": ""}, out)
    assert out.read_text() == "url=https://a.example\nledger=/x/ledger.jsonl\nurl=\n"
    with pytest.raises(UsageError, match="newline"):
        append_outputs({"bad": "a\nb"}, out)
    assert out.read_text().count("\n") == 3


def test_a_route_pattern_links_the_deployment_to_its_host() -> None:
    records = [deploy("api", version_id="v-api", verified=True, extra={
        "targets": ["api-staging.example.com/* (zone name: example.com)"],
        "urls": ["api-staging.example.com/*"]})]
    rows = service_reports(["api"], WORKERS, records)
    assert rows[0].url == "api-staging.example.com/*"
    assert primary_url(rows) == "https://api-staging.example.com"
