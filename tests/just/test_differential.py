"""Differential tests: the real just and @recipe tasks bind the same words the same way."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Program

from dome_tasks.just.dump import find_just

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import diff_tasks

# Argument lists: too few, exact, too many, task-name-like and flag-like values,
# several tasks in one line.
CASES = [
    ["none"],
    ["none", "x"],
    ["none", "opt"],
    ["none", "opt", "v"],
    ["req"],
    ["req", "x"],
    ["req", "x", "y"],
    ["req", "opt"],
    ["req", "-x"],
    ["req", "--list"],
    ["req", "x", "req", "y"],
    ["req", ""],
    ["opt"],
    ["opt", "x"],
    ["opt", "x", "y"],
    ["opt", "req"],
    ["opt", "req", "x"],
    ["opt", "x", "req", "y"],
    ["opt", "x", "none"],
    ["opt", "-x"],
    ["opt", "--zz"],
    ["opt", "-"],
    ["opt", "x=y"],
    ["opt", "none", "none"],
    ["req2"],
    ["req2", "x"],
    ["req2", "x", "y"],
    ["req2", "x", "y", "z"],
    ["req2", "none", "opt"],
    ["req-opt"],
    ["req-opt", "x"],
    ["req-opt", "x", "y"],
    ["req-opt", "x", "y", "z"],
    ["req-opt", "x", "y", "none"],
    ["opt2"],
    ["opt2", "p"],
    ["opt2", "p", "q"],
    ["opt2", "p", "q", "r"],
    ["opt2", "p", "q", "opt"],
    ["plus"],
    ["plus", "a"],
    ["plus", "a", "b", "opt"],
    ["plus", "-x", "--y", "none"],
    ["star"],
    ["star", "a", "b"],
    ["star", "none", "req"],
    ["star", "--list", "-x"],
    ["none", "star", "a", "b"],
    ["req-star"],
    ["req-star", "a"],
    ["req-star", "a", "b", "c"],
    ["req-opt-star", "a"],
    ["req-opt-star", "a", "b"],
    ["req-opt-star", "a", "b", "c", "d"],
    ["req-plus"],
    ["req-plus", "a"],
    ["req-plus", "a", "b"],
    ["req-plus", "a", "b", "none"],
    ["nosuch"],
]

# A few go through the real `invoke` binary too, not just Program in-process.
SUBPROCESS_CASES = [
    ["opt"],
    ["opt", "x"],
    ["opt", "x", "req", "y"],
    ["req-opt", "x", "y", "z"],
    ["plus"],
    ["star", "none", "req"],
    ["req-opt-star", "a", "b", "c", "d"],
    ["req2", "x"],
]


@pytest.fixture(scope="module")
def justfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("diff") / "justfile"
    path.write_text(diff_tasks.justfile_text())
    return path


@pytest.fixture(scope="module")
def just_results(justfile: Path) -> dict[tuple[str, ...], tuple[bool, str]]:
    just = find_just()
    results = {}
    for words in CASES:
        proc = subprocess.run(
            [just, "--justfile", str(justfile), *words], capture_output=True, text=True, check=False
        )
        results[tuple(words)] = (proc.returncode == 0, proc.stdout)
    return results


def run_invoke(words: list[str]) -> tuple[bool, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            Program(namespace=diff_tasks.ns, binary="invoke").run(["invoke", *words])
        except SystemExit as exc:
            code = exc.code or 0
    return code == 0, out.getvalue(), err.getvalue()


def test_tables_agree() -> None:
    """The @recipe tasks declare exactly the just signatures of the table."""
    for t in diff_tasks.TASKS:
        name = t.name.replace("_", "-")
        declared = " ".join(p.just_syntax() for p in t.params)
        assert declared == diff_tasks.SIGNATURES[name], name


@pytest.mark.parametrize("words", CASES, ids=" ".join)
def test_same_bindings_as_just(words: list[str], just_results: dict) -> None:
    just_ok, just_out = just_results[tuple(words)]
    ok, out, err = run_invoke(words)
    assert ok == just_ok, f"just {'accepted' if just_ok else 'rejected'}; invoke: {err}"
    if ok:
        assert out == just_out
    else:
        assert "Traceback" not in err and err.strip()


@pytest.mark.integration
def test_real_invoke_binary(tmp_path: Path, just_results: dict) -> None:
    (tmp_path / "tasks.py").write_text(
        f"import sys\nsys.path.insert(0, {str(HERE)!r})\nfrom diff_tasks import ns\n"
    )
    invoke = Path(sys.executable).parent / "invoke"
    for words in SUBPROCESS_CASES:
        proc = subprocess.run(
            [str(invoke), *words], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        just_ok, just_out = just_results[tuple(words)]
        assert (proc.returncode == 0) == just_ok, (words, proc.stderr)
        if just_ok:
            assert proc.stdout == just_out, words


def test_argument_count_messages() -> None:
    """Errors keep invoke's shape and name the task and the missing/extra values."""
    ok, _, err = run_invoke(["req2", "x"])
    assert not ok and err.strip() == "'req2' did not receive required positional arguments: 'b'"
    ok, _, err = run_invoke(["opt", "x", "y"])
    assert not ok
    assert err.strip() == (
        "'opt' received an unexpected extra positional argument: 'y' (usage: opt [A])"
    )
    ok, _, err = run_invoke(["plus"])
    assert "'plus' did not receive required positional arguments: 'a'" in err


# Where invoke's own rules win (docs/just-compatibility.md, "Differences").
def test_declared_flags_win_over_just() -> None:
    ok, out, _ = run_invoke(["opt", "-a", "v"])
    assert ok and out == "R opt <v>\n"  # just would bind "-a" and run recipe "v"
    ok, out, _ = run_invoke(["req-opt", "-b", "B", "A"])
    assert ok and out == "R req-opt <A> <B>\n"
    ok, out, _ = run_invoke(["star", "-a", "x", "y"])
    assert ok and out == "R star <x> <y>\n"


def test_help_is_never_a_value() -> None:
    for words in (["opt", "--help"], ["req", "-h"], ["star", "a", "--help"]):
        ok, out, _ = run_invoke(words)
        assert ok and "Usage:" in out and "R " not in out, words


def test_invoke_tokenizer_differences() -> None:
    # invoke splits "-xy" and "--k=v" before tasks see them, and takes "--" for itself.
    ok, _, _ = run_invoke(["opt", "-xy"])
    assert not ok
    ok, out, _ = run_invoke(["opt", "--", "x"])
    assert ok and out == "R opt <d>\n"
