"""`namespace()`: paths relative to the tasks module; the generated block's view of it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import Collection

from dome_tasks.collection import namespace, native_tasks
from dome_tasks.just.block import BlockSpec, Entry, invoke_definition, render_block
from dome_tasks.just.dump import find_just


def load_module(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


@pytest.mark.parametrize("layout", ["tasks/__init__.py", "tasks.py", "tasks/dome.py"])
def test_paths_are_relative_to_the_tasks_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    module = tmp_path / layout
    if layout != "tasks.py":
        (tmp_path / "tasks").mkdir()
        (tmp_path / "tasks" / "__init__.py").touch()
    module.write_text("from dome_tasks.collection import namespace\nns = namespace()\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "deep" / "er")
    ns = load_module(module, "tasks_under_test").ns
    assert ns.configuration()["dome"]["manifest"] == str(tmp_path / "dome.yaml")


def test_root_and_absolute_paths_win(tmp_path: Path) -> None:
    ns = namespace(manifest="x/dome.yaml", root=tmp_path)
    assert ns.configuration()["dome"]["manifest"] == str(tmp_path / "x" / "dome.yaml")
    ns = namespace(manifest=tmp_path / "abs.yaml", root="/elsewhere")
    assert ns.configuration()["dome"]["manifest"] == str(tmp_path / "abs.yaml")


def test_without_a_justfile_every_task_has_both_names() -> None:
    ns = namespace(manifest="dome.yaml", prefix="cf")
    names = set(native_tasks().tasks)
    assert names <= set(ns.tasks)
    assert set(ns.collections["cf"].tasks) == names
    assert ns["deploy-env"] is ns["cf.deploy-env"]
    with pytest.raises(ValueError, match="use lower-case letters"):
        namespace(prefix="Dome!")


@pytest.mark.parametrize(("argv", "repeats"), [
    (["/venv/bin/invoke", "deploy-env", "silo", "staging"], True),
    (["/venv/bin/invoke", "dome.deploy-env", "silo", "staging"], True),
    (["/venv/bin/invoke", "--list", "dome"], True),
    (["/venv/bin/invoke", "--complete", "--", "invoke", "de"], True),
    (["/venv/bin/pytest", "deploy-env"], True),
    (["/venv/bin/invoke", "--list"], False),  # listed once: dome.NAME only where a recipe took NAME
])
def test_every_task_is_under_the_prefix_except_in_a_whole_listing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, argv: list[str], repeats: bool
) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    ns = namespace(manifest="dome.yaml", root=tmp_path)
    assert "deploy-env" in ns.tasks
    assert ("deploy-env" in ns.collections["dome"].tasks) is repeats


def test_invoke_definition_points_at_the_tasks_folder(tmp_path: Path) -> None:
    entry = Entry("hello", "dome.hello", "[OPTIONS] — Say hello.", "dome")
    for root, expected in ((".", f"[--search-root][{tmp_path}]"),
                           ("tools", f"[--search-root][{tmp_path}/tools]")):
        path = tmp_path / "justfile"
        path.write_text(render_block([entry], search_root=root))
        done = subprocess.run(
            [find_just(), "--justfile", str(path), "hello", "a b", "--flag"],
            capture_output=True, text=True, check=True,
            env={"PATH": "/usr/bin:/bin", "DOME_INVOKE": "printf [%s]"},
        )
        assert done.stdout == f"{expected}[dome.hello][a b][--flag]"
    assert "justfile_directory() / 'tools'" in "\n".join(invoke_definition("tools"))


def test_the_block_groups_and_documents_each_recipe() -> None:
    text = render_block([Entry("dome-deploy", "dome.deploy", "[SERVICE] — Deploy.", "dome"),
                         Entry("ci-plan", "dome.ci-plan", "", "dome-ci")], define_invoke=False)
    assert "dome_invoke :=" not in text
    assert (
        "# [SERVICE] — Deploy.\n[group('dome')]\n[positional-arguments]\ndome-deploy *args:\n"
        '    @{{dome_invoke}} dome.deploy "$@"\n\n'
        "[group('dome-ci')]\n[positional-arguments]\nci-plan *args:\n"
        '    @{{dome_invoke}} dome.ci-plan "$@"\n'
    ) in text


def test_block_spec_lists_tasks_by_name() -> None:
    assert BlockSpec(Collection()).names() == ()
    assert BlockSpec(native_tasks()).names() == tuple(sorted(native_tasks().tasks))


def test_an_old_block_that_replaces_recipes_is_reported_while_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = Path(__file__).parent / "fixtures" / "corpus" / "old-block.just"
    (tmp_path / "justfile").write_text(corpus.read_text())
    ns = namespace(justfile="justfile", root=tmp_path)
    assert "the generated block replaces your recipes deploy, logs" in capsys.readouterr().err
    assert sorted(ns.collections["just"].tasks) == ["check", "sync"]


def _listed(ns: Collection) -> list[tuple[str, tuple[str, ...], str | None]]:
    return [(name, tuple(t.aliases), t.__doc__) for name, t in sorted(ns.tasks.items())]


def test_invoke_list_reads_dome_tasks_from_a_cache_that_never_goes_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dome_tasks.cli import listed

    code = tmp_path / "code"
    (code / "cli").mkdir(parents=True)
    (code / "cli" / "deploy.py").write_text("# dome's code\n")
    monkeypatch.setattr(listed, "_PACKAGE", code)
    cache = tmp_path / "cache"
    first = listed.listed_tasks(cache)  # nothing cached yet: the real tasks
    assert not any(isinstance(t, listed.Listed) for t in first.tasks.values())
    second = listed.listed_tasks(cache)  # cached: stand-ins that list exactly alike
    assert all(isinstance(t, listed.Listed) for t in second.tasks.values())
    assert _listed(second) == _listed(first)
    (code / "cli" / "deploy.py").write_text("# dome's code, edited\n")  # dome changed: no cache
    assert not any(isinstance(t, listed.Listed) for t in listed.listed_tasks(cache).tasks.values())


@pytest.mark.parametrize(("argv", "only"), [
    (["/venv/bin/invoke", "--list"], True),
    (["/venv/bin/inv", "-l", "-F", "json"], True),
    (["/venv/bin/invoke", "--list", "dome"], False),
    (["/venv/bin/invoke", "--list", "--help", "deploy-env"], False),
    (["/venv/bin/invoke", "--help", "deploy-env", "--list"], False),
    (["/venv/bin/invoke", "deploy-env", "silo", "staging"], False),
    (["/venv/bin/pytest", "--list"], False),
])
def test_only_a_whole_listing_uses_the_listed_stand_ins(argv: list[str], only: bool) -> None:
    from dome_tasks.collection import only_lists

    assert only_lists(argv) is only
