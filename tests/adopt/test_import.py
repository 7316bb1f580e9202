"""`invoke import` as a user runs it: it writes dome.yaml, lists its guesses, proves that every
rendered config equals the intent, and never replaces a manifest without --force."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dome_tasks.manifest import json_schema
from dome_tasks.manifest.loader import load
from tests.adopt.adopt_helpers import invoke, rendered_equals_intent
from tests.helpers import ROOT

pytestmark = pytest.mark.integration


def test_import_writes_a_manifest_whose_configs_match_the_intent(redeclared: Path) -> None:
    done = invoke(redeclared, "import")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "read 2 wrangler config(s):" in out
    assert "GUESS services/api/wrangler.jsonc [env.dev]: service binding SILO: the legacy" in out
    assert out.rstrip().endswith("6 of 6 configs adopt true, judged by wrangler")
    text = (redeclared / "dome.yaml").read_text(encoding="utf-8")
    assert "  # GUESS services/silo/wrangler.toml [env.staging]: vars LOG_LEVEL taken" in text
    manifest = load(redeclared / "dome.yaml")
    assert manifest.resolve("api", "dev").services[0].worker == "silo-dev"
    assert rendered_equals_intent(redeclared) == 6


def test_the_manifest_names_a_schema_an_editor_can_open_offline(redeclared: Path) -> None:
    """The modeline's path, resolved beside dome.yaml as yaml-language-server resolves it, is
    this dome-tasks' own schema; a task run after an upgrade brings the copy up to date."""
    assert invoke(redeclared, "import").returncode == 0
    modeline = (redeclared / "dome.yaml").read_text(encoding="utf-8").splitlines()[0]
    named = redeclared / modeline.split("$schema=", 1)[1]
    assert named.read_bytes() == json_schema.PATH.read_bytes()
    named.write_text("{}", encoding="utf-8")  # as an older dome-tasks left it
    assert invoke(redeclared, "render").returncode == 0
    assert named.read_bytes() == json_schema.PATH.read_bytes()


def test_an_existing_manifest_needs_force(redeclared: Path) -> None:
    (redeclared / "dome.yaml").write_text("# mine\n", encoding="utf-8")
    refused = invoke(redeclared, "import")
    assert refused.returncode != 0
    assert "dome.yaml already exists; nothing was written" in refused.stderr
    assert "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert (redeclared / "dome.yaml").read_text() == "# mine\n"
    forced = invoke(redeclared, "import", "--force")
    assert forced.returncode == 0, forced.stderr
    first, second = (redeclared / "dome.yaml").read_text().splitlines()[:2]
    assert first == "# yaml-language-server: $schema=.dome/dome.schema.json"  # editors check it
    assert second.startswith("# dome.yaml: written by")


def test_dry_run_prints_the_manifest_and_writes_nothing(redeclared: Path) -> None:
    done = invoke(redeclared, "import", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "\nservices:\n" in done.stdout and "database_name: silo-db" in done.stdout
    assert not (redeclared / "dome.yaml").exists()


def test_a_binding_to_a_worker_outside_the_monorepo_is_kept_by_name(redeclared: Path) -> None:
    config = redeclared / "services" / "api" / "wrangler.jsonc"
    config.write_text(config.read_text().replace(
        '"services": [{ "binding": "SILO", "service": "silo" },],',
        '"services": [{ "binding": "SILO", "service": "silo" }, '
        '{ "binding": "AUTH", "service": "auth-worker" }],'), encoding="utf-8")
    done = invoke(redeclared, "import")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'auth-worker' is not an imported worker" in done.stdout
    assert "6 of 6 configs adopt true, judged by wrangler" in done.stdout
    auth = {b.binding: b for b in load(redeclared / "dome.yaml").resolve("api", "staging").services}
    assert (auth["AUTH"].service, auth["AUTH"].worker) == (None, "auth-worker")


def test_a_manifest_that_does_not_load_fails_the_proof_loudly(redeclared: Path) -> None:
    config = redeclared / "services" / "api" / "wrangler.jsonc"
    config.write_text(config.read_text().replace(  # wrangler reads it; Cloudflare refuses it
        '"compatibility_date": "2025-01-01"', '"compatibility_date": "2025-1-1"', 1),
        encoding="utf-8")
    done = invoke(redeclared, "import")
    assert done.returncode == 1
    assert "is not a valid compatibility date" in done.stdout
    assert "configs checked: the manifest does not load" in done.stdout
    assert "it was written so that you can fix it" in done.stderr
    assert (redeclared / "dome.yaml").is_file()


def test_the_corpus_imports_with_every_config_matching(corpus: Path) -> None:
    done = invoke(corpus, "import")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "read 5 wrangler config(s):" in done.stdout
    # web has no staging or development block: it is not invented there (only_in)
    assert done.stdout.rstrip().endswith("12 of 12 configs adopt true, judged by wrangler")
    assert "no [env.*] block for staging: not deployed there" in done.stdout
    assert "not-ours" not in done.stdout  # node_modules is never imported
    assert rendered_equals_intent(corpus) == 12  # the pairs that have an original to judge
    assert not (corpus / ".dome" / "build" / "staging" / "web").exists()  # no worker invented


def test_the_imported_staging_configs_pass_wranglers_own_dry_run(corpus: Path) -> None:
    assert invoke(corpus, "import").returncode == 0
    assert invoke(corpus, "render", "", "staging").returncode == 0
    wrangler = str(ROOT / "node_modules" / ".bin" / "wrangler")
    for service in ("silo", "constellation", "dome-api", "cron"):
        config = corpus / ".dome" / "build" / "staging" / service / "wrangler.toml"
        done = subprocess.run(
            [wrangler, "deploy", "--dry-run", "--outdir", str(corpus / ".dome" / "dry" / service),
             "--config", str(config)],
            cwd=corpus, capture_output=True, text=True, timeout=120, check=False,
            env={**_quiet_env(), "CI": "1"},
        )
        assert done.returncode == 0, f"{service}: {done.stdout}{done.stderr}"
        assert "WARNING" not in done.stderr.upper().replace("WARNINGS", ""), done.stderr


def _quiet_env() -> dict[str, str]:
    import os

    from dome_tasks.wrangler.env import hermetic_env

    return hermetic_env(os.environ, state_dir=Path(os.environ.get("TMPDIR", "/tmp")) / "dome-dry")
