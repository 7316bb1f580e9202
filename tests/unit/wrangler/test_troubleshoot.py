"""Classifying real wrangler 4.86.0 failure output (texts from docs/wrangler-api-notes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dome_tasks.wrangler.troubleshoot import (
    classify,
    error_codes,
    error_lines,
    explain,
    failure_records,
    strip_ansi,
)

RED = "\x1b[31m✘ \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m \x1b[1m"
RESET = "\x1b[0m"
BUG = "  If you think this is a bug, please open an issue at: https://github.com/cloudflare/workers-sdk/issues/new/choose"


def api_error(path: str, message: str, code: int) -> str:
    return f"{RED}A request to the Cloudflare API ({path}) failed.{RESET}\n\n  {message} [code: {code}]\n  \n{BUG}\n"


def failed(code: int | None, message: str) -> str:
    record = {"type": "command-failed", "version": 1, "message": message}
    if code is not None:
        record["code"] = code
    import json

    return '{"type":"wrangler-session","version":1}\n' + json.dumps(record) + "\n"


SERVICES = "/accounts/acc1/workers/services/silo-staging"

CASES = [
    # E02: 403 code 10000 on GET services
    ("authentication", api_error(SERVICES, "Authentication error", 10000), failed(10000, "A request…"), 10000),
    # E04: 401 code 10001
    ("authentication", api_error(SERVICES, "Unable to authenticate request", 10001), None, 10001),
    # no token in a non-interactive shell (observed)
    ("authentication", f"{RED}In a non-interactive environment, it's necessary to set a CLOUDFLARE_API_TOKEN "
     f"environment variable for wrangler to work.{RESET}\n", None, None),
    # 10007 on the worker itself
    ("resource-not-found", api_error("/accounts/acc1/workers/scripts/silo-staging/deployments",
     "This Worker (silo-staging) does not exist on your account. [workers.api.error.script_not_found]",
     10007), failed(10007, "A request to the Cloudflare API (/accounts/acc1/workers/scripts/silo-staging/deployments) failed."), 10007),
    # D1 name not in the config (local failure, no code)
    ("resource-not-found", f"{RED}Couldn't find a D1 DB with the name or binding 'nope' in your wrangler.toml file.{RESET}\n",
     None, None),
    # the entry point is missing (observed)
    ("configuration", f'{RED}The entry-point file at "src/missing.js" was not found.{RESET}\n\n  \n'
     "  This might mean that your entry-point file needs to be generated.\n", None, None),
    # schema error (observed)
    ("configuration", f"{RED}Processing w2.toml configuration:{RESET}\n\n"
     '    - "d1_databases[0]" bindings should have a string "binding" field but got {"binding":5}.\n', None, None),
    ("configuration", f"{RED}Missing required environment variable: API_URL{RESET}\n", None, None),
    # a not-found about ANOTHER worker than the one deployed: a service binding target
    ("service-binding", api_error("/accounts/acc1/workers/scripts/constellation-staging", "workers.api.error.script_not_found", 10007),
     None, 10007),
    ("service-binding", f"{RED}Service binding failed: could not resolve service 'silo-staging'{RESET}\n", None, None),
    # E17: SQL error in a migration (no code in the record, code in the message)
    ("sql", f"{RED}Migration 0002_broken.sql failed with the following errors:{RESET}\n"
     f'{RED}near "creat": syntax error: SQLITE_ERROR [code: 7500]{RESET}\n',
     failed(None, 'near "creat": syntax error: SQLITE_ERROR [code: 7500]'), 7500),
    # a dependency not installed (wrangler 4.164.0, observed in a real pnpm monorepo before
    # `pnpm install`): a bundling failure, not a configuration one
    ("bundle", f"{RED}Build failed with 4 errors:{RESET}\n\n  {RED}Could not resolve \"toucan-js\"{RESET}\n"
     "  \n      ../../../../apps/echoback/src/helpers/sentry.ts:1:23:\n"
     "    To fix this, you can add an entry to \"alias\" in your Wrangler configuration.\n",
     failed(None, 'Build failed with 4 errors:\n  Could not resolve "toucan-js"'), None),
    # E06: 429
    ("rate-limited", api_error(SERVICES, "Please wait and consider throttling your request speed", 971), None, 971),
    # E21: connection refused
    ("network", "\x1b[33m▲ [WARNING]\x1b[0m A fetch request failed, likely due to a connectivity issue.\n"
     f"{RED}fetch failed{RESET}\n", failed(None, "fetch failed"), None),
    # E13: HTML 502
    ("api-error", f"{RED}Received a malformed response from the API{RESET}\n  <html><body>502 Bad Gateway</body></html>\n",
     failed(None, "Received a malformed response from the API"), None),
]


@pytest.mark.parametrize("expected, stderr, records, code", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_classify_real_outputs(expected, stderr, records, code) -> None:
    diagnosis = classify(stderr, records=records, worker="silo-staging")
    assert diagnosis is not None
    assert diagnosis.case.key == expected
    assert diagnosis.code == code


def test_records_win_over_text() -> None:
    diagnosis = classify("✘ [ERROR] something about a config file", records=failed(10000, "auth"))
    assert diagnosis.case.key == "authentication"


def test_unknown_failure_is_none() -> None:
    assert classify("✘ [ERROR] the moon is in the wrong phase\n") is None
    assert classify("") is None


def test_explain_prints_the_seed_remedies() -> None:
    text = explain(classify(api_error(SERVICES, "Authentication error", 10000)))
    assert "deployment guide 9.1.1" in text and "[code: 10000]" in text
    assert "Run `wrangler login` to authenticate" in text
    assert "Check that you have the correct permissions in Cloudflare" in text
    binding = explain(classify("✘ [ERROR] Service not found", worker="x"))
    assert "9.1.4" in binding and "Verify that the service exists and is deployed" in binding


def test_helpers(tmp_path: Path) -> None:
    text = api_error(SERVICES, "Authentication error", 10000)
    assert "\x1b" not in strip_ansi(text)
    assert error_codes(text) == [10000]
    assert error_lines(text) == [f"A request to the Cloudflare API ({SERVICES}) failed.",
                                 "Authentication error [code: 10000]"]
    out = tmp_path / "out.ndjson"
    out.write_text(failed(10007, "x") + "garbage\n")
    assert failure_records(out) == [{"type": "command-failed", "version": 1, "message": "x", "code": 10007}]
    assert failure_records(tmp_path / "missing.ndjson") == []


MIGRATION_FAILED = f"{RED}Migration 0002_more.sql failed with the following errors:{RESET}\n"


@pytest.mark.parametrize(
    ("second_line", "expected", "code"),
    [
        ("An unknown error has occurred [code: 10013]", "api-error", 10013),  # a 500 on /query
        ("Please wait and consider throttling your request speed [code: 971]", "rate-limited", 971),
        ("other side closed", "network", None),  # the connection dropped mid-answer
        ("fetch failed", "network", None),
        ('near "creat": syntax error: SQLITE_ERROR [code: 7500]', "sql", 7500),
    ],
)
def test_a_failed_migration_is_sql_only_when_sqlite_says_so(second_line, expected, code) -> None:
    stderr = MIGRATION_FAILED + f"{RED}{second_line}{RESET}\n"
    diagnosis = classify(stderr, records=failed(None, second_line))
    assert (diagnosis.case.key, diagnosis.code) == (expected, code)
    assert diagnosis.migration == "0002_more.sql"


def test_remedies_name_the_migration_file_and_the_retries() -> None:
    sql = classify(MIGRATION_FAILED + f"{RED}no such table: x: SQLITE_ERROR [code: 7500]{RESET}\n")
    sql = sql.with_context(migration="services/silo/migrations/0002_more.sql", retries=0)
    assert sql.remedies[0] == (
        "Fix the SQL in services/silo/migrations/0002_more.sql; migrations before it stay applied"
    )
    transient = classify(MIGRATION_FAILED + f"{RED}An unknown error has occurred [code: 10013]{RESET}\n")
    transient = transient.with_context(retries=2)
    assert transient.remedies[0] == (
        "Cloudflare API error, retried 2 times; run the migration task again: applied migrations "
        "are skipped"
    )
    assert "Fix the SQL" not in explain(transient)
    network = classify(f"{RED}fetch failed{RESET}\n").with_context(retries=1)
    assert network.remedies[0] == "network error, retried 1 time; run the command again"


def test_a_server_error_after_the_upload_is_its_own_case() -> None:
    stdout = "Total Upload: 0.23 KiB / gzip: 0.19 KiB\nUploaded silo-staging (0.34 sec)\n"
    path = "/accounts/acc1/workers/subdomain"
    diagnosis = classify(api_error(path, "An unknown error has occurred", 10013), stdout,
                         failed(10013, f"A request to the Cloudflare API ({path}) failed."))
    assert diagnosis.case.key == "after-upload"
    assert "invoke status" in explain(diagnosis)
    before = classify(api_error(SERVICES, "An unknown error has occurred", 10013), "")
    assert before.case.key == "api-error"


WRANGLER_4164_MIGRATIONS = """\
Migrations to be applied:
┌───────────────┐
│ name          │
├───────────────┤
│ 0001_init.sql │
├───────────────┤
│ 0002_more.sql │
└───────────────┘
🚣 Executed 2 commands in 0.12ms
┌───────────────┬────────┐
│ name          │ status │
├───────────────┼────────┤
│ 0001_init.sql │ ✅     │
├───────────────┼────────┤
│ 0002_more.sql │ 🕒️    │
└───────────────┴────────┘
"""
SQL_ERROR_4164 = ("✘ [ERROR] A request to the Cloudflare API (/accounts/a/d1/database/d/query) "
                  "failed.\n\n  no such table: nowhere: SQLITE_ERROR [code: 7500]\n")


def test_wrangler_4164_names_the_failed_migration_only_in_its_status_table() -> None:
    diagnosis = classify(SQL_ERROR_4164, WRANGLER_4164_MIGRATIONS)
    assert diagnosis is not None and diagnosis.migration == "0002_more.sql"
    only_one = WRANGLER_4164_MIGRATIONS.split("🚣")[0].replace("│ 0001_init.sql │\n├───────────────┤\n", "")
    assert classify(SQL_ERROR_4164, only_one).migration == "0002_more.sql"
