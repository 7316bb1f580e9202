"""A mistyped flag of a plain task (no positional words) gets "did you mean", as invoke's
parser meets it; everything else parses as invoke parses it."""

from __future__ import annotations

import pytest
from invoke.exceptions import ParseError
from invoke.parser import Argument, Parser, ParserContext

from dome_tasks.cli import flag_hints


def parse(*argv: str, ignore_unknown: bool = False):
    flag_hints.install()
    initial = ParserContext(args=[Argument(names=("help", "h"), optional=True)])
    task = ParserContext(name="db-migrate-dev", args=[
        Argument(names=("dry-run",), kind=bool, default=False),
        Argument(names=("message",), kind=str),
        Argument(names=("verify",), kind=bool, default=True),
    ])
    other = ParserContext(name="status", args=[Argument(names=("json",), kind=bool, default=False)])
    parser = Parser(initial=initial, contexts=[task, other], ignore_unknown=ignore_unknown)
    return parser.parse_argv(list(argv))


def test_a_mistyped_flag_names_the_task_and_the_flag_meant():
    with pytest.raises(ParseError) as caught:
        parse("db-migrate-dev", "--dry-rn")
    assert str(caught.value) == ("'db-migrate-dev' has no flag '--dry-rn': did you mean --dry-run? "
                                 "(`invoke --help db-migrate-dev` lists its flags)")


def test_an_unknown_flag_with_nothing_close_is_named_without_a_guess():
    with pytest.raises(ParseError, match=r"^'db-migrate-dev' has no flag '--zzz' \("):
        parse("db-migrate-dev", "--zzz")


def test_inverse_flags_are_suggested_too():
    with pytest.raises(ParseError, match="did you mean --no-verify"):
        parse("db-migrate-dev", "--no-verfy")


def test_what_invoke_accepts_still_parses():
    result = parse("db-migrate-dev", "--message", "--looks-like-a-flag", "--no-verify", "--help", "status", "--json")
    task = result[1]
    assert task.args["message"].value == "--looks-like-a-flag" and task.args["verify"].value is False
    assert result[0].args["help"].value == "db-migrate-dev" and result[2].args["json"].value is True


def test_ignore_unknown_is_left_to_invoke():
    result = parse("db-migrate-dev", "--zzz", ignore_unknown=True)
    assert result.unparsed == ["--zzz"]


def test_a_missing_positional_word_is_named_with_the_manifest_choices(tmp_path):
    manifest = tmp_path / "dome.yaml"
    manifest.write_text("services: {silo: {}}\nenvironments: {staging: {aliases: [stg]}, prod: {}}\n")
    flag_hints.install(None, manifest)
    task = ParserContext(name="logs", args=[Argument(names=("service",), positional=True),
                                            Argument(names=("env",), positional=True)])
    parser = Parser(initial=ParserContext(), contexts=[task])
    with pytest.raises(ParseError) as caught:
        parser.parse_argv(["logs", "silo"])
    assert str(caught.value).splitlines() == [
        "'logs' needs ENV", "  ENV: staging (stg), prod", "  (`invoke --help logs` explains each)"]
    assert caught.value.context.name == "logs"  # what `invoke --complete` reads
