"""The tasks as a user types them: real invoke, real just, a recording wrangler."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import VENV_BIN, run_env

pytestmark = pytest.mark.integration


def invoke(workspace: Path, *args: str, record: Path | None = None, **kw) -> subprocess.CompletedProcess:
    env = run_env(**({"DOME_TEST_RECORD": str(record)} if record else {}))
    return subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=workspace, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120, **kw,
    )


def just(workspace: Path, *args: str, record: Path | None = None) -> subprocess.CompletedProcess:
    env = run_env(**({"DOME_TEST_RECORD": str(record)} if record else {}))
    return subprocess.run(
        [str(VENV_BIN / "just"), *args], cwd=workspace, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120,
    )


def calls(record: Path) -> list[list[str]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def normalise(argvs: list[list[str]], workspace: Path) -> list[list[str]]:
    return [[arg.replace(str(workspace), "<ws>") for arg in argv] for argv in argvs]


def test_dry_run_shows_render_and_exact_wrangler_command(workspace, recording_wrangler):
    result = invoke(workspace, "deploy-env", "silo", "staging", "--dry-run",
                    record=recording_wrangler)
    assert result.returncode == 0, result.stderr
    config = workspace / "sample/.dome/build/staging/silo/wrangler.toml"
    assert f"render silo-staging -> {config}" in result.stdout
    assert f"wrangler deploy --config {config}" in result.stdout
    assert not config.exists(), "a dry run writes nothing"
    assert calls(recording_wrangler) == [], "a dry run runs no wrangler"


def test_invoke_dry_flag_is_a_dry_run_too(workspace, recording_wrangler):
    result = invoke(workspace, "--dry", "deploy-env", "silo", "staging",
                    record=recording_wrangler)
    assert result.returncode == 0, result.stderr
    assert "wrangler deploy --config" in result.stdout
    assert calls(recording_wrangler) == []


def test_just_and_invoke_run_the_same_wrangler_commands(workspace, recording_wrangler):
    via_invoke = invoke(workspace, "deploy-env", "silo", "staging",
                        record=recording_wrangler)
    assert via_invoke.returncode == 0, via_invoke.stderr
    invoked = calls(recording_wrangler)
    recording_wrangler.unlink()
    via_just = just(workspace, "deploy-env", "silo", "staging", record=recording_wrangler)
    assert via_just.returncode == 0, via_just.stderr
    config = str(workspace / "sample/.dome/build/staging/silo/wrangler.toml")
    assert invoked == [  # pending D1 migrations first, then the new code
        ["d1", "migrations", "apply", "silo-db-staging", "--config", config, "--remote"],
        ["deploy", "--config", config],
    ]
    assert calls(recording_wrangler) == invoked


def test_no_migrate_deploys_the_code_only(workspace, recording_wrangler):
    result = invoke(workspace, "deploy-env", "silo", "staging", "--no-migrate",
                    record=recording_wrangler)
    assert result.returncode == 0, result.stderr
    config = str(workspace / "sample/.dome/build/staging/silo/wrangler.toml")
    assert calls(recording_wrangler) == [["deploy", "--config", config]]


def test_a_dry_run_deploy_shows_the_migrations_before_the_code(workspace, recording_wrangler):
    result = invoke(workspace, "deploy-env", "silo", "staging", "--dry-run",
                    record=recording_wrangler)
    assert result.returncode == 0, result.stderr
    migrate = result.stdout.index("d1 migrations apply silo-db-staging")
    assert migrate < result.stdout.index("deploy --config")
    assert calls(recording_wrangler) == []


def test_deploy_all_to_production_runs_in_dependency_order(workspace, recording_wrangler):
    result = invoke(workspace, "deploy", "--yes", record=recording_wrangler)
    assert result.returncode == 0, result.stderr
    deployed = [Path(argv[2]).parent.name for argv in calls(recording_wrangler)
                if argv[0] == "deploy"]
    assert deployed == ["silo", "constellation", "dome-api"]


def test_production_without_terminal_or_yes_is_refused(workspace, recording_wrangler):
    result = invoke(workspace, "deploy", "silo", record=recording_wrangler)
    assert result.returncode != 0
    assert "production is protected" in result.stderr
    assert "--yes" in result.stderr
    assert "Traceback" not in result.stderr
    assert calls(recording_wrangler) == []


def test_db_migrate_staging_applies_silo_migrations_remotely(workspace, recording_wrangler):
    result = invoke(workspace, "db-migrate-staging", record=recording_wrangler)
    assert result.returncode == 0, result.stderr
    config = str(workspace / "sample/.dome/build/staging/silo/wrangler.toml")
    assert calls(recording_wrangler) == [
        ["d1", "migrations", "apply", "silo-db-staging", "--config", config, "--remote"]
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("deploy-env", "sillo", "staging"), "unknown service 'sillo'"),
        (("deploy-env", "silo", "stagin"), "unknown environment 'stagin'"),
    ],
)
def test_bad_arguments_give_one_clear_message(workspace, recording_wrangler, args, expected):
    result = invoke(workspace, *args, record=recording_wrangler)
    assert result.returncode != 0
    assert expected in result.stderr
    assert "did you mean" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (workspace / "sample/.dome").exists(), "nothing written"
    assert calls(recording_wrangler) == [], "wrangler not run"


def test_malformed_manifest_names_file_and_line(workspace, recording_wrangler):
    manifest = workspace / "sample/dome.yaml"
    manifest.write_text(manifest.read_text().replace("    main: src/index.js\n", "    main: [src/index.js\n", 1))
    result = invoke(workspace, "deploy-env", "silo", "staging",
                    record=recording_wrangler)
    assert result.returncode != 0
    assert "dome.yaml:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (workspace / "sample/.dome").exists()
    assert calls(recording_wrangler) == []


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (("invoke", "deploy", "silo", "--yes"), ["silo"]),
        (("just", "deploy", "silo"), ["silo"]),
        (("just", "deploy"), ["silo", "constellation", "dome-api"]),
        (("invoke", "deploy", "--yes"), ["silo", "constellation", "dome-api"]),
    ],
)
def test_deploy_words_do_what_the_seed_says(workspace, recording_wrangler, command, expected):
    """5.1.1 and 5.1.3: `deploy SERVICE` deploys one service, `deploy` all, to production."""
    env = run_env(DOME_TEST_RECORD=str(recording_wrangler), INVOKE_DOME_YES="1")
    result = subprocess.run([str(VENV_BIN / command[0]), *command[1:]], cwd=workspace, env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    deployed = [Path(argv[2]).parent for argv in calls(recording_wrangler) if argv[0] == "deploy"]
    assert [path.name for path in deployed] == expected
    assert {path.parent.name for path in deployed} == {"production"}


def test_doctor_reports_the_prerequisites(workspace, recording_wrangler):
    result = invoke(workspace, "doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("node", "wrangler", "just", "manifest"):
        assert any(line.startswith("ok ") and f" {name} " in line for line in result.stdout.splitlines()), name
    assert "3 services" in result.stdout


def test_doctor_fails_on_a_broken_manifest(workspace, recording_wrangler):
    manifest = workspace / "sample/dome.yaml"
    manifest.write_text(manifest.read_text().replace("d1_databases:", "d1_databses:", 1))
    result = invoke(workspace, "doctor")
    assert result.returncode == 1
    assert "did you mean 'd1_databases'" in result.stdout
    assert "manifest need attention" in result.stderr


def test_invoke_emulator_serves_in_the_foreground_until_ctrl_c(workspace):
    import signal
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([str(VENV_BIN / "invoke"), "emulator", "--port", str(port)], cwd=workspace,
                              env=run_env(), stdout=subprocess.PIPE, text=True)
    try:
        lines = [server.stdout.readline() for _ in range(2)]
        assert lines[0].strip() == f"Cloudflare API emulator listening on http://127.0.0.1:{port}/client/v4"
        exports = {}
        while (line := server.stdout.readline().strip()) != "Press Ctrl-C to stop.":
            key, _, value = line.removeprefix("export ").partition("=")
            exports[key] = value
        request = urllib.request.Request(
            f"{exports['CLOUDFLARE_API_BASE_URL']}/user/tokens/verify",
            headers={"Authorization": f"Bearer {exports['CLOUDFLARE_API_TOKEN']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer)["success"] is True
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=20) == 0
    assert "emulator stopped" in server.stdout.read()


def test_adopting_repo_gets_a_delegating_block_and_its_recipes_as_tasks(tmp_path):
    """README's adoption steps 3 and 4 on a repository with its own small justfile."""
    (tmp_path / "justfile").write_text("# Build everything\nbuild:\n    @echo built\n")
    (tmp_path / "tasks.py").write_text(
        "from dome_tasks.collection import namespace\n"
        "ns = namespace(manifest='dome.yaml', justfile='justfile')\n"
    )
    run = lambda *argv: subprocess.run(argv, cwd=tmp_path, env=run_env(), capture_output=True,  # noqa: E731
                                       text=True, timeout=60)
    assert run(str(VENV_BIN / "invoke"), "just.sync").returncode == 0
    text = (tmp_path / "justfile").read_text()
    assert text.startswith("# Build everything\nbuild:\n")
    assert '[positional-arguments]\ndeploy *args:\n    @{{dome_invoke}} dome.deploy "$@"\n' in text
    assert run(str(VENV_BIN / "invoke"), "just.check").returncode == 0
    assert run(str(VENV_BIN / "invoke"), "build").stdout == "built\n"
    listing = run(str(VENV_BIN / "just"), "--list").stdout
    assert "deploy-env *args" in listing and "build" in listing


@pytest.mark.parametrize(("args", "extra_env", "expected"), [
    (["canary", "silo", "staging", "--percent", "abc", "--dry-run"], {},
     "--percent 'abc' is not a whole number from 1 to 99"),
    (["verify", "silo", "staging", "--dry-run"], {"INVOKE_DOME_VERIFY_DEADLINE": "abc"},
     "INVOKE_DOME_VERIFY_DEADLINE='abc' is not a number of seconds"),
    (["deploy-env", "silo", "staging", "--dry-run"], {"INVOKE_DOME_LOG_FORMAT": "xml"},
     "INVOKE_DOME_LOG_FORMAT='xml' is not a log format"),
])
def test_bad_settings_and_flags_are_one_message_without_traceback(workspace, recording_wrangler,
                                                                  args, extra_env, expected):
    env = run_env(DOME_TEST_RECORD=str(recording_wrangler), **extra_env)
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), *args], cwd=workspace, env=env, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert expected in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert calls(recording_wrangler) == []


def test_history_json_into_a_pipe_that_closes_early_ends_quietly(workspace: Path) -> None:
    """`invoke history --json | head -c 100`: no BrokenPipe traceback, exit 0."""
    from dome_tasks.lifecycle.ledger import LedgerRecord

    ledger = workspace / "sample" / ".dome" / "ledger.jsonl"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    record = LedgerRecord(kind="deploy", service="silo", environment="staging",
                          outcome="success", worker="silo-staging", version_id="v1")
    ledger.write_text((record.to_json() + "\n") * 20000)
    done = subprocess.run(
        f"'{VENV_BIN / 'invoke'}' history --json | head -c 100", shell=True,
        cwd=workspace / "sample", env=run_env(CLOUDFLARE_API_TOKEN=""), capture_output=True,
        text=True, timeout=120, check=False)
    assert len(done.stdout) == 100 and done.stdout.startswith("{")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_doctor_finds_a_template_that_render_would_fail_on(workspace: Path) -> None:
    from dome_tasks.cli.doctor import run_checks

    manifest = workspace / "sample" / "dome.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1\n", "version: 1\ntemplates: tpl\n", 1))
    (workspace / "sample" / "tpl").mkdir()
    (workspace / "sample" / "tpl" / "wrangler.toml.j2").write_text('{% include "nope.j2" %}\n')
    (render,) = [c for c in run_checks(manifest) if c.name == "render"]
    assert not render.ok and "template 'nope.j2' not found" in render.detail


def test_invoke_list_shows_each_task_once(workspace):
    listing = invoke(workspace, "--list")
    assert listing.returncode == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()[1:]
             if line.startswith("  ") and not line.startswith("   ")]
    assert "deploy-env" in names and "dome.deploy-env" not in names
    assert len(names) == len(set(names)) and not [n for n in names if n.startswith("dome.")]
    assert invoke(workspace, "--list").stdout == listing.stdout, "from the cache: the same list"
    dome_only = invoke(workspace, "--list", "dome")
    assert ".deploy-env" in dome_only.stdout.split()
    assert invoke(workspace, "dome.render", "silo", "staging").returncode == 0, "dome.NAME still runs"


@pytest.mark.parametrize(("words", "first"), [("--list", "Available tasks:"),
                                               ("logs --help", "Usage: inv[oke] [--core-opts] logs")])
def test_a_listing_or_help_read_only_in_part_ends_without_a_traceback(workspace, words, first):
    """`invoke --list | head -1`, `invoke logs --help | head -1`: the reader closes the pipe
    early."""
    shell = f"{VENV_BIN / 'invoke'} {words} | head -1"
    done = subprocess.run(["bash", "-c", shell], cwd=workspace, env=run_env(), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert done.stdout.startswith(first)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


@pytest.mark.parametrize("argv", [["deploy-env", "silo", "staging", "--dry-rn"],
                                  ["deploy-env", "--dry-rn", "silo", "staging"],
                                  ["db-migrate-dev", "--dry-rn"]])
def test_a_mistyped_flag_is_named_with_the_flag_meant(workspace, recording_wrangler, argv):
    result = invoke(workspace, *argv, record=recording_wrangler)
    assert result.returncode == 1
    assert result.stderr.startswith(f"'{argv[0]}' has no flag '--dry-rn': did you mean --dry-run?")
    assert "Traceback" not in result.stderr and calls(recording_wrangler) == []


@pytest.mark.parametrize(("argv", "needs", "example", "choices"), [
    (["logs", "silo"], "'logs' needs ENV (usage: logs SERVICE ENV)", "invoke logs silo staging",
     ["  ENV: development (dev), staging (stg), production (prod), local"]),
    (["deploy-env", "silo", "--dry-run"],
     "'deploy-env' needs ENV (usage: deploy-env [OPTIONS] SERVICE ENV)",
     "invoke deploy-env silo staging", ["  ENV: development (dev), staging"]),
    (["rollback"],
     "'rollback' needs SERVICE and ENV (usage: rollback [OPTIONS] SERVICE ENV [VERSION])",
     "invoke rollback silo production --yes",
     ["  SERVICE: silo, constellation, dome-api", "  ENV: development (dev)"]),
])
def test_a_missing_word_is_named_with_usage_example_and_choices(workspace, recording_wrangler,
                                                                 argv, needs, example, choices):
    result = invoke(workspace, *argv, record=recording_wrangler)
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == needs and lines[1] == f"  e.g. {example}", result.stderr
    assert all(any(line.startswith(c) for line in lines) for c in choices), result.stderr
    assert "did not receive" not in result.stderr and "Traceback" not in result.stderr
    assert calls(recording_wrangler) == []


def test_help_and_completion_still_work_without_the_words(workspace):
    assert invoke(workspace, "logs", "--help").stdout.startswith("Usage: inv[oke]")
    assert invoke(workspace, "--help", "rollback").returncode == 0
    offered = invoke(workspace, "--complete", "--", "invoke", "logs", "silo").stdout.split()
    assert "staging" in offered and "prod" in offered
    assert "--dry-run" in invoke(workspace, "--complete", "--", "invoke", "deploy-env", "silo",
                                 "--dr").stdout.split()


def test_emulator_on_a_busy_port_says_which_port_who_holds_it_and_what_to_set(workspace):
    import os
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = invoke(workspace, "emulator", "--port", str(port))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: port {port} on 127.0.0.1 is already in use by ")
    assert f"pid {os.getpid()}" in first or "another process" in first
    assert "CLOUDFLARE_API_BASE_URL=" in result.stderr and "INVOKE_DOME_HEALTH_BASE_URL" in result.stderr
    assert " DOME_HEALTH_BASE_URL" not in result.stderr


def test_a_deploy_picks_up_template_edits_between_runs(
    workspace: Path, recording_wrangler: Path
) -> None:
    sample = workspace / "sample"
    rendered = sample / ".dome/build/staging/silo/wrangler.toml"

    def deploy() -> str:
        done = invoke(workspace, "deploy-env", "silo", "staging", "--no-migrate", "--force",
                      "--no-build", "--no-verify", record=recording_wrangler)
        assert done.returncode == 0, done.stderr
        return rendered.read_text()

    deploy()
    assert 'name = "silo-staging"' in deploy()  # the second render comes from the cache
    assert list((sample / ".dome/cache/render").iterdir())
    manifest = sample / "dome.yaml"
    text = manifest.read_text()
    manifest.write_text(text.replace("version: 1\n", "version: 1\ntemplates: tpl\n", 1))
    template = sample / "tpl" / "wrangler.toml.j2"
    template.parent.mkdir()
    template.write_text('# first\nname = {{ name|toml }}\nmain = {{ main|toml }}\n')
    assert deploy().startswith("# first\n")
    template.write_text('# second\nname = {{ name|toml }}\nmain = {{ main|toml }}\n')
    assert deploy().startswith("# second\n")
    assert deploy().startswith("# second\n")


def test_a_deploy_without_build_reads_no_recipes_and_one_with_build_does(
    workspace: Path, recording_wrangler: Path
) -> None:
    just_calls = workspace / "just-calls.txt"
    recording_just = workspace / "recording-just"
    real_just = VENV_BIN / "just"
    recording_just.write_text(f'#!/bin/sh\necho "$*" >> "{just_calls}"\nexec "{real_just}" "$@"\n')
    recording_just.chmod(0o755)
    env = run_env(DOME_TEST_RECORD=str(recording_wrangler), DOME_TASKS_JUST=str(recording_just))

    def deploy(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(VENV_BIN / "invoke"), "deploy-env", "silo", "staging", "--dry-run", *flags],
            cwd=workspace, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
            timeout=120, check=True)

    skipped = deploy("--no-build")
    assert "--summary" not in (just_calls.read_text() if just_calls.exists() else "")
    assert "build-pkg" not in skipped.stdout
    built = deploy()
    assert "--summary" in just_calls.read_text() and "build-pkg silo" in built.stdout


def test_a_mistyped_service_is_named_before_a_missing_wrangler(workspace):
    """Bad input first: without any wrangler installed, `deploy-env sillo staging` still says
    which word is wrong (and what was meant), not that wrangler is missing."""
    env = run_env()
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if not (Path(p) / "wrangler").exists())
    result = subprocess.run([str(VENV_BIN / "invoke"), "deploy-env", "sillo", "staging"],
                            cwd=workspace, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode != 0
    assert "unknown service 'sillo'" in result.stderr and "did you mean" in result.stderr
    assert "wrangler not found" not in result.stderr
