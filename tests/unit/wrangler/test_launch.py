"""Which node flags wrangler's launcher starts cli.js with, read from its own source."""

from __future__ import annotations

import os
from pathlib import Path

from dome_tasks.wrangler.launch import direct_argv, launcher_flags, launcher_minimum

ROOT = Path(__file__).resolve().parents[3]
PINNED = ROOT / "node_modules" / "wrangler" / "bin" / "wrangler.js"
OLDEST = (ROOT / "tests" / "fixtures" / "wrangler-oldest" / "node_modules" / "wrangler" / "bin"
          / "wrangler.js")


def test_the_flags_of_the_pinned_and_the_oldest_wrangler_are_read_from_their_launchers():
    assert launcher_flags(PINNED.read_text()) == ("--no-warnings",)
    assert launcher_flags(OLDEST.read_text()) == ("--no-warnings", "--experimental-vm-modules")
    assert launcher_minimum(PINNED.read_text()) == (22, 12, 0)


def test_a_launcher_that_does_anything_else_is_not_second_guessed():
    pinned = PINNED.read_text()
    assert launcher_flags(pinned.replace('"--no-warnings",', 'process.env.EXTRA,')) is None
    assert launcher_flags(pinned.replace("...process.argv.slice(2)", "...rest")) is None
    assert launcher_flags("#!/usr/bin/env node\nrequire('../wrangler-dist/cli.js')\n") is None


def _fake_wrangler(tmp_path: Path, launcher: str) -> tuple[str, dict[str, str]]:
    package = tmp_path / "node_modules" / "wrangler"
    (package / "bin").mkdir(parents=True)
    (package / "wrangler-dist").mkdir()
    (package / "wrangler-dist" / "cli.js").write_text("")
    (package / "bin" / "wrangler.js").write_text(launcher)
    link = tmp_path / "node_modules" / ".bin" / "wrangler"
    link.parent.mkdir()
    link.symlink_to(package / "bin" / "wrangler.js")
    node = tmp_path / "nodebin" / "node"
    node.parent.mkdir()
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    return str(link), {"PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_the_launcher_is_replaced_by_the_node_it_would_start(tmp_path):
    wrangler, env = _fake_wrangler(tmp_path, PINNED.read_text())
    argv = direct_argv([wrangler, "deploy", "--env", "staging"], env, lambda node: (24, 1, 0))
    cli = str(tmp_path / "node_modules" / "wrangler" / "wrangler-dist" / "cli.js")
    assert argv == [str(tmp_path / "nodebin" / "node"), "--no-warnings", cli, "deploy", "--env",
                    "staging"]


def test_a_node_older_than_the_launcher_allows_keeps_the_launcher(tmp_path):
    wrangler, env = _fake_wrangler(tmp_path, PINNED.read_text())
    assert direct_argv([wrangler, "deploy"], env, lambda node: (20, 9, 0)) == [wrangler, "deploy"]
    assert direct_argv([wrangler, "deploy"], env, lambda node: None) == [wrangler, "deploy"]


def test_other_commands_run_as_given(tmp_path):
    _, env = _fake_wrangler(tmp_path, PINNED.read_text())
    for argv in (["pnpm", "exec", "wrangler", "deploy"], ["/bin/sh", "-c", "true"], []):
        assert direct_argv(argv, env, lambda node: (24, 1, 0)) == argv
