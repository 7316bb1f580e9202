"""Writing the manifest: what all environments share at the service level, the rest per
environment; resource names left to dome's convention only where it gives the same name; the
proof catches any difference; an existing dome.yaml is never replaced by accident."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dome_tasks.adopt.importer import _workers_configs, prove
from dome_tasks.adopt.intent import Adoption, compute
from dome_tasks.adopt.read import AdoptError, find_configs, read
from dome_tasks.adopt.write import (
    CONVENTION,
    EXPLICIT,
    manifest_data,
    manifest_text,
    write_manifest,
)
from dome_tasks.manifest import json_schema
from tests.adopt.adopt_helpers import FIXTURES


@pytest.fixture(scope="module")
def redeclared() -> Adoption:
    root = FIXTURES / "redeclared"
    return compute([read(p) for p in find_configs(root)], root)


def test_shared_values_go_to_the_service_and_differences_per_environment(
    redeclared: Adoption,
) -> None:
    data = manifest_data(redeclared, EXPLICIT)
    assert data["defaults"] == {"compatibility_date": "2025-01-01", "health_path": None,
                                "compatibility_flags": ["nodejs_compat"], "main": "src/index.ts"}
    assert data["environments"]["production"] == {
        "suffix": "", "aliases": ["prod"], "account_id": "0123456789abcdef0123456789abcdef",
        "protected": True}
    silo = data["services"]["silo"]
    assert silo["vars"] == {"LOG_LEVEL": "info"}  # the most common value
    assert silo["environments"]["development"]["vars"] == {"LOG_LEVEL": "debug"}
    assert silo["d1_databases"]["DB"] == {"database_name": "silo-db", "migrations_dir": "migrations"}
    # ids are never shared by accident: each environment names its own
    assert {e: o["d1_databases"]["DB"].get("database_id")
            for e, o in silo["environments"].items()} == {
        "development": "00000000-0000-4000-8000-000000000002",
        "staging": "00000000-0000-4000-8000-000000000003",
        "production": "00000000-0000-4000-8000-000000000001",
        "local": "00000000-0000-4000-8000-000000000002",  # local runs like development
    }
    assert data["services"]["api"]["services"] == {"SILO": "silo"}


def test_names_that_follow_the_convention_are_left_to_it_only_in_convention_mode(
    redeclared: Adoption,
) -> None:
    explicit = manifest_data(redeclared, EXPLICIT)["services"]["silo"]["environments"]
    convention = manifest_data(redeclared, CONVENTION)["services"]["silo"]["environments"]
    assert explicit["staging"]["d1_databases"]["DB"]["database_name"] == "silo-db-staging"
    assert "database_name" not in convention["staging"]["d1_databases"]["DB"]  # silo-db + suffix


def test_the_text_keeps_every_guess_as_a_comment_and_parses_back(redeclared: Adoption) -> None:
    text = manifest_text(redeclared, EXPLICIT)
    for guess in redeclared.guesses:
        assert f"GUESS {guess.where}: {guess.text}" in text.replace("\n  # ", "\n# ")
    assert yaml.safe_load(text) == manifest_data(redeclared, EXPLICIT)


def test_the_proof_names_what_the_manifest_would_render_differently(
    redeclared: Adoption, tmp_path: Path,
) -> None:
    root = FIXTURES / "redeclared"
    text = manifest_text(redeclared, EXPLICIT)
    assert prove(redeclared, text, root / "dome.yaml").summary() == (
        "6 of 6 configs adopt true, judged by wrangler")
    tampered = text.replace("LOG_LEVEL: debug", "LOG_LEVEL: trace", 1)
    proof = prove(redeclared, tampered, root / "dome.yaml")
    assert proof.summary() == "5 of 6 configs adopt true, judged by wrangler"
    assert proof.differences["silo", "development"] == [
        "vars.LOG_LEVEL: expected 'debug', found 'trace'"]


def test_a_manifest_that_does_not_load_is_reported_not_hidden(redeclared: Adoption) -> None:
    text = manifest_text(redeclared, EXPLICIT).replace("SILO: silo", "SILO: sillo")
    proof = prove(redeclared, text, FIXTURES / "redeclared" / "dome.yaml")
    assert not proof.ok and "unknown service 'sillo'" in (proof.load_error or "")
    assert proof.summary() == "0 of 6 configs checked: the manifest does not load"


def test_an_existing_manifest_is_kept_without_force(tmp_path: Path) -> None:
    target = tmp_path / "dome.yaml"
    target.write_text("mine\n", encoding="utf-8")
    with pytest.raises(AdoptError, match="already exists; nothing was written"):
        write_manifest(target, "new\n")
    assert target.read_text() == "mine\n"
    write_manifest(target, "new\n", force=True)
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["dome.yaml"]  # no temporary file left


CORPUS = FIXTURES.parent / "corpus"


@pytest.mark.parametrize("root", [
    *sorted(p for p in FIXTURES.iterdir() if p.is_dir()),
    *sorted(p for p in CORPUS.iterdir() if p.is_dir()),
], ids=lambda p: p.name)
def test_the_imported_manifest_names_dome_s_schema_and_validates_against_it(root: Path) -> None:
    files, _ = _workers_configs(root)  # what `invoke import` reads (no Pages projects)
    adoption = compute(files, root)
    for mode in (CONVENTION, EXPLICIT):  # the import writes one of them (the smaller proven)
        text = manifest_text(adoption, mode)
        assert text.splitlines()[0] == "# yaml-language-server: $schema=.dome/dome.schema.json"
        problems = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                    for e in json_schema.validator().iter_errors(yaml.safe_load(text))]
        assert problems == []
