"""The TOML value encoder: every value that reaches a rendered wrangler.toml goes through it."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dome_tasks.errors import RenderError
from dome_tasks.render._toml import toml_comment, toml_key, toml_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FINITE = st.floats(allow_nan=False, allow_infinity=False)
SCALARS = st.one_of(st.text(), INT64, FINITE, st.booleans())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)


def roundtrip(value: object) -> object:
    return tomllib.loads(f"v = {toml_value(value)}\n")["v"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", '"plain"'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\dir\\", r'"C:\\dir\\"'),
        ("a\nb\r\tc", r'"a\nb\r\tc"'),
        ("\x00\x1f\x7f\b\f", r'"\u0000\u001F\u007F\b\f"'),
        ('"""', r'"\"\"\""'),
        ("'''", "\"'''\""),
        ("ünïcødé ✓ 🚀", '"ünïcødé ✓ 🚀"'),
        ("\u2028\u0085", '"\u2028\u0085"'),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-(2**63), "-9223372036854775808"),
        (2**63 - 1, "9223372036854775807"),
        (1.5, "1.5"),
        (-0.0, "-0.0"),
        (1e300, "1e+300"),
        (5e-324, "5e-324"),
        (["a", 1, True], '["a", 1, true]'),
        ([], "[]"),
        (("a",), '["a"]'),
        ({"pattern": "x/*", "zone_name": "x"}, '{ pattern = "x/*", zone_name = "x" }'),
        ({}, "{}"),
        ({"a.b": 1, "": 2}, '{ "a.b" = 1, "" = 2 }'),
    ],
)
def test_encodes(value: object, expected: str) -> None:
    assert toml_value(value) == expected
    assert roundtrip(value) == (list(value) if isinstance(value, tuple) else value)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused(value: float) -> None:
    with pytest.raises(RenderError, match="no NaN or infinity"):
        toml_value(value)


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_ints_outside_64_bits_are_refused(value: int) -> None:
    with pytest.raises(RenderError, match="64-bit range"):
        toml_value(value)


@pytest.mark.parametrize("value", [None, object(), {1, 2}, b"bytes"])
def test_other_types_are_refused(value: object) -> None:
    with pytest.raises(RenderError, match="cannot render"):
        toml_value(value)


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(RenderError, match="surrogate U\\+D800"):
        toml_value("a\ud800b")


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("LOG_LEVEL", "LOG_LEVEL"),
        ("with-dash_0", "with-dash_0"),
        ("has space", '"has space"'),
        ("dotted.key", '"dotted.key"'),
        ("", '""'),
        ("ключ", '"ключ"'),
        ('q"\n', r'"q\"\n"'),
    ],
)
def test_keys(key: str, expected: str) -> None:
    assert toml_key(key) == expected
    assert tomllib.loads(f"{toml_key(key)} = 1") == {key: 1}


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(RenderError, match="keys must be strings"):
        toml_key(1)
    with pytest.raises(RenderError, match="keys must be strings"):
        toml_value({1: "x"})


def test_comment_text_cannot_break_out_of_its_line() -> None:
    text = 'a\nname = "evil"\r\x00"\\'
    comment = toml_comment(text)
    assert "\n" not in comment and "\r" not in comment and "\x00" not in comment
    assert tomllib.loads(f'# {comment}\nname = "ok"\n') == {"name": "ok"}


@given(SCALARS)
def test_scalars_roundtrip(value: object) -> None:
    assert _same(roundtrip(value), value)


@given(VALUES)
def test_nested_values_roundtrip(value: object) -> None:
    assert _same(roundtrip(value), value)


@given(st.text())
def test_keys_roundtrip(key: str) -> None:
    assert tomllib.loads(f"{toml_key(key)} = 1\n") == {key: 1}


@given(st.text())
def test_encoded_strings_are_one_line(value: str) -> None:
    assert "\n" not in toml_value(value) and "\r" not in toml_value(value)


def _same(got: object, want: object) -> bool:
    """Equality that also tells -0.0 from 0.0 and a bool from an int, recursively."""
    if isinstance(want, (list, tuple)):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same, got, want))
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and list(got) == list(want)
            and all(_same(got[k], want[k]) for k in want)
        )
    if isinstance(want, float):
        return (
            isinstance(got, float)
            and math.copysign(1, got) == math.copysign(1, want)
            and got == want
        )
    return type(got) is type(want) and got == want
