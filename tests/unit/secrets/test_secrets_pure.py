"""The pure parts of secrets: the sync decision, the dotenv reader, CI's secrets from the
environment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dome_tasks.errors import UsageError
from dome_tasks.manifest.loader import load
from dome_tasks.plan.target import resolve
from dome_tasks.secrets.source import from_environ, read_dotenv
from dome_tasks.secrets.status import compare
from dome_tasks.secrets.sync import decide_sync
from tests.helpers import SAMPLE


@pytest.fixture(scope="module")
def sample():
    return load(SAMPLE / "dome.yaml")


def test_secrets_sync_sets_only_declared_names_with_values_on_stdin(sample) -> None:
    request = resolve(sample, None, "staging")
    pairs = [(t, compare(t, ["OLD"] if t.service == "silo" else None)) for t in request.targets]
    decisions = decide_sync(pairs, {"SILO_API_KEY": "v4lue-secret", "OTHER": "x"}, prune=True)
    silo = decisions[0]
    assert (silo.set, silo.removed, silo.no_value) == (("SILO_API_KEY",), ("OLD",), ())
    bulk, delete = (step.action for step in silo.steps)
    assert "v4lue-secret" not in " ".join(bulk.argv) and json.loads(bulk.stdin) == {
        "SILO_API_KEY": "v4lue-secret"}
    assert delete.argv[1:4] == ("secret", "delete", "OLD")
    assert all(not d.steps for d in decisions[1:])  # they declare nothing and have nothing


def test_dotenv_values_and_errors_name_the_line_never_the_value(tmp_path: Path) -> None:
    path = tmp_path / "s.env"
    path.write_text("# c\nexport A=plain # note\nB='single # kept'\nC=\"two\\nlines\"\n")
    assert read_dotenv(path) == {"A": "plain", "B": "single # kept", "C": "two\nlines"}
    path.write_text("A=1\nthis is wrong hunter2\n")
    with pytest.raises(UsageError) as error:
        read_dotenv(path)
    assert f"{path}:2: not a NAME=value line" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_ci_secrets_come_from_their_own_variables_or_one_dotenv_document() -> None:
    environ = {"DOME_SECRETS": "A=from-doc\nB='doc b'\nUNDECLARED=x\n", "B": "own-b", "C": ""}
    assert from_environ(["A", "B", "C", "D"], environ) == {"A": "from-doc", "B": "own-b"}
    with pytest.raises(UsageError) as error:
        from_environ(["A"], {"DOME_SECRETS": "A=1\nnot a line s3cr3t-value\n"})
    assert "$DOME_SECRETS:2: not a NAME=value line" in str(error.value)
    assert "s3cr3t" not in str(error.value)
