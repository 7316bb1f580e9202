"""An adopter's monorepo, end to end with the real invoke and just, from a service's subfolder.

The repository: the sample workspace's dome.yaml and services, the 42-recipe justfile of the
corpus (its own `deploy SERVICE ENV="dev"`, `logs SERVICE`, `db-migrate-local`,
`db-migrate-prod`), the README's `tasks/__init__.py`, and dome-tasks installed in `.venv`.
Nothing is activated: PATH has no virtualenv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from dome_tasks.collection import native_tasks
from tests.helpers import SAMPLE, VENV_BIN

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
README_TASKS = (
    "from dome_tasks import namespace\n"
    'ns = namespace(manifest="dome.yaml", justfile="justfile")\n'
)
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"


def make_repo(root: Path, venv: bool = True) -> Path:
    shutil.copytree(SAMPLE, root, ignore=shutil.ignore_patterns(".dome", ".wrangler"))
    shutil.copy(CORPUS / "workers-monorepo.just", root / "justfile")
    (root / "tasks").mkdir()
    (root / "tasks" / "__init__.py").write_text(README_TASKS)
    if venv:
        (root / ".venv" / "bin").mkdir(parents=True)
        (root / ".venv" / "bin" / "invoke").symlink_to(VENV_BIN / "invoke")
    return root


def run(cwd: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run argv in cwd as a user without an activated virtualenv would."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("VIRTUAL_ENV", "DOME_INVOKE") and not k.startswith("INVOKE_")}
    base.update(PATH=PLAIN_PATH, NO_COLOR="1", **env)
    return subprocess.run(list(argv), cwd=cwd, env=base, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def invoke(cwd: Path, *words: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, str(VENV_BIN / "invoke"), *words, **env)


def just(cwd: Path, *words: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, str(VENV_BIN / "just"), *words, **env)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The adopter's repository after `invoke just.sync`, run from services/silo."""
    root = make_repo(tmp_path_factory.mktemp("adopter") / "repo")
    synced = invoke(root / "services" / "silo", "just.sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.endswith(f"{root / 'justfile'}: updated\n")
    return root


@pytest.fixture
def silo(repo: Path) -> Path:
    return repo / "services" / "silo"


def test_invoke_list_from_a_subfolder_shows_both_and_says_whose(silo: Path) -> None:
    listing = invoke(silo, "--list")
    assert listing.returncode == 0 and listing.stderr == ""
    flat = " ".join(listing.stdout.split())  # help columns wrap
    assert " deploy (just; dome's: dome.deploy) SERVICE [ENV] — Deploy one service: " in flat
    assert " logs (just; dome's: dome.logs) SERVICE — Tail the logs of a service " in flat
    assert " deploy-env [OPTIONS] SERVICE ENV — Deploy SERVICE ('all' for every service) " in flat
    assert " deploy-all (just) Deploy every service to every environment " in flat
    assert " dome.deploy [OPTIONS] [SERVICE] — Deploy SERVICE " in flat
    assert " dome.logs SERVICE ENV — Stream the live logs " in flat
    assert " just.check " in flat
    assert "dome.deploy-env" not in flat, "a task with its plain name is listed once"
    mine = invoke(silo, "--list", "dome")
    assert " .deploy-env [OPTIONS] SERVICE ENV " in " ".join(mine.stdout.split())


def test_just_list_from_a_subfolder(silo: Path) -> None:
    listing = just(silo, "--list")
    assert listing.returncode == 0, listing.stderr
    assert '    deploy SERVICE ENV="dev"' in listing.stdout
    assert "    dome-deploy *args" in listing.stdout and "    [dome-ci]" in listing.stdout


def test_the_users_deploy_and_logs_win_on_invoke(silo: Path) -> None:
    deploy = invoke(silo, "deploy", "silo", "dev")
    assert deploy.returncode == 0, deploy.stderr
    assert deploy.stdout == "wrangler -c services/silo/wrangler.toml deploy --env dev\n"
    logs = invoke(silo, "logs", "silo")
    assert logs.stdout == "wrangler tail -c services/silo/wrangler.toml\n"
    assert invoke(silo, "db-migrate-prod").stdout.endswith("--remote --env production\n")


@pytest.mark.parametrize("tool", ["invoke", "just"])
def test_dry_run_deploy_from_a_subfolder_with_flags(repo: Path, silo: Path, tool: str) -> None:
    run_tool = invoke if tool == "invoke" else just
    result = run_tool(silo, "deploy-env", "silo", "staging", "--dry-run", "--yes")
    assert result.returncode == 0, result.stdout + result.stderr
    config = repo / ".dome/build/staging/silo/wrangler.toml"
    assert f"render silo-staging -> {config}" in result.stdout
    assert f"wrangler deploy --config {config}" in result.stdout
    assert not config.exists()


def test_domes_own_task_under_its_other_names(repo: Path, silo: Path) -> None:
    config = repo / ".dome/build/production/silo/wrangler.toml"
    for result in (invoke(silo, "dome.deploy", "silo", "--dry-run"),
                   just(silo, "dome-deploy", "silo", "--dry-run")):
        assert result.returncode == 0, result.stderr
        assert f"wrangler deploy --config {config}" in result.stdout
    logs = invoke(silo, "dome.logs", "silo")
    assert logs.returncode == 1
    assert logs.stderr.startswith("'dome.logs' needs ENV (usage: dome.logs SERVICE ENV)\n"
                                  "  e.g. invoke dome.logs silo staging\n"), logs.stderr


def test_every_flag_reaches_the_task_through_just(silo: Path) -> None:
    plan = just(silo, "plan", "silo", "staging", "--json")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.lstrip().startswith(("{", "["))
    help_text = just(silo, "deploy-env", "--help")
    assert help_text.returncode == 0
    assert "Usage: inv[oke] [--core-opts] dome.deploy-env" in help_text.stdout
    unknown = just(silo, "deploy-env", "silo", "staging", "--no-such-flag")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("'deploy-env' has no flag '--no-such-flag' "
                                     "(usage: deploy-env [OPTIONS] SERVICE ENV;")


def test_check_and_doctor_say_whose_names(silo: Path) -> None:
    check = invoke(silo, "just.check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert ("  deploy: your justfile's recipe; dome's task is `invoke dome.deploy` / "
            "`just dome-deploy`\n") in check.stdout
    tasks = len(native_tasks().tasks)
    assert check.stdout.endswith(f"justfile: {tasks} recipes run dome's tasks, in step with them\n")
    doctor = invoke(silo, "doctor")
    assert "4 of your recipes have a dome task's name (yours win)" in doctor.stdout
    assert "logs: your justfile's recipe; dome's task is `invoke dome.logs`" in doctor.stdout


def test_without_any_invoke_the_recipe_says_what_to_do(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", venv=False)
    assert invoke(root, "just.sync").returncode == 0
    result = just(root / "services", "deploy-env", "silo", "staging", "--dry-run")
    assert result.returncode == 127
    assert "dome-tasks: invoke not found: activate the virtualenv that has dome-tasks" in result.stderr
    overridden = just(root, "deploy-env", "silo", "staging", "--dry-run",
                      DOME_INVOKE=str(VENV_BIN / "invoke"))
    assert overridden.returncode == 0, overridden.stderr


def test_a_justfile_just_rejects_is_reported_and_takes_no_name(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    justfile = root / "justfile"
    justfile.write_text(justfile.read_text() + "\nlint:\n    @echo again\n")
    listing = invoke(root / "services", "--list")
    assert listing.returncode == 0
    assert listing.stderr.startswith(f"dome-tasks: warning: cannot read {justfile}: just rejected")
    assert "recipe `lint` first defined on line" in listing.stderr
    assert "dome's tasks are only `invoke dome.NAME`" in listing.stderr
    names = {line.split()[0] for line in listing.stdout.splitlines()[1:]  # not wrapped help
             if line.startswith("  ") and not line.startswith("   ")}
    assert "deploy" not in names and "logs" not in names and "deploy-env" not in names
    assert {"dome.deploy", "dome.deploy-env", "just.check", "just.sync"} <= names
    deploy = invoke(root, "deploy", "silo", "dev")
    assert deploy.returncode == 1 and "No idea what 'deploy' is!" in deploy.stderr
    check = invoke(root, "just.check")
    assert check.returncode == 1 and "recipe `lint` first defined on line" in check.stderr
    before = justfile.read_text()
    sync = invoke(root, "just.sync")
    assert sync.returncode == 1
    assert (f"\nerror: not writing {justfile}: just rejects it (outside the generated block):\n"
            f"just rejected {justfile}:\nerror: recipe `lint` first defined") in sync.stderr
    assert "hint: fix the justfile so that `just --summary` accepts it" in sync.stderr
    assert justfile.read_text() == before


def test_a_missing_justfile_is_reported(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    (root / "justfile").unlink()
    listing = invoke(root / "services" / "silo", "--list")
    assert listing.returncode == 0
    assert listing.stderr == (
        f"dome-tasks: warning: no justfile at {root / 'justfile'}: no recipe is bridged; "
        "`invoke just.sync` writes one with a recipe per dome task (or pass justfile=None)\n"
    )
    assert "  deploy-env " in listing.stdout


def test_a_capitalised_justfile_is_the_one_synced_and_read(tmp_path: Path) -> None:
    """namespace(justfile="justfile") in a repository whose file is `Justfile`: dome reads and
    syncs that file (just's own pick), never a second one that just would then refuse."""
    root = make_repo(tmp_path / "repo")
    (root / "justfile").rename(root / "Justfile")
    synced = invoke(root, "just.sync")
    assert synced.returncode == 0, synced.stderr
    assert synced.stdout.endswith(f"{root / 'Justfile'}: updated\n")
    assert sorted(p.name for p in root.iterdir() if p.name.lower() == "justfile") == ["Justfile"]
    listing = just(root, "--list")
    assert listing.returncode == 0, listing.stderr
    assert "deploy-env" in listing.stdout
