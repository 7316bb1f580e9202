"""The justfile bridge: a 37-recipe monorepo justfile as invoke tasks, beside native tasks."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection, Program
from invoke.exceptions import Exit

from dome_tasks.just.args import recipe
from dome_tasks.just.bridge import CALL_CHAIN_ENV, RecipeTask, recipes_collection
from dome_tasks.just.dump import JUST_BIN_ENV, load_justfile

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "monorepo.just"


@recipe
def deploy(c, service=""):
    """Native deploy."""
    print(f"native deploy [{service}]")


@pytest.fixture(scope="module")
def ns() -> Collection:
    return recipes_collection(FIXTURE, native=Collection(deploy))


def run(ns: Collection, *words: str) -> tuple[int, str]:
    """Run invoke in-process; just's output is captured by capfd in the callers."""
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            Program(namespace=ns, binary="invoke").run(["invoke", *words])
        except SystemExit as exc:
            code = exc.code or 0
    return code, err.getvalue()


def test_exposes_every_public_recipe(ns: Collection) -> None:
    jf = load_justfile(FIXTURE)
    public = {r.name for r in jf.public()}
    assert len(public) >= 30
    assert public <= set(ns.tasks)
    assert "secret-helper" not in ns.tasks and "_underscore-helper" not in ns.tasks
    assert isinstance(ns["deploy"], RecipeTask)  # the user's recipe keeps its name
    assert not isinstance(ns["dome.deploy"], RecipeTask)  # the native task moves aside
    assert isinstance(ns["deploy-env"], RecipeTask)
    assert ns.task_names["build"] == ["b"]


def test_same_params_defaults_and_doc(ns: Collection) -> None:
    t = ns["deploy-version"]
    assert t.signature == "deploy-version SERVICE [VERSION]"
    assert [p.just_syntax() for p in t.params] == ["service", "version='latest'"]
    assert t.__doc__.startswith("(just) SERVICE [VERSION] — Deploy a named version of SERVICE")
    assert ns["test"].signature == "test [PACKAGES...]"
    assert ns["db-query"].signature == "db-query ENV SQL..."


def test_list_marks_recipes(ns: Collection, capsys: pytest.CaptureFixture[str]) -> None:
    run(ns, "--list")
    out = capsys.readouterr().out
    assert "deploy           (just; dome's: dome.deploy) [SERVICE] — Deploy SERVICE" in out
    assert "dome.deploy      [SERVICE] — Native deploy." in out
    assert "(just) SERVICE ENV — Deploy SERVICE to ENV" in out


@pytest.mark.parametrize(
    "words, expected",
    [
        (["deploy-env", "silo", "prod"], "deploy silo to prod\n"),
        (["deploy-version", "api"], "deploy api@latest\n"),
        (["e2e", "full", "--env", "prod"], "e2e full on prod\n"),
        (["e2e", "-e", "dev"], "e2e smoke on dev\n"),
        (["lint-fix", "--fix"], "eslint fix=true\n"),
        (["test", "a", "b c"], "test [a b c]\n"),
        (["cli", "a", "b c"], "cli 2 a b c\n"),
        (["db-query", "prod", "select", "1"], "d1 execute --env prod --command 'prod select 1'\n"),
        (["db-reset"], "d1 migrations apply --local\nd1 execute --file seed.sql\nreset done\n"),
        (["deploy-preview"], "preview main\n"),
        (["doctor"], "doctor: node_env=development args=0\n"),
        (["with-token", "abc"], "token=abc\n"),
        (["b"], "npm ci\nbuild all\n"),
        (["build-pkg", "api", "test", "x"], "build api\ntest [x]\n"),
        (["deploy", "silo", "dev", "web"], "deploy [silo]\nwrangler dev web --port 8787\n"),
        (["dome.deploy", "silo", "dev", "web"], "native deploy [silo]\nwrangler dev web --port 8787\n"),
    ],
)
def test_runs_through_just(
    ns: Collection, capfd: pytest.CaptureFixture[str], words: list[str], expected: str
) -> None:
    code, err = run(ns, *words)
    out = capfd.readouterr().out
    assert code == 0, err
    assert out == expected


def test_just_checks_patterns(ns: Collection, capfd: pytest.CaptureFixture[str]) -> None:
    code, _ = run(ns, "deploy-version", "nope")
    assert code == 1
    assert "does not match pattern" in capfd.readouterr().err


def test_static_loop_is_refused(ns: Collection) -> None:
    code, err = run(ns, "lint-py")
    assert code == 1
    assert "Delegation loop: just lint-py › invoke lint-py › just lint-py" in err


def test_runtime_loop_is_stopped(
    ns: Collection, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(CALL_CHAIN_ENV, "invoke deploy-env › just deploy-env")
    code, err = run(ns, "deploy-env", "a", "b")
    assert code == 1
    assert "Delegation loop: invoke deploy-env › just deploy-env › invoke deploy-env" in err
    assert capfd.readouterr().out == ""


def test_just_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JUST_BIN_ENV, "/nonexistent/just")
    with pytest.raises(Exit) as exc:
        recipes_collection(FIXTURE)
    assert "pip install rust-just" in exc.value.message


def test_rejected_justfile_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "justfile"
    bad.write_text("build:\n    echo ok\nbuild:\n    echo again\n")
    with pytest.raises(Exit) as exc:
        recipes_collection(bad)
    assert str(bad) in exc.value.message
    assert "error: recipe `build` first defined on line 1 is redefined on line 3" in exc.value.message


@pytest.mark.integration
def test_stock_invoke_binary(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(
        "from dome_tasks.just.bridge import recipes_collection\n"
        f"ns = recipes_collection({str(FIXTURE)!r})\n"
    )
    invoke = Path(sys.executable).parent / "invoke"
    proc = subprocess.run(
        [str(invoke), "deploy", "silo", "deploy"], check=False, cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "deploy [silo]\ndeploy []\n"
