"""Command-line manners of every dome task: deliberate short flags only, an example in each
help, whole-number flags that explain a bad value, and completion of positional words."""

from __future__ import annotations

import inspect
import subprocess

import pytest

from dome_tasks.cli.common import SHORT_FLAGS
from dome_tasks.cli.completion import candidates, manifest_words, slot
from dome_tasks.collection import namespace, native_tasks
from tests.helpers import ROOT, SAMPLE, VENV_BIN, run_env

TASKS = sorted(native_tasks().tasks.items())
SERVICES = ["silo", "constellation", "dome-api"]
ENVIRONMENTS = ["development", "dev", "staging", "stg", "production", "prod", "local"]


@pytest.mark.parametrize(("name", "task"), TASKS, ids=[name for name, _ in TASKS])
def test_only_deliberate_short_flags(name, task):
    for arg in task.get_arguments():
        shorts = [n for n in arg.names if len(n) == 1]
        assert shorts == ([SHORT_FLAGS[arg.name]] if arg.name in SHORT_FLAGS else []), (
            f"{name} --{arg.names[0]}: {shorts}"
        )


@pytest.mark.parametrize(("name", "task"), TASKS, ids=[name for name, _ in TASKS])
def test_every_help_ends_its_text_with_an_example(name, task):
    doc = inspect.cleandoc(task.__doc__).splitlines()
    assert doc[-1].startswith(f"Example: invoke {name}"), doc


def test_help_of_deploy_env_shows_no_surprise(tmp_path):
    result = subprocess.run([str(VENV_BIN / "invoke"), "deploy-env", "--help"], cwd=ROOT,
                            env=run_env(), capture_output=True, text=True, check=True)
    options = result.stdout[result.stdout.index("Options:"):]
    assert "-h" not in options.replace("--", "  ")  # -h is help, never --rehearse
    assert "--, " not in options
    for short, long in (("-n", "--dry-run"), ("-y", "--yes"), ("-j INT", "--jobs=INT"),
                        ("-f", "--force")):
        assert f"{short}, {long}" in options
    assert "Example: invoke deploy-env silo staging" in result.stdout


def test_a_bad_whole_number_is_one_line_without_traceback():
    result = subprocess.run([str(VENV_BIN / "invoke"), "deploy-env", "all", "staging", "-n",
                             "--jobs", "many"], cwd=ROOT, env=run_env(), capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, check=False)
    assert result.returncode != 0
    assert result.stderr.strip() == "--jobs 'many' is not a whole number (e.g. --jobs 4)"


@pytest.fixture(scope="module")
def ns():
    return namespace(manifest=SAMPLE / "dome.yaml", root=ROOT)


@pytest.mark.parametrize(
    ("invocation", "expected"),
    [
        ("deploy-env ", SERVICES + ["all"]),
        ("deploy-env si", SERVICES + ["all"]),  # the shell filters by the typed prefix
        ("deploy-env silo ", ENVIRONMENTS),
        ("deploy-env -j 2 silo ", ENVIRONMENTS),  # a flag's value is not a positional word
        ("deploy-env --jobs=2 silo st", ENVIRONMENTS),
        ("dome.deploy-env ", SERVICES + ["all"]),
        ("rollback silo ", ENVIRONMENTS),
    ],
)
def test_positional_words_complete_from_the_manifest(ns, invocation, expected):
    assert candidates(invocation, ns) == expected


def test_optional_positionals_also_offer_the_task_names(ns):
    offered = candidates("deploy ", ns)
    assert offered[:4] == SERVICES + ["all"] and "deploy-env" in offered


@pytest.mark.parametrize("invocation", ["", "deploy-env --", "deploy-env silo staging ",
                                        "metrics --since "])
def test_anything_else_is_left_to_invoke(ns, invocation):
    assert candidates(invocation, ns) is None


def test_slot_names_the_parameter(ns):
    assert slot(["deploy-env"], ns) == ("deploy-env", "service", False)
    assert slot(["deploy-env", "silo"], ns) == ("deploy-env", "env", False)


def test_a_broken_manifest_completes_nothing(tmp_path):
    (tmp_path / "dome.yaml").write_text("services: [unclosed\n")
    assert manifest_words(tmp_path / "dome.yaml") == ([], [])
    assert manifest_words(tmp_path / "missing.yaml") == ([], [])


@pytest.mark.parametrize(
    ("invocation", "expected"),
    [  # what bash, zsh and fish send: the words so far, without the empty word being typed
        ("deploy-env", SERVICES + ["all"]),
        ("deploy-env silo", ENVIRONMENTS),
        ("deploy-env sil", SERVICES + ["all"]),
        ("deploy-env -j 2", SERVICES + ["all"]),
        ("rollback silo", ENVIRONMENTS),
    ],
)
def test_completion_offers_the_next_word_as_the_shells_ask(ns, invocation, expected):
    assert candidates(invocation, ns) == expected


def test_rollback_completes_the_versions_deployed_newest_first(tmp_path):
    import json
    import shutil

    shutil.copy(SAMPLE / "dome.yaml", tmp_path / "dome.yaml")
    (tmp_path / ".dome").mkdir()
    records = [("silo", "staging", "v-old", "success"), ("silo", "production", "v-prod", "success"),
               ("silo", "staging", "v-bad", "failure"), ("silo", "staging", "v-new", "success")]
    (tmp_path / ".dome" / "ledger.jsonl").write_text("".join(
        json.dumps({"kind": "deploy", "service": s, "environment": e, "version_id": v,
                    "outcome": o}) + "\n" for s, e, v, o in records))
    ns = namespace(manifest=tmp_path / "dome.yaml", root=tmp_path)
    offered = candidates("rollback silo staging", ns)
    assert offered[:2] == ["v-new", "v-old"] and "v-bad" not in offered and "v-prod" not in offered
    assert candidates("rollback silo stg ", ns)[:2] == ["v-new", "v-old"]
    assert candidates("rollback silo staging v-", ns)[:2] == ["v-new", "v-old"]


def test_invoke_complete_offers_services_through_the_real_invoke():
    result = subprocess.run(
        [str(VENV_BIN / "invoke"), "--complete", "--", "invoke", "deploy-env", ""],
        cwd=ROOT, env=run_env(), capture_output=True, text=True, check=True,
    )
    assert result.stdout.split() == SERVICES + ["all"]
    words = subprocess.run(  # bash's `${COMP_WORDS[*]}` drops the empty word under the cursor
        [str(VENV_BIN / "invoke"), "--complete", "--", "invoke", "deploy-env", "silo"],
        cwd=ROOT, env=run_env(), capture_output=True, text=True, check=True,
    )
    assert words.stdout.split() == ENVIRONMENTS
