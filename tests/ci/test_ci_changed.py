"""Changed-service detection against a real, temporary git repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ci_helpers import commit, edit, git, invoke

from dome_tasks.ci.changed import changed_services, detect_changes
from dome_tasks.errors import UsageError
from dome_tasks.manifest.loader import load


def changed(repo: Path, since: str) -> list[str]:
    return changed_services(load(repo / "sample" / "dome.yaml"), repo, since)


def test_a_commit_touching_nothing_deployable_changes_nothing(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "NOTES.md").write_text("notes\n", encoding="utf-8")
    commit(repo, "docs only")
    commit(repo, "empty")
    assert changed(repo, base) == []


def test_a_file_of_one_service_changes_that_service_only(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/constellation/src/util.js").write_text("export const x = 1;\n")
    commit(repo, "constellation helper")
    assert changed(repo, base) == ["constellation"]


def test_a_non_interface_file_of_a_bound_service_does_not_redeploy_dependents(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/silo/migrations/0003_more.sql").write_text("SELECT 1;\n")
    commit(repo, "silo migration")
    changes = detect_changes(load(repo / "sample/dome.yaml"), repo, base)
    assert list(changes.services) == ["silo"]
    assert changes.reasons["silo"] == ("sample/services/silo/migrations/0003_more.sql changed",)


def test_an_interface_change_redeploys_direct_dependents_in_deploy_order(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    with (repo / "sample/services/silo/src/index.js").open("a") as main:
        main.write("\nexport class Extra {}\n")
    commit(repo, "silo exports a new class")
    changes = detect_changes(load(repo / "sample/dome.yaml"), repo, base)
    assert list(changes.services) == ["silo", "constellation", "dome-api"]
    assert any("binds to silo, whose interface changed" in r for r in changes.reasons["dome-api"])


def test_dependents_are_not_transitive(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    with (repo / "sample/services/constellation/src/index.js").open("a") as main:
        main.write("\n// new entrypoint\n")
    commit(repo, "constellation entry module")
    assert changed(repo, base) == ["constellation", "dome-api"]


def test_a_service_manifest_entry_change_changes_that_service(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    edit(repo / "sample/dome.yaml", "SERVICE_NAME: dome-api", "SERVICE_NAME: dome-api-v2")
    commit(repo, "dome-api var")
    changes = detect_changes(load(repo / "sample/dome.yaml"), repo, base)
    assert list(changes.services) == ["dome-api"]
    assert changes.reasons["dome-api"] == ("its manifest entry changed",)


def test_comments_and_formatting_in_the_manifest_change_nothing(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    edit(repo / "sample/dome.yaml", "version: 1\n", "version: 1   # schema version\n\n")
    commit(repo, "comment")
    assert changed(repo, base) == []


def test_manifest_defaults_or_environments_change_every_service(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    edit(repo / "sample/dome.yaml", "LOG_LEVEL: info", "LOG_LEVEL: warn")
    commit(repo, "defaults")
    assert changed(repo, base) == ["silo", "constellation", "dome-api"]
    middle = git(repo, "rev-parse", "HEAD")
    edit(repo / "sample/dome.yaml", 'aliases: [stg]', 'aliases: [stg, stage]')
    commit(repo, "environments")
    changes = detect_changes(load(repo / "sample/dome.yaml"), repo, middle)
    assert list(changes.services) == ["silo", "constellation", "dome-api"]
    assert changes.reasons["silo"] == ("the manifest's 'environments' changed",)


def test_a_shared_template_changes_every_service(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sample/templates").mkdir()
    (repo / "sample/templates/wrangler.toml.j2").write_text("# custom\n")
    commit(repo, "template")
    changes = detect_changes(load(repo / "sample/dome.yaml"), repo, base)
    assert list(changes.services) == ["silo", "constellation", "dome-api"]
    assert changes.reasons["constellation"] == (
        "shared template sample/templates/wrangler.toml.j2 changed",
    )


def test_changes_accumulate_over_several_commits_and_merge_base(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/dome-api/src/extra.js").write_text("export {};\n")
    commit(repo, "one")
    edit(repo / "sample/dome.yaml", "SERVICE_NAME: silo", "SERVICE_NAME: silo2")
    commit(repo, "two")
    assert changed(repo, base) == ["silo", "dome-api"]
    assert changed(repo, "HEAD") == []


def test_a_new_service_in_the_manifest_is_changed(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    folder = repo / "sample/services/beacon/src"
    folder.mkdir(parents=True)
    (folder / "index.js").write_text("export default { fetch() { return new Response('ok'); } };\n")
    with (repo / "sample/dome.yaml").open("a") as manifest:
        manifest.write("\n  beacon:\n    path: services/beacon\n    main: src/index.js\n"
                       "    services:\n      SILO: silo\n")
    commit(repo, "new service")
    assert changed(repo, base) == ["beacon"]


def test_moving_main_in_the_manifest_redeploys_dependents(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "sample/services/silo/src/index.js", "sample/services/silo/src/worker.js")
    edit(repo / "sample/dome.yaml", "main: src/index.js", "main: src/worker.js")
    commit(repo, "silo main moved")
    assert changed(repo, base) == ["silo", "constellation", "dome-api"]


def test_interface_globs_widen_the_interface(repo: Path) -> None:
    edit(repo / "sample/dome.yaml", "    path: services/silo\n",
         "    path: services/silo\n    interface: [src/rpc/*]\n")
    load(repo / "sample/dome.yaml")  # the schema accepts interface globs
    commit(repo, "declare silo's interface")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/silo/src/rpc").mkdir()
    (repo / "sample/services/silo/src/rpc/api.js").write_text("export {};\n")
    commit(repo, "rpc")
    assert changed(repo, base) == ["silo", "constellation", "dome-api"]


def test_an_unknown_since_ref_says_to_fetch_history(repo: Path) -> None:
    with pytest.raises(UsageError, match="unknown git revision 'v9.9.9'") as caught:
        changed(repo, "v9.9.9")
    assert "fetch-depth: 0" in (caught.value.hint or "")


def test_outside_a_git_repository_is_a_clear_error(tmp_path: Path, repo: Path) -> None:
    manifest = load(repo / "sample/dome.yaml")
    with pytest.raises(UsageError, match="not inside a git repository"):
        changed_services(manifest, tmp_path, "HEAD")


def test_changed_task_prints_text_and_json(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD")
    (repo / "sample/services/constellation/src/util.js").write_text("export const x = 1;\n")
    commit(repo, "constellation helper")
    text = invoke(repo, "changed", "--since", base)
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("constellation: sample/services/constellation/src/util.js changed")
    data = json.loads(invoke(repo, "changed", "--since", base, "--json").stdout)
    assert data["services"] == ["constellation"]
    assert data["files"] == ["sample/services/constellation/src/util.js"]
    nothing = invoke(repo, "changed")  # default: HEAD~1, the last commit
    assert nothing.stdout.strip() == "constellation: sample/services/constellation/src/util.js changed"
    bad = invoke(repo, "changed", "--since", "nope")
    assert bad.returncode != 0 and "unknown git revision 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
