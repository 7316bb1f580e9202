"""The no-op skip's pure parts: the inputs' digest, the last good deploy, the decision."""

from __future__ import annotations

import dataclasses
import json

from dome_tasks.lifecycle.ledger import LedgerRecord
from dome_tasks.lifecycle.skip import inputs_digest, last_good_deploy, unchanged, wrangler_version
from dome_tasks.manifest.loader import load
from dome_tasks.plan.target import render_target
from dome_tasks.testing.workspace import generate_workspace


def target(tmp_path):
    manifest = load(generate_workspace(tmp_path, services=2, waves=1))
    return render_target(manifest, manifest.resolve("s01", "staging"))


def test_the_digest_follows_sources_build_output_config_and_wrangler(tmp_path):
    t = target(tmp_path)
    folder = t.config.service_dir
    before = inputs_digest(t, "wrangler@4.86.0")
    assert before == inputs_digest(t, "wrangler@4.86.0")

    assert inputs_digest(t, "wrangler@4.87.0") != before
    assert inputs_digest(dataclasses.replace(t, text=t.text + "# x\n"), "wrangler@4.86.0") != before

    (folder / "dist").mkdir()
    (folder / "dist" / "out.js").write_text("built")
    built = inputs_digest(t, "wrangler@4.86.0")
    assert built != before
    (folder / "dist" / "out.js").write_text("built again")
    assert inputs_digest(t, "wrangler@4.86.0") != built


def test_installed_packages_and_tool_state_are_not_inputs(tmp_path):
    t = target(tmp_path)
    before = inputs_digest(t, "w")
    for name in ("node_modules", ".wrangler", ".dome", ".git"):
        (t.config.service_dir / name).mkdir()
        (t.config.service_dir / name / "file").write_text("noise")
    assert inputs_digest(t, "w") == before


def test_a_renamed_file_changes_the_digest(tmp_path):
    t = target(tmp_path)
    before = inputs_digest(t, "w")
    src = t.config.service_dir / "src"
    (src / "index.js").rename(src / "main.js")
    assert inputs_digest(t, "w") != before


def test_wrangler_version_is_read_from_its_package(tmp_path):
    package = tmp_path / "node_modules" / "wrangler"
    (package / "bin").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "wrangler", "version": "4.86.0"}))
    (package / "bin" / "wrangler.js").write_text("")
    link = tmp_path / "node_modules" / ".bin" / "wrangler"
    link.parent.mkdir()
    link.symlink_to(package / "bin" / "wrangler.js")
    assert wrangler_version(str(link)) == "wrangler@4.86.0"
    script = tmp_path / "my-wrangler"
    script.write_text("#!/bin/sh\n")
    assert wrangler_version(str(script)).startswith("file:")


def record(kind, outcome="success", version="v1", digest="d", worker="s01-staging"):
    return LedgerRecord(kind=kind, service="s01", environment="staging", outcome=outcome,
                        worker=worker, version_id=version, extra={"digest": digest})


def test_the_last_good_deploy_is_the_newest_change_of_what_serves():
    deploy = record("deploy")
    assert last_good_deploy([deploy], "s01-staging") == deploy
    assert last_good_deploy([deploy, record("verify"), record("migrate")], "s01-staging") == deploy
    assert last_good_deploy([deploy, record("deploy", "failure", None)], "s01-staging") == deploy
    assert last_good_deploy([deploy, record("rollback", version="v0")], "s01-staging") is None
    assert last_good_deploy([deploy, record("canary", version="v2")], "s01-staging") is None
    assert last_good_deploy([deploy, record("deploy", "unhealthy")], "s01-staging") is None
    assert last_good_deploy([deploy], "s02-staging") is None


def test_skip_only_when_the_digest_and_the_live_version_match():
    deploy = record("deploy")
    assert unchanged(deploy, "d", "v1").record == deploy
    assert unchanged(deploy, "other", "v1") is None  # inputs changed
    assert unchanged(deploy, "d", "v2") is None  # someone changed what serves
    assert unchanged(deploy, "d", None) is None  # cannot tell: deploy
    assert unchanged(None, "d", "v1") is None
    assert "v1" in unchanged(deploy, "d", "v1").reason()


def test_a_dependents_digest_follows_the_interface_of_what_it_binds_to(tmp_path):
    from dome_tasks.lifecycle.skip import interface_files, interface_globs

    manifest_path = generate_workspace(tmp_path, services=2, waves=2)  # s02 binds to s01
    text = manifest_path.read_text().replace("  s01:\n", "  s01:\n    interface: [types/*.d.ts]\n", 1)
    manifest_path.write_text(text)
    manifest = load(manifest_path)
    upstream_config = manifest.resolve("s01", "staging")
    dependent = render_target(manifest, manifest.resolve("s02", "staging"))
    assert interface_globs(manifest_path)["s01"] == ["types/*.d.ts"]
    s01 = upstream_config.service_dir
    (s01 / "types").mkdir()
    (s01 / "types" / "api.d.ts").write_text("export type A = 1;")
    (s01 / "src" / "private.js").write_text("export const x = 1;")

    def digest():
        files = interface_files(upstream_config, interface_globs(manifest_path)["s01"])
        return inputs_digest(dependent, "w", {"s01": files})

    before = digest()
    (s01 / "src" / "private.js").write_text("export const x = 2;")  # not its interface
    assert digest() == before
    (s01 / "types" / "api.d.ts").write_text("export type A = 2;")  # an interface glob
    changed = digest()
    assert changed != before
    (s01 / "src" / "index.js").write_text("export default {};")  # its entry module
    assert digest() != changed
