"""A manifest text that passed dome's schema once is not checked by jsonschema again (nor is
jsonschema imported); an edit, a missing file or a broken cache never hides a problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dome_tasks.errors import ManifestError
from dome_tasks.manifest.loader import load
from tests.helpers import ROOT

GOOD = """\
version: 1
defaults: {compatibility_date: "2025-01-01", main: src/index.js}
environments:
  production: {suffix: ""}
services:
  silo:
    kv_namespaces: {CACHE: {id: DEV_KV}}
"""
WARNING = ("dome.yaml:7: services.silo.kv_namespaces.CACHE.id: 'DEV_KV' is not a valid KV "
           "namespace id: expected 32 hexadecimal characters; wrangler reads it, but a deploy "
           "with it fails until it is replaced")
PROBE = ("import sys; from dome_tasks.manifest.loader import load; load(sys.argv[1]); "
         "print('jsonschema' in sys.modules)")


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "services/silo/src").mkdir(parents=True)
    (tmp_path / "services/silo/src/index.js").write_text("export default {}\n")
    (tmp_path / "dome.yaml").write_text(GOOD)
    (tmp_path / ".dome").mkdir()  # the project's own folder (rendered configs, state)
    return tmp_path


def cache_files(root: Path) -> list[Path]:
    return sorted((root / ".dome" / "cache").glob("manifest-*.json"))


def imports_jsonschema(root: Path) -> bool:
    run = subprocess.run([sys.executable, "-c", PROBE, str(root / "dome.yaml")], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return run.stdout.strip() == "True"


def test_a_second_load_skips_the_schema_pass_and_its_import(workspace):
    assert cache_files(workspace) == []
    assert imports_jsonschema(workspace)  # first load: validated, remembered
    assert len(cache_files(workspace)) == 1
    assert not imports_jsonschema(workspace)  # same text: no jsonschema at all
    (workspace / "dome.yaml").write_text(GOOD.replace("silo:", "silo:\n    workers_dev: true"))
    assert imports_jsonschema(workspace)  # edited: validated again


def test_warnings_are_repeated_from_the_cache(workspace):
    assert load("dome.yaml").warnings == (WARNING,)
    assert cache_files(workspace)
    assert load("dome.yaml").warnings == (WARNING,)


def test_an_edit_that_breaks_the_manifest_is_reported(workspace):
    load("dome.yaml")
    (workspace / "dome.yaml").write_text(GOOD.replace("main: src/index.js", "mian: src/index.js"))
    with pytest.raises(ManifestError) as caught:
        load("dome.yaml")
    assert caught.value.problems == (
        "dome.yaml:2: defaults.mian: unknown key; did you mean 'main'?",)


def test_a_file_removed_after_caching_is_still_reported(workspace):
    load("dome.yaml")
    (workspace / "services/silo/src/index.js").unlink()
    warnings = load("dome.yaml").warnings
    assert WARNING in warnings
    assert any(w.startswith("dome.yaml:2: defaults.main: not built yet? 'src/index.js' does not "
                            "exist") for w in warnings)
    (workspace / "services/silo/src/index.js").write_text("export default {}\n")
    assert load("dome.yaml").warnings == (WARNING,)  # and gone once it is back


def test_a_corrupt_or_foreign_cache_is_ignored_and_replaced(workspace):
    load("dome.yaml")
    [entry] = cache_files(workspace)
    entry.write_text('{"key": [1, 2')
    assert load("dome.yaml").warnings == (WARNING,)
    assert json.loads(entry.read_text())["warnings"]  # rewritten
    key = json.loads(entry.read_text())["key"]
    (workspace / "dome.yaml").write_text(GOOD.replace("main: src/index.js", "main: 5"))
    entry.write_text(json.dumps({"key": key, "warnings": []}))  # another text's entry
    with pytest.raises(ManifestError, match="defaults.main: expected a string, got an integer"):
        load("dome.yaml")


def test_a_manifest_with_problems_is_not_remembered(workspace):
    (workspace / "dome.yaml").write_text(GOOD.replace("version: 1", "version: 2"))
    with pytest.raises(ManifestError):
        load("dome.yaml")
    assert cache_files(workspace) == []


def test_a_project_without_its_dome_folder_gets_none_from_a_load(workspace):
    (workspace / ".dome").rmdir()
    assert load("dome.yaml").warnings == (WARNING,)
    assert not (workspace / ".dome").exists()  # a load alone writes nothing


def test_a_cache_that_cannot_be_written_never_fails_a_load(workspace):
    (workspace / ".dome" / "cache").write_text("not a folder")
    assert load("dome.yaml").warnings == (WARNING,)
    assert load("dome.yaml").services == ("silo",)


def test_keys_dropped_with_a_warning_stay_dropped_when_the_cache_answers(workspace):
    """A key dome accepts but leaves out (wrangler ignores it) is left out of the second load
    too, not refused as unknown nor rendered."""
    (workspace / "dome.yaml").write_text(GOOD.replace("silo:\n", (
        "silo:\n    miniflare: {kv_persist: true}\n"
        "    services: {SELF: {service: silo, environment: production}}\n")))
    first = load("dome.yaml")
    assert cache_files(workspace)
    again = load("dome.yaml")
    assert again.warnings == first.warnings and len(first.warnings) == 3
    for manifest in (first, again):
        config = manifest.resolve("silo", "production")
        assert "miniflare" not in config.extra
        assert config.services[0].worker == "silo"
