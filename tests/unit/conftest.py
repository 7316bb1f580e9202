"""Helpers for manifest tests: write YAML into tmp_path and load it as ``dome.yaml``."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from dome_tasks.errors import ManifestError
from dome_tasks.manifest import Manifest, load

# Lines 1-9; services written after it start on line 10.
HEAD = """\
version: 1
defaults:
  compatibility_date: "2025-01-01"
  main: src/index.js
environments:
  development: {suffix: "-dev", aliases: [dev]}
  staging: {suffix: "-staging", aliases: [stg]}
  production: {suffix: "", aliases: [prod], protected: true}
services:
"""


@pytest.fixture
def load_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Manifest]:
    """``load_yaml(services)`` -> Manifest from HEAD + the services (written at column 0);
    ``load_yaml(text, full=True)`` -> Manifest from exactly ``text``. The file is ``dome.yaml``."""
    monkeypatch.chdir(tmp_path)

    def _load(text: str, *, full: bool = False) -> Manifest:
        text = textwrap.dedent(text)
        if not full:
            text = HEAD + textwrap.indent(text, "  ")
        Path("dome.yaml").write_text(text, encoding="utf-8")
        return load("dome.yaml")

    return _load


@pytest.fixture
def problems(load_yaml: Callable[..., Manifest]) -> Callable[..., list[str]]:
    """``problems(text, full=False)`` -> the ManifestError's messages, one per problem."""

    def _problems(text: str, *, full: bool = False) -> list[str]:
        with pytest.raises(ManifestError) as caught:
            load_yaml(text, full=full)
        return list(caught.value.problems)

    return _problems
